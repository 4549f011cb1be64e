import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { tcpListenHolders, udpPortHolders } from '../net/port-owner.js';
import { policyOf, type Config } from '../daemon/config.js';
import { UserError } from '../core/errors.js';
import { FileRoot, isUrl, type Refusal } from '../files/root.js';
import { Upstream, UpstreamError } from '../files/upstream.js';
import { isLocalAddress, lookupInterface, systemInterfaces, type InterfaceSources } from '../net/interfaces.js';
import { bootFiles, httpFiles } from '../pxe/boot.js';
import { decideCheckLines, eventsAndMetricsLines } from './outside-check.js';

/** One line of the `--check` report. */
export interface CheckLine {
  ok: boolean;
  text: string;
}

export interface CheckDeps {
  interfaces?: InterfaceSources;
  /** Who holds a UDP port; /proc by default. */
  portHolders?: (port: number) => { address: string; owner?: { pid: number; name: string } }[];
  /** Who listens on a TCP port (the HTTP server's); /proc by default. */
  tcpHolders?: (port: number) => { address: string; owner?: { pid: number; name: string } }[];
}

function interfaceLines(config: Config, src: InterfaceSources): CheckLine[] {
  const lines: CheckLine[] = config.interfaces.map((name) => {
    try {
      const i = lookupInterface(name, src);
      return { ok: true, text: `interface ${name}: ${i.address}/${i.netmask}, mtu ${i.mtu}` };
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return { ok: false, text: err.message };
    }
  });
  if (config.listenAddress) {
    const ok = isLocalAddress(config.listenAddress, src);
    lines.push({
      ok,
      text: `listen address ${config.listenAddress}${ok ? ' is ours' : ' is not an address of this host'}`,
    });
  }
  return lines;
}

function portLine(
  port: number,
  purpose: string,
  holders: NonNullable<CheckDeps['portHolders']>,
  protocol = 'UDP',
): CheckLine {
  const held = holders(port);
  if (held.length === 0) return { ok: true, text: `${protocol} port ${port} (${purpose}) is free` };
  const who = held.map((h) =>
    h.owner
      ? `${h.owner.name} (pid ${h.owner.pid}) on ${h.address}`
      : `a process we may not inspect (run as root to name it) on ${h.address}`,
  );
  return { ok: false, text: `${protocol} port ${port} (${purpose}) is in use by ${[...new Set(who)].join(', ')}` };
}

/** Why the TFTP root itself cannot be served from, or undefined when it is a readable directory. */
function rootProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isDirectory()) return 'is not a directory';
    accessSync(path, constants.R_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'does not exist'
      : code === 'EACCES'
        ? 'is not readable'
        : `cannot be read (${code ?? 'error'})`;
  }
}

/** The report's words for the refusals of the server's resolver (src/files/root.ts); others by name. */
const REFUSAL_TEXT: Partial<Record<Refusal, string>> = {
  'not-found': 'does not exist',
  'no-permission': 'is not readable',
  'not-a-file': 'is not a regular file',
  'outside-root': 'points outside the TFTP root',
  'bad-name': "is not served: the server refuses names with '..' or control characters",
};

/** One boot file, judged by `FileRoot.check`: the very resolver TFTP and HTTP serve through. */
async function bootFileLine(root: FileRoot, file: string): Promise<CheckLine> {
  if (isUrl(file)) return { ok: true, text: `boot file ${file} is a URL: not checked` };
  const r = await root.check(file);
  return r.ok
    ? { ok: true, text: `boot file ${file} is readable (${r.size} bytes)` }
    : { ok: false, text: `boot file ${file} ${REFUSAL_TEXT[r.reason] ?? `is not served (${r.reason})`}` };
}

/** How long `--check` waits for the upstream's answer to each HEAD. */
const HEAD_TIMEOUT_MS = 5000;

/** A boot file the root does not hold, asked of `--upstream` with a HEAD, as the server would fetch it. */
async function upstreamFileLine(upstream: Upstream, file: string): Promise<CheckLine> {
  try {
    const h = await upstream.head(file, HEAD_TIMEOUT_MS);
    const size = h.length !== undefined ? `${h.length} bytes` : 'size unknown';
    return { ok: true, text: `boot file ${file} is not local; the upstream has it (${size}): ${h.url}` };
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    return err.kind === 'not-found'
      ? { ok: false, text: `boot file ${file} is neither in the TFTP root nor upstream (${err.message})` }
      : { ok: false, text: `boot file ${file} is not local and the upstream failed: ${err.message}` };
  }
}

/** The cache directory exists, or can be made (the daemon makes it, as root before the drop). */
function cacheDirLine(dir: string): CheckLine {
  let at = dir;
  for (;;) {
    try {
      if (!statSync(at).isDirectory()) return { ok: false, text: `cache directory ${dir}: ${at} is not a directory` };
      break;
    } catch {
      const parent = resolve(at, '..');
      if (parent === at) break;
      at = parent;
    }
  }
  if (at !== dir) return { ok: true, text: `cache directory ${dir} does not exist yet; the daemon makes it` };
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return { ok: true, text: `cache directory ${dir} is writable` };
  } catch {
    return { ok: false, text: `cache directory ${dir} is not writable by this user` };
  }
}

/** The root and every boot file the policy can hand out (default and rules); URLs are skipped. */
async function fileLines(config: Config): Promise<CheckLine[]> {
  const files = bootFiles(policyOf(config));
  if (!config.tftp.enabled) {
    return [
      { ok: true, text: `bundled TFTP off: not checking ${files.join(', ') || 'boot files'} (served elsewhere)` },
    ];
  }
  const root = resolve(config.tftp.root);
  const problem = rootProblem(root);
  const u = config.upstream;
  // With --upstream an absent root is fine: every file comes from the mirror.
  if (problem && !(u && problem === 'does not exist')) return [{ ok: false, text: `TFTP root ${root} ${problem}` }];
  const lines: CheckLine[] = [
    problem
      ? { ok: true, text: `TFTP root ${root} does not exist: every file comes from the upstream` }
      : { ok: true, text: `TFTP root ${root} is a readable directory` },
  ];
  // Through --remap, as the server resolves them.
  const fileRoot = new FileRoot(root).setRemap(() => config.remap ?? []);
  const upstream = u ? new Upstream(u.url) : undefined;
  if (u) lines.push({ ok: true, text: `upstream ${u.url}` }, cacheDirLine(u.cacheDir));
  try {
    for (const file of files) {
      if (upstream && !isUrl(file)) {
        // Missing here: the server would fetch it, so ask the upstream as it would.
        const r = await fileRoot.check(file);
        if (!r.ok && r.reason === 'not-found') {
          lines.push(await upstreamFileLine(upstream, file));
          continue;
        }
      }
      lines.push(await bootFileLine(fileRoot, file));
    }
  } finally {
    upstream?.close();
  }
  return lines;
}

/** With `--http`: its root, and every kernel, initrd and `http:///` file the rules name, through `FileRoot.check`. */
async function httpFileLines(config: Config): Promise<CheckLine[]> {
  const http = config.http;
  if (!http?.enabled) return [];
  const problem = rootProblem(http.root);
  if (problem) return [{ ok: false, text: `HTTP root ${http.root} ${problem}` }];
  const lines: CheckLine[] = [{ ok: true, text: `HTTP root ${http.root} is a readable directory` }];
  const root = new FileRoot(http.root).setRemap(() => config.remap ?? []);
  for (const file of httpFiles(policyOf(config))) {
    const r = await root.check(file);
    lines.push(
      r.ok
        ? { ok: true, text: `HTTP file ${file} is readable (${r.size} bytes)` }
        : {
            ok: false,
            text: `HTTP file ${file} ${(REFUSAL_TEXT[r.reason] ?? `is not served (${r.reason})`).replace('TFTP root', 'HTTP root')}`,
          },
    );
  }
  return lines;
}

/**
 * `pxe-pdhcp --check`: validate a configuration without serving. The config already parsed (or we
 * would not be here); check interfaces, ports 67/4011/69, the TFTP root and every boot file. Boot
 * files go through `FileRoot.check`, so `--check` passes exactly the names the server serves.
 */
export async function runCheck(config: Config, deps: CheckDeps = {}): Promise<CheckLine[]> {
  const holders = deps.portHolders ?? ((port: number) => udpPortHolders(port));
  const lines: CheckLine[] = [
    { ok: true, text: `configuration parses${config.configFile ? ` (${config.configFile})` : ''}` },
  ];
  lines.push(...interfaceLines(config, deps.interfaces ?? systemInterfaces));
  lines.push(portLine(config.ports.dhcp, 'proxyDHCP', holders));
  lines.push(portLine(config.ports.proxy, 'PXE boot server', holders));
  if (config.tftp.enabled) lines.push(portLine(config.tftp.port, 'TFTP', holders));
  if (config.http?.enabled)
    lines.push(
      portLine(config.http.port, 'HTTP', deps.tcpHolders ?? ((port: number) => tcpListenHolders(port)), 'TCP'),
    );
  lines.push(...(await fileLines(config)));
  lines.push(...(await httpFileLines(config)));
  lines.push(...eventsAndMetricsLines(config), ...(await decideCheckLines(config)));
  return lines;
}

/** The report printed by `--check`: one line per item, then the verdict. */
export function checkReport(lines: CheckLine[]): string {
  const failed = lines.filter((l) => !l.ok).length;
  const body = lines.map((l) => `${l.ok ? 'ok  ' : 'FAIL'} ${l.text}`).join('\n');
  return `${body}\n${failed === 0 ? 'check passed' : `check failed: ${failed} problem${failed > 1 ? 's' : ''}`}\n`;
}
