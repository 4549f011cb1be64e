import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built daemon (`make build`); robustness tests run what ships. */
export const BUILT_MAIN = `${ROOT}dist/bin/pxe-pdhcp.js`;
const SOURCE_MAIN = `${ROOT}src/bin/pxe-pdhcp.ts`;

/** A daemon child process whose output is collected (and always drained, so it never blocks). */
export interface DaemonProcess {
  child: ChildProcess;
  /** All of stderr and stdout so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process ends. */
  exited: Promise<number | string>;
}

/** Loopback flags: every address 127.0.0.1, every port ephemeral, replies to `clientPort`. */
export function loopbackArgs(clientPort: number, extra: string[] = []): string[] {
  return [
    '-d',
    '-l',
    '127.0.0.1',
    '-t',
    '127.0.0.1',
    '-b',
    '127.0.0.1',
    '--bind-address',
    '127.0.0.1',
    '--dhcp-port',
    '0',
    '--proxy-port',
    '0',
    '--client-port',
    String(clientPort),
    '--no-tftp',
    ...extra,
    'pxelinux.0',
  ];
}

/**
 * Start the daemon: the built one when `built` (fails clearly without `make build`), else the
 * sources through tsx. `prefix` runs it under another command (`ip netns exec NS`).
 */
export function startDaemonProcess(args: string[], o: { built?: boolean; prefix?: string[] } = {}): DaemonProcess {
  if (o.built && !existsSync(BUILT_MAIN)) throw new Error(`${BUILT_MAIN} is missing: run make build first`);
  const nodeArgs = o.built ? [BUILT_MAIN, ...args] : ['--import', 'tsx', SOURCE_MAIN, ...args];
  const argv = [...(o.prefix ?? []), process.execPath, ...nodeArgs];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let out = '';
  const keep = (chunk: Buffer): void => {
    out += chunk.toString();
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, output: () => out, exited };
}

/** Wait for `pattern` in the output; rejects (with the output) on timeout or exit. */
export async function waitForLine(d: DaemonProcess, pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = pattern.exec(d.output());
    if (m) return m;
    if (d.child.exitCode !== null || d.child.signalCode !== null) {
      throw new Error(
        `daemon exited (${d.child.exitCode ?? d.child.signalCode}) before ${String(pattern)}:\n${d.output()}`,
      );
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(pattern)}:\n${d.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The proxyDHCP and 4011 ports from the daemon's `listening` line. */
export async function listeningPorts(d: DaemonProcess): Promise<{ dhcp: number; proxy: number }> {
  const m = await waitForLine(d, /listening .*ports=(\d+),(\d+)/);
  return { dhcp: Number(m[1]), proxy: Number(m[2]) };
}

/** Stop a daemon we started (by its PID): SIGTERM, then SIGKILL after `graceMs`. */
export async function stopDaemon(d: DaemonProcess, graceMs = 3000): Promise<number | string> {
  if (d.child.exitCode === null && d.child.signalCode === null && d.child.pid !== undefined) {
    d.child.kill('SIGTERM');
    const t = setTimeout(() => d.child.kill('SIGKILL'), graceMs);
    const code = await d.exited;
    clearTimeout(t);
    return code;
  }
  return d.exited;
}
