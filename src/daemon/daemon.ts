import type { Socket } from 'node:dgram';
import type { Config } from './config.js';
import { UserError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import {
  isLocalAddress,
  lookupInterface,
  type InterfaceInfo,
  type InterfaceSources,
  systemInterfaces,
} from '../net/interfaces.js';
import { closeUdp, openConnectedSibling, openUdp } from '../net/udp.js';
import { bootFiles, type BootPolicy } from '../pxe/boot.js';
import type { ServerContext } from '../pxe/policy.js';
import { attachResponder, createReplySender, type ResponderDeps } from '../pxe/responder.js';
import { RateLimiter, Stats } from '../core/counters.js';
import { startBundledTftp } from './tftp.js';

const LIMITED_BROADCAST = '255.255.255.255';
/** Big enough for bursts of thousands of DISCOVERs; dnsmasq's drops under load are in its default buffer. */
const RECV_BUFFER = 4 * 1024 * 1024;

/** One place we serve: an interface (with -i) or the `-l -t -b` addresses. */
export interface Site {
  iface?: InterfaceInfo;
  ctx: ServerContext;
}

export interface Daemon {
  readonly stats: Stats;
  readonly sites: readonly Site[];
  /** Bound ports, in site order (tests bind port 0); `tftp` is empty when the TFTP server is off. */
  readonly ports: { dhcp: number[]; proxy: number[]; tftp: number[] };
  /** Apply a new config's policy at once; sockets are kept (never re-bound). */
  reload(config: Config): void;
  close(): Promise<void>;
}

export interface DaemonDeps {
  log: Logger;
  interfaces?: InterfaceSources;
}

/**
 * Boot policy of a config: what the responder consults for every packet. Built whole and swapped in
 * one assignment on reload, so a packet sees either the old rules or the new ones, never a mix.
 */
export function policyOf(config: Config): BootPolicy {
  return {
    ...(config.nbp !== undefined ? { defaultFile: config.nbp } : {}),
    efiMode: config.efiMode,
    rules: config.boot ?? [],
    allow: config.allow ?? [],
    deny: config.deny ?? [],
    rpi: config.rpi ?? true,
  };
}

/** Work out where we serve. @throws UserError for a missing interface or a foreign address */
export function resolveSites(config: Config, src: InterfaceSources = systemInterfaces): Site[] {
  const site = (serverIp: string, iface?: InterfaceInfo): Site => ({
    ...(iface ? { iface } : {}),
    ctx: {
      serverIp,
      tftpServer: config.tftpAddress ?? serverIp,
      broadcastAddress: config.broadcastAddress ?? LIMITED_BROADCAST,
      clientPort: config.ports.client,
    },
  });
  if (config.listenAddress && !isLocalAddress(config.listenAddress, src)) {
    throw new UserError(`listen address ${config.listenAddress} is not an address of this host`);
  }
  if (config.interfaces.length === 0) return [site(config.listenAddress!)];
  return config.interfaces.map((name) => {
    const iface = lookupInterface(name, src);
    return site(config.listenAddress ?? iface.address, iface);
  });
}

/**
 * Bind every socket and start answering. Resolves once all are bound.
 * @throws UserError when an interface, address or port cannot be used
 */
export async function startDaemon(config: Config, deps: DaemonDeps): Promise<Daemon> {
  const { log } = deps;
  const sites = resolveSites(config, deps.interfaces);
  const stats = new Stats();
  let policy = policyOf(config);
  const responderDeps: ResponderDeps = {
    log,
    stats,
    policy: () => policy,
    answerLines: new RateLimiter(50, 200),
  };
  const sockets: Socket[] = [];
  const ports = { dhcp: [] as number[], proxy: [] as number[], tftp: [] as number[] };
  const shared = sites.length > 1;
  try {
    for (const s of sites) {
      const device = s.iface ? { name: s.iface.name, index: s.iface.index } : undefined;
      const common = {
        address: config.bindAddress,
        broadcast: true,
        reuseAddr: shared,
        recvBufferSize: RECV_BUFFER,
        ...(device ? { device } : {}),
      };
      const dhcp = await openUdp({ ...common, port: config.ports.dhcp, purpose: 'proxyDHCP' });
      sockets.push(dhcp);
      const proxy = await openUdp({ ...common, port: config.ports.proxy, purpose: 'PXE boot server' });
      sockets.push(proxy);
      const to = { address: s.ctx.broadcastAddress, port: s.ctx.clientPort };
      const broadcaster = await openConnectedSibling(
        dhcp,
        { ...common, port: config.ports.dhcp, purpose: 'proxyDHCP' },
        to,
      );
      const dhcpOut = createReplySender(dhcp, responderDeps, broadcaster ? { socket: broadcaster, to } : undefined);
      attachResponder('dhcp', dhcp, dhcpOut, s.ctx, responderDeps);
      if (broadcaster) {
        sockets.push(broadcaster);
        // It receives only what comes from its peer, which no client is; if one were, it is served alike.
        attachResponder('dhcp', broadcaster, dhcpOut, s.ctx, responderDeps);
      }
      attachResponder('proxy', proxy, createReplySender(proxy, responderDeps), s.ctx, responderDeps);
      ports.dhcp.push(dhcp.address().port);
      ports.proxy.push(proxy.address().port);
      log.info('listening', {
        interface: s.iface?.name ?? 'any',
        'listen-address': s.ctx.serverIp,
        'tftp-address': s.ctx.tftpServer,
        'broadcast-address': s.ctx.broadcastAddress,
        ports: `${dhcp.address().port},${proxy.address().port}`,
        nbp: config.nbp ?? 'none',
        rules: config.boot?.length ?? 0,
      });
    }
  } catch (err) {
    await Promise.all(sockets.map(closeUdp));
    throw err;
  }
  const tftp = await startBundledTftp(
    config,
    sites.map((s) => s.iface),
    { log, stats, bootFiles: bootFiles(policy), ...(deps.interfaces ? { interfaces: deps.interfaces } : {}) },
  ).catch(async (err: unknown) => {
    await Promise.all(sockets.map(closeUdp));
    throw err;
  });
  if (tftp) ports.tftp.push(...tftp.ports);
  const summary = setInterval(() => {
    const n = responderDeps.answerLines.suppressed;
    if (n > 0) {
      responderDeps.answerLines.suppressed = 0;
      log.info('log lines suppressed under load', { count: n, stats: stats.snapshot() });
    }
  }, 10_000);
  summary.unref();
  return {
    stats,
    sites,
    ports,
    reload(next: Config) {
      policy = policyOf(next);
    },
    async close() {
      clearInterval(summary);
      await Promise.all([...sockets.map(closeUdp), tftp?.close()]);
    },
  };
}
