import type { Config } from './config.js';
import type { CounterSink } from '../core/counters.js';
import type { Logger, PeerLog } from '../core/logger.js';
import { FileRoot, type FileSource } from '../files/root.js';
import { HttpServer, type HttpCounter, type HttpListen } from '../http/server.js';
import { httpFiles, type BootPolicy } from '../pxe/boot.js';
import { httpHostPort } from '../pxe/http-boot.js';
import type { Site } from './daemon.js';
import type { HttpHooks } from './outside.js';

/**
 * Where the HTTP server listens: on each served interface's address (the address our URLs name),
 * or on the bind address when there is no `-i`. Each address once.
 */
export function httpListeners(config: Config, sites: readonly Site[]): HttpListen[] {
  const port = config.http!.port;
  const addresses = sites.map((s) => (s.iface ? s.ctx.serverIp : config.bindAddress));
  return [...new Set(addresses)].map((address) => ({ address, port }));
}

/**
 * Bind the bundled HTTP server when `--http` asks for it, and tell each site the address its URLs
 * name (`http:///` expands to it). It answers nothing until `serve()`, after the privilege drop.
 * @throws UserError when a port cannot be bound: the HTTP server was asked for, so start-up fails
 */
export async function bindBundledHttp(
  config: Config,
  sites: readonly Site[],
  deps: {
    log: Logger;
    lines: PeerLog;
    counters: CounterSink<HttpCounter>;
    policy: () => BootPolicy;
    /** `--upstream`: where names missing from the root come from. */
    upstream?: FileSource;
    /** `--remap` rules and the event hooks (src/daemon/outside.ts). */
    hooks?: HttpHooks;
  },
): Promise<HttpServer | null> {
  if (!config.http?.enabled) return null;
  const listen = httpListeners(config, sites);
  const server = await HttpServer.bind({
    root: new FileRoot(config.http.root, deps.upstream).setRemap(deps.hooks?.remap ?? (() => [])),
    listen,
    limits: { maxConnections: config.http.maxConnections },
    log: deps.log,
    lines: deps.lines,
    counters: deps.counters,
    policy: deps.policy,
    nameContext: deps.hooks?.nameContext,
    decided: deps.hooks?.decided,
    onRequest: deps.hooks?.onRequest,
  });
  const ports = server.ports;
  for (const site of sites) {
    const i = listen.findIndex((l) => l.address === (site.iface ? site.ctx.serverIp : config.bindAddress));
    site.ctx.httpAddress = httpHostPort(site.ctx.serverIp, ports[i]!);
  }
  return server;
}

/**
 * Warn, once per name, about kernels, initrds and `http:///` files of the rules that the HTTP root
 * does not serve. Runs after the privilege drop, through the server's own resolver. Never throws.
 */
export async function warnMissingHttpFiles(root: FileRoot, policy: BootPolicy, log: Logger): Promise<string[]> {
  const missing: string[] = [];
  for (const name of httpFiles(policy)) {
    const r = await root.check(name);
    if (r.ok) continue;
    missing.push(name);
    log.warn('file named by a boot rule is not in the HTTP root', { file: name, root: root.path, reason: r.reason });
  }
  return missing;
}
