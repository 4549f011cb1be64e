import { accessSync, constants, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { udpPortHolders } from '../net/port-owner.js';
import type { Config } from '../daemon/config.js';
import { policyOf } from '../daemon/daemon.js';
import { UserError } from '../core/errors.js';
import { isLocalAddress, lookupInterface, systemInterfaces, type InterfaceSources } from '../net/interfaces.js';
import { bootFiles } from '../pxe/boot.js';

/** One line of the `--check` report. */
export interface CheckLine {
  ok: boolean;
  text: string;
}

export interface CheckDeps {
  interfaces?: InterfaceSources;
  /** Who holds a UDP port; /proc by default. */
  portHolders?: (port: number) => { address: string; owner?: { pid: number; name: string } }[];
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

function portLine(port: number, purpose: string, holders: NonNullable<CheckDeps['portHolders']>): CheckLine {
  const held = holders(port);
  if (held.length === 0) return { ok: true, text: `UDP port ${port} (${purpose}) is free` };
  const who = held.map((h) =>
    h.owner
      ? `${h.owner.name} (pid ${h.owner.pid}) on ${h.address}`
      : `a process we may not inspect (run as root to name it) on ${h.address}`,
  );
  return { ok: false, text: `UDP port ${port} (${purpose}) is in use by ${[...new Set(who)].join(', ')}` };
}

function readable(path: string, dir: boolean): string | undefined {
  try {
    const st = statSync(path);
    if (dir ? !st.isDirectory() : !st.isFile()) return dir ? 'is not a directory' : 'is not a regular file';
    accessSync(path, dir ? constants.R_OK | constants.X_OK : constants.R_OK);
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

const URL = /^[a-z][a-z0-9+.-]*:\/\//i;

/** The root and every boot file the policy can hand out (default and rules); URLs are skipped. */
function fileLines(config: Config): CheckLine[] {
  const files = bootFiles(policyOf(config));
  if (!config.tftp.enabled) {
    return [
      { ok: true, text: `bundled TFTP off: not checking ${files.join(', ') || 'boot files'} (served elsewhere)` },
    ];
  }
  const root = resolve(config.tftp.root);
  const rootProblem = readable(root, true);
  if (rootProblem) return [{ ok: false, text: `TFTP root ${root} ${rootProblem}` }];
  const lines: CheckLine[] = [{ ok: true, text: `TFTP root ${root} is a readable directory` }];
  for (const file of files) {
    if (URL.test(file)) {
      lines.push({ ok: true, text: `boot file ${file} is a URL: not checked` });
      continue;
    }
    // The TFTP server strips a leading '/' and maps '\' to '/' (docs/tftp.md#file-names).
    const path = resolve(root, file.replace(/\\/g, '/').replace(/^\/+/, ''));
    if (path !== root && !path.startsWith(root + sep)) {
      lines.push({ ok: false, text: `boot file ${file} points outside the TFTP root` });
      continue;
    }
    const problem = readable(path, false);
    lines.push({ ok: !problem, text: `boot file ${file} ${problem ?? `is readable (${statSync(path).size} bytes)`}` });
  }
  return lines;
}

/**
 * `pxe-pdhcp --check`: validate a configuration without serving. The config already parsed (or we
 * would not be here); check interfaces, ports 67/4011/69, the TFTP root and every boot file.
 */
export function runCheck(config: Config, deps: CheckDeps = {}): CheckLine[] {
  const holders = deps.portHolders ?? ((port: number) => udpPortHolders(port));
  const lines: CheckLine[] = [
    { ok: true, text: `configuration parses${config.configFile ? ` (${config.configFile})` : ''}` },
  ];
  lines.push(...interfaceLines(config, deps.interfaces ?? systemInterfaces));
  lines.push(portLine(config.ports.dhcp, 'proxyDHCP', holders));
  lines.push(portLine(config.ports.proxy, 'PXE boot server', holders));
  if (config.tftp.enabled) lines.push(portLine(config.tftp.port, 'TFTP', holders));
  lines.push(...fileLines(config));
  return lines;
}

/** The report printed by `--check`: one line per item, then the verdict. */
export function checkReport(lines: CheckLine[]): string {
  const failed = lines.filter((l) => !l.ok).length;
  const body = lines.map((l) => `${l.ok ? 'ok  ' : 'FAIL'} ${l.text}`).join('\n');
  return `${body}\n${failed === 0 ? 'check passed' : `check failed: ${failed} problem${failed > 1 ? 's' : ''}`}\n`;
}
