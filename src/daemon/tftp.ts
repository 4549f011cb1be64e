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
import type { Stats } from '../core/counters.js';
import { warnMissingBootFiles } from '../files/root.js';
import { startTftpServer, type TftpListen, type TftpServer } from '../tftp/server.js';

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
 * Start the bundled TFTP server unless it should stay off. A port already taken (say by tftpd-hpa)
 * costs one warning line, and proxyDHCP goes on without us serving files.
 */
export async function startBundledTftp(
  config: Config,
  ifaces: readonly (InterfaceInfo | undefined)[],
  deps: { log: Logger; stats: Stats; interfaces?: InterfaceSources; bootFiles: readonly string[] },
): Promise<TftpServer | null> {
  const { log } = deps;
  const why = tftpDisabledReason(config, deps.interfaces);
  if (why) {
    log.info('TFTP server not started', { reason: why });
    return null;
  }
  let server: TftpServer;
  try {
    server = await startTftpServer({
      root: config.tftp.root,
      listen: tftpListeners(config, ifaces, deps.interfaces),
      maxTransfers: config.tftp.maxTransfers,
      idleTimeoutMs: config.tftp.idleTimeout * 1000,
      log,
      stats: deps.stats,
    });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log.warn(`${err.message}; serving proxyDHCP only, files must come from that program`);
    return null;
  }
  log.info('TFTP server listening', {
    root: config.tftp.root,
    ports: server.ports.join(','),
    'max-transfers': config.tftp.maxTransfers,
  });
  await warnMissingBootFiles(config.tftp.root, deps.bootFiles, log);
  return server;
}
