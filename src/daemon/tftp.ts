import type { Config } from './config.js';
import { UserError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import {
  isLocalAddress,
  mtuOfAddress,
  type InterfaceInfo,
  type InterfaceSources,
  systemInterfaces,
} from '../net/interfaces.js';
import type { CounterSink } from '../core/counters.js';
import type { PeerLog } from '../core/logger.js';
import { FileRoot, type FileSource } from '../files/root.js';
import type { TftpCounter } from '../tftp/context.js';
import { TFTP_DEFAULTS, TftpServer, type TftpListen } from '../tftp/server.js';
import type { TftpHooks } from './outside.js';

/** Why the bundled server stays off, or null when it should run. */
export function tftpDisabledReason(config: Config, src: InterfaceSources = systemInterfaces): string | null {
  if (!config.tftp.enabled) return 'disabled with --no-tftp';
  // Drop-in behaviour: -t naming another host means that host serves the files.
  if (config.tftpAddress && !isLocalAddress(config.tftpAddress, src))
    return `files are served by ${config.tftpAddress} (-t)`;
  return null;
}

/** One listener per served interface (bound to it), or one on the bind address. */
export function tftpListeners(
  config: Config,
  ifaces: readonly (InterfaceInfo | undefined)[],
  src: InterfaceSources = systemInterfaces,
): TftpListen[] {
  const base = { address: config.bindAddress, port: config.tftp.port };
  const bound = ifaces.filter((i): i is InterfaceInfo => i !== undefined);
  if (bound.length === 0) {
    const local = config.listenAddress ?? config.bindAddress;
    return [
      { ...base, transferAddress: config.bindAddress, mtu: local === '0.0.0.0' ? 1500 : mtuOfAddress(local, src) },
    ];
  }
  return bound.map((i) => ({
    ...base,
    device: { name: i.name, index: i.index },
    transferAddress: i.address,
    mtu: i.mtu,
  }));
}

/**
 * Bind the bundled TFTP server's listeners unless it should stay off. A port already taken (say by
 * tftpd-hpa) costs one warning line, and proxyDHCP goes on without us serving files. It answers
 * nothing until `serve()`, which the daemon calls after the privilege drop.
 */
export async function bindBundledTftp(
  config: Config,
  ifaces: readonly (InterfaceInfo | undefined)[],
  deps: {
    log: Logger;
    lines: PeerLog;
    counters: CounterSink<TftpCounter>;
    interfaces?: InterfaceSources;
    /** `--upstream`: where names missing from the root come from. */
    upstream?: FileSource;
    /** `--remap` rules and the event hooks (src/daemon/outside.ts). */
    hooks?: TftpHooks;
  },
): Promise<TftpServer | null> {
  const { log } = deps;
  const why = tftpDisabledReason(config, deps.interfaces);
  if (why) {
    log.info('TFTP server not started', { reason: why });
    return null;
  }
  const t = config.tftp;
  try {
    return await TftpServer.bind({
      root: new FileRoot(t.root, deps.upstream).setRemap(deps.hooks?.remap ?? (() => [])),
      listen: tftpListeners(config, ifaces, deps.interfaces),
      limits: {
        maxTransfers: t.maxTransfers,
        maxUnconfirmed: Math.min(TFTP_DEFAULTS.maxUnconfirmed, t.maxTransfers),
        maxPerAddress: TFTP_DEFAULTS.maxPerAddress,
        maxUnconfirmedPerAddress: TFTP_DEFAULTS.maxUnconfirmedPerAddress,
        suspectStrikes: TFTP_DEFAULTS.suspectStrikes,
        suspectMs: TFTP_DEFAULTS.suspectMs,
        unconfirmedGraceMs: TFTP_DEFAULTS.unconfirmedGraceMs,
      },
      idleTimeoutMs: t.idleTimeout * 1000,
      workers: t.workers,
      log,
      lines: deps.lines,
      counters: deps.counters,
      onTransferStart: deps.hooks?.onTransferStart,
      onTransferEnd: deps.hooks?.onTransferEnd,
      nameContext: deps.hooks?.nameContext,
    });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log.warn(`${err.message}; serving proxyDHCP only, files must come from that program`);
    return null;
  }
}
