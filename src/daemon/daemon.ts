/*
 * Over 300 lines on purpose: startDaemon is the one order of the start (bind every socket, drop
 * privileges, then serve), with the unwinding of each step on failure, and reads best whole. The
 * servers are bound in tftp.ts, http.ts and upstream.ts; events and metrics in outside.ts.
 */
import type { Socket } from 'node:dgram';
import { Counters } from '../core/counters.js';
import { UserError } from '../core/errors.js';
import { PeerLog, type Logger } from '../core/logger.js';
import { printable } from '../core/text.js';
import { FileRoot } from '../files/root.js';
import { isRoutineTrouble, socketDatagrams, type Datagrams, type DatagramTrouble } from '../net/datagram.js';
import {
  isLocalAddress,
  lookupInterface,
  type InterfaceInfo,
  type InterfaceSources,
  systemInterfaces,
} from '../net/interfaces.js';
import { closeUdp, openConnectedSibling, openUdp } from '../net/udp.js';
import { bootFiles } from '../pxe/boot.js';
import type { ServerContext } from '../pxe/policy.js';
import { attachResponder, type DhcpCounter, type ResponderDeps, type ResponderPort } from '../pxe/responder.js';
import type { TftpCounter } from '../tftp/context.js';
import type { TftpServer } from '../tftp/server.js';
import { warnMissingBootFiles } from './boot-files.js';
import { policyOf, restartOnlyChanges, type Config } from './config.js';
import { bindBundledTftp } from './tftp.js';
import type { HttpCounter, HttpServer } from '../http/server.js';
import { bindBundledHttp, warnMissingHttpFiles } from './http.js';
import type { CacheCounter, UpstreamCache } from '../files/cache.js';
import { createUpstreamCache, prepareCacheDir } from './upstream.js';
import { DEFAULT_USER } from './config.js';
import type { DecideCounter } from '../pxe/decide.js';
import { Outside } from './outside.js';

export { policyOf } from './config.js';

const LIMITED_BROADCAST = '255.255.255.255';
/** Big enough for bursts of thousands of DISCOVERs; dnsmasq's drops under load are in its default buffer. */
const RECV_BUFFER = 4 * 1024 * 1024;
/** How often the daemon reports lines its peer-line cap left out. */
const SUMMARY_MS = 10_000;

/** Every counter the daemon keeps: the responder's, the TFTP server's, and its sockets' troubles. */
export type DaemonCounter =
  DhcpCounter | TftpCounter | HttpCounter | CacheCounter | DecideCounter | `dhcp-${DatagramTrouble}`;

/** One place we serve: an interface (with -i) or the `-l -t -b` addresses. */
export interface Site {
  iface?: InterfaceInfo;
  ctx: ServerContext;
}

export interface Daemon {
  readonly stats: Counters<DaemonCounter>;
  readonly sites: readonly Site[];
  /** Bound ports, in site order (tests bind port 0); `tftp` is empty when the TFTP server is off. */
  readonly ports: { dhcp: number[]; proxy: number[]; tftp: number[]; http: number[] };
  /** TFTP transfers in progress (0 without the TFTP server). */
  readonly tftpActive: number;
  /** `--decide-url`, `--remap`, events and `--metrics` (src/daemon/outside.ts). */
  readonly outside: Outside;
  /**
   * Apply a new config's policy at once; sockets are kept (never re-bound). Returns the settings
   * that changed but need a restart, which keep their running value.
   */
  reload(config: Config): string[];
  close(): Promise<void>;
}

export interface DaemonDeps {
  log: Logger;
  interfaces?: InterfaceSources;
  /**
   * Called once every socket is bound and before any is read or any file touched: the privilege
   * drop. If it throws, everything is closed and the error passed on.
   */
  afterBind?: () => void | Promise<void>;
  /** `--exit-after`/`--exit-timeout` ask the daemon to end: stop it and exit with `code`. */
  exit?: (code: number, reason: string) => void;
}

/** Work out where we serve. @throws UserError for a missing interface or a foreign address */
export function resolveSites(config: Config, src: InterfaceSources = systemInterfaces): Site[] {
  const site = (serverIp: string, iface?: InterfaceInfo): Site => ({
    ...(iface ? { iface } : {}),
    ctx: {
      ...(iface ? { interfaceName: iface.name } : {}),
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

/** A site's two DHCP sockets, bound but not yet read. */
interface SiteSockets {
  site: Site;
  dhcp: Datagrams;
  proxy: Datagrams;
}

/**
 * Bind port 67 (with its broadcast sibling) and port 4011 of one site. Every raw socket is pushed
 * to `opened` as soon as it exists, so the caller can close them all on any failure.
 */
async function bindSite(
  config: Config,
  site: Site,
  shared: boolean,
  opened: Socket[],
  report: (kind: DatagramTrouble, detail: string) => void,
): Promise<SiteSockets> {
  const device = site.iface ? { device: { name: site.iface.name, index: site.iface.index } } : {};
  const common = {
    address: config.bindAddress,
    broadcast: true,
    reuseAddr: shared,
    recvBufferSize: RECV_BUFFER,
    ...device,
  };
  const dhcpOptions = { ...common, port: config.ports.dhcp, purpose: 'proxyDHCP' };
  const dhcp = await openUdp(dhcpOptions);
  opened.push(dhcp);
  const proxy = await openUdp({ ...common, port: config.ports.proxy, purpose: 'PXE boot server' });
  opened.push(proxy);
  const to = { address: site.ctx.broadcastAddress, port: site.ctx.clientPort };
  const broadcaster = await openConnectedSibling(dhcp, dhcpOptions, to);
  if (broadcaster) opened.push(broadcaster);
  return {
    site,
    dhcp: socketDatagrams(dhcp, report, broadcaster ? { socket: broadcaster, to } : undefined),
    proxy: socketDatagrams(proxy, report),
  };
}

/**
 * Bind every socket, hand over to `afterBind` (the privilege drop), then start answering: nothing is
 * read and no file is touched before the drop. Resolves once serving.
 * @throws UserError when an interface, address or port cannot be used, or `afterBind` fails
 */
export async function startDaemon(config: Config, deps: DaemonDeps): Promise<Daemon> {
  const { log } = deps;
  const sites = resolveSites(config, deps.interfaces);
  const stats = new Counters<DaemonCounter>();
  const lines = new PeerLog(log);
  const report = (kind: DatagramTrouble, detail: string): void => {
    stats.count(`dhcp-${kind}`);
    lines.line(isRoutineTrouble(kind) ? 'debug' : 'warn', `DHCP ${kind}`, { detail: printable(detail) });
  };
  const opened: Socket[] = [];
  let bound: SiteSockets[];
  let tftp: TftpServer | null = null;
  let http: HttpServer | null = null;
  // --upstream: one cache behind both roots, so TFTP and HTTP clients share its downloads.
  const cache: UpstreamCache | null = config.upstream
    ? createUpstreamCache(config.upstream, { log, lines, counters: stats })
    : null;
  const upstream = cache ? { upstream: cache } : {};
  // The policy in force: read by the responder on every packet and by the HTTP server's scripts.
  let policy = policyOf(config);
  let outside: Outside | null = null;
  try {
    outside = await Outside.bind(config, { log, lines, stats, ...(deps.exit ? { exit: deps.exit } : {}) });
    bound = [];
    for (const s of sites) bound.push(await bindSite(config, s, sites.length > 1, opened, report));
    const ifaces = sites.map((s) => s.iface);
    tftp = await bindBundledTftp(config, ifaces, {
      log,
      lines,
      counters: stats,
      ...(deps.interfaces ? { interfaces: deps.interfaces } : {}),
      ...(cache ? { upstream: cache } : {}),
      hooks: outside.tftpHooks(),
    });
    http = await bindBundledHttp(config, sites, {
      log,
      lines,
      counters: stats,
      policy: () => policy,
      ...upstream,
      hooks: outside.httpHooks(),
    });
    // Still root here: the cache directory is made and given to --user before root is gone.
    if (config.upstream) await prepareCacheDir(config.upstream.cacheDir, config.user ?? DEFAULT_USER);
  } catch (err) {
    await Promise.all([...opened.map(closeUdp), tftp?.close(), http?.close(), outside?.close()]);
    throw err;
  }
  try {
    await deps.afterBind?.();
    await cache?.init();
  } catch (err) {
    await Promise.all([...opened.map(closeUdp), tftp?.close(), http?.close(), cache?.close(), outside.close()]);
    throw err;
  }
  if (cache) {
    log.info('upstream', {
      url: config.upstream!.url,
      'cache-dir': cache.dir,
      'cache-max-size': config.upstream!.cacheMaxBytes,
      'cache-ttl': config.upstream!.cacheTtl,
      cached: cache.names.length,
      'cached-bytes': cache.size,
    });
  }
  let running = config;
  const responderDeps: ResponderDeps = { lines, counters: stats, policy: () => policy, ...outside.responderDeps() };
  for (const b of bound) serveSite(config, b, responderDeps, log);
  if (tftp) {
    tftp.serve();
    log.info('TFTP server listening', {
      root: config.tftp.root,
      ports: tftp.ports.join(','),
      'max-transfers': config.tftp.maxTransfers,
    });
    const root = new FileRoot(config.tftp.root, cache ?? undefined).setRemap(() => config.remap ?? []);
    void warnMissingBootFiles(root, bootFiles(policy), log);
  }
  if (http) {
    http.serve();
    log.info('HTTP server listening', {
      root: config.http!.root,
      addresses: sites.map((s) => s.ctx.httpAddress).join(','),
      'max-connections': config.http!.maxConnections,
      'http-boot': config.http!.boot,
    });
    const root = new FileRoot(config.http!.root, cache ?? undefined).setRemap(() => config.remap ?? []);
    void warnMissingHttpFiles(root, policy, log);
  }
  outside.serve({
    interfaces: () =>
      sites.map((s, i) => ({
        name: s.iface?.name ?? 'any',
        address: s.ctx.serverIp,
        ports: {
          dhcp: [bound[i]!.dhcp.port],
          proxy: [bound[i]!.proxy.port],
          tftp: tftp?.ports ?? [],
          http: http?.ports ?? [],
        },
      })),
    tftpActive: () => tftp?.active ?? 0,
    httpConnections: () => http?.connections ?? 0,
  });
  const summary = setInterval(() => reportSuppressed(lines, log, stats), SUMMARY_MS);
  summary.unref();
  return {
    stats,
    sites,
    ports: {
      dhcp: bound.map((b) => b.dhcp.port),
      proxy: bound.map((b) => b.proxy.port),
      tftp: tftp?.ports ?? [],
      http: http?.ports ?? [],
    },
    get tftpActive() {
      return tftp?.active ?? 0;
    },
    outside,
    reload(next: Config) {
      const kept = restartOnlyChanges(running, next);
      policy = policyOf(next);
      outside.reload(next);
      running = next;
      return kept;
    },
    async close() {
      clearInterval(summary);
      await Promise.all([...opened.map(closeUdp), tftp?.close(), http?.close(), cache?.close(), outside.close()]);
    },
  };
}

function serveSite(config: Config, b: SiteSockets, deps: ResponderDeps, log: Logger): void {
  const ports: [ResponderPort, Datagrams][] = [
    ['dhcp', b.dhcp],
    ['proxy', b.proxy],
  ];
  for (const [port, socket] of ports) attachResponder(port, socket, b.site.ctx, deps);
  log.info('listening', {
    interface: b.site.iface?.name ?? 'any',
    'listen-address': b.site.ctx.serverIp,
    'tftp-address': b.site.ctx.tftpServer,
    'broadcast-address': b.site.ctx.broadcastAddress,
    ports: `${b.dhcp.port},${b.proxy.port}`,
    nbp: config.nbp ?? 'none',
    rules: config.boot?.length ?? 0,
  });
}

/** The periodic line that says the cap was hit, with the counters that tell what happened. */
function reportSuppressed(lines: PeerLog, log: Logger, stats: Counters<DaemonCounter>): void {
  const n = lines.suppressed;
  if (n === 0) return;
  lines.clearSuppressed();
  log.info('log lines suppressed under load', { count: n, stats: stats.snapshot() });
}
