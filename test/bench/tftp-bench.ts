/**
 * `make bench-tftp`: our bundled TFTP server (the real daemon) next to tftpd-hpa, dnsmasq's TFTP and
 * atftpd, measured in one run with the atftp client:
 *   lockstep  one 64 MiB file at blksize 1468, one block per ACK (RFC 1350);
 *   window16  the same with windowsize 16 (RFC 7440; only ours and atftpd implement it);
 *   parallel  20 clients fetching one 4 MiB file at once (aggregate MB/s, blksize 1468 lockstep).
 * Our daemon's peak RSS (VmHWM, reset through clear_refs first) is taken over the parallel run.
 *
 * Layout: a client namespace with one veth pair to each server's namespace (10.89.N.0/24), every
 * server on port 69 of its own address. Each round runs every scenario on every server, the server
 * order rotating between rounds, so load from other work on the machine falls on all alike; the
 * median of the rounds is reported. Every fetched file is checked (size and sha256). Each server
 * first serves both files once, unmeasured (JIT, page cache). The server ends of the links segment
 * UDP GSO buffers before sending (gso_max_segs 1), as a NIC without segmentation offload would.
 *
 * atftpd is not installed (on Debian it conflicts with tftpd-hpa): it is unpacked from
 * `apt-get download atftpd` into the work directory, or taken from BENCH_ATFTPD (a binary path).
 * Environment: BENCH_ROUNDS (default 5), BENCH_ONLY (comma list of servers), BENCH_CLIENTS (20),
 * BENCH_BIG_MIB (64), BENCH_JSON (write the raw results there), BENCH_NODE_ARGS (extra node flags
 * for our daemon, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`; the daemon runs as nobody after
 * binding, so that directory must be writable by it), BENCH_DAEMON_ARGS (extra daemon options, e.g.
 * `--tftp-workers 0`).
 */
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Lab, have, waitForOutput } from '../helpers/netns.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 20);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 64);
const SMALL_MIB = 4;
const BLKSIZE = 1468;
const MB = 1e6;

const SERVERS = ['pxe-pdhcp', 'tftpd-hpa', 'dnsmasq', 'atftpd'] as const;
type ServerName = (typeof SERVERS)[number];
const SCENARIOS = ['lockstep', 'window16', 'parallel'] as const;
type Scenario = (typeof SCENARIOS)[number];
/** Servers that implement RFC 7440; the others would answer window16 in lockstep. */
const WINDOWED: ReadonlySet<ServerName> = new Set(['pxe-pdhcp', 'atftpd']);

interface Target {
  name: ServerName;
  ns: string;
  clientIp: string;
  serverIp: string;
  process?: ChildProcess;
  cpu?: CpuAccount | null;
}

interface Row {
  server: ServerName;
  scenario: Scenario;
  round: number;
  bytes: number;
  seconds: number;
  mbps: number;
  /** Our daemon only, parallel only: peak RSS over the run and RSS before it (KiB). */
  hwmKiB?: number;
  rssBeforeKiB?: number;
  /** CPU seconds the server (all its threads and processes) used during the run. */
  cpuSeconds?: number;
  load1: number;
}

function fail(message: string): never {
  process.stderr.write(`tftp-bench: ${message}\n`);
  process.exit(1);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * CPU time of a server and every process it forks (tftpd-hpa forks one per transfer and does not
 * reap them, so /proc/PID/stat cannot see their time): a cgroup of its own, v2 (cpu.stat) or v1
 * cpuacct. Null when no hierarchy is writable; the CPU column then stays empty.
 */
class CpuAccount {
  private constructor(
    readonly dir: string,
    readonly read: () => number,
  ) {}

  static create(name: string): CpuAccount | null {
    const candidates: [string, string, (text: string) => number][] = [
      ['/sys/fs/cgroup/unified', 'cpu.stat', (t) => Number(/^usage_usec (\d+)/m.exec(t)?.[1]) / 1e6],
      ['/sys/fs/cgroup', 'cpu.stat', (t) => Number(/^usage_usec (\d+)/m.exec(t)?.[1]) / 1e6],
      ['/sys/fs/cgroup/cpuacct', 'cpuacct.usage', (t) => Number(t) / 1e9],
    ];
    for (const [base, file, parse] of candidates) {
      if (!existsSync(join(base, 'cgroup.procs'))) continue;
      const dir = join(base, name);
      try {
        mkdirSync(dir);
        if (!existsSync(join(dir, file))) throw new Error('no accounting file');
        return new CpuAccount(dir, () => parse(readFileSync(join(dir, file), 'utf8')));
      } catch {
        rmSync(dir, { recursive: false, force: true });
      }
    }
    return null;
  }

  add(pid: number): void {
    writeFileSync(join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** Remove the (by now empty) cgroup. */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      process.stderr.write(`tftp-bench: could not remove cgroup ${this.dir}\n`);
    }
  }
}

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** proc(5): writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** The atftpd binary: BENCH_ATFTPD, or unpacked from the Debian package (never installed). */
function atftpd(work: string): string {
  if (process.env.BENCH_ATFTPD) return process.env.BENCH_ATFTPD;
  const dir = join(work, 'atftpd');
  mkdirSync(dir);
  try {
    execFileSync('apt-get', ['download', '-q', 'atftpd'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    fail(
      `apt-get download atftpd failed (set BENCH_ATFTPD to an atftpd binary): ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`,
    );
  }
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (!deb) fail('apt-get download atftpd left no .deb');
  execFileSync('dpkg', ['-x', join(dir, deb), join(dir, 'x')]);
  const bin = join(dir, 'x/usr/sbin/atftpd');
  if (!existsSync(bin)) fail(`no usr/sbin/atftpd in ${deb}`);
  return bin;
}

/** Wait for a veth end to report carrier. */
async function carrier(lab: Lab, ns: string, dev: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await lab.exec(ns, 'cat', [`/sys/class/net/${dev}/carrier`])).stdout.trim() === '1') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  fail(`${dev} in ${ns} has no carrier`);
}

interface Files {
  root: string;
  big: { name: string; data: Buffer };
  small: { name: string; data: Buffer };
}

function makeRoot(work: string): Files {
  const root = join(work, 'root');
  mkdirSync(root);
  const big = { name: 'big.bin', data: randomBytes(BIG_MIB * 1024 * 1024) };
  const small = { name: 'small.bin', data: randomBytes(SMALL_MIB * 1024 * 1024) };
  for (const f of [big, small, { name: 'pxelinux.0', data: randomBytes(1000) }])
    writeFileSync(join(root, f.name), f.data, { mode: 0o644 });
  // Our daemon and atftpd read as nobody after binding.
  chmodSync(work, 0o755);
  chmodSync(root, 0o755);
  return { root, big, small };
}

function drain(p: ChildProcess): void {
  p.stdout?.resume();
  p.stderr?.resume();
}

async function startServer(lab: Lab, t: Target, files: Files, atftpdBin: string, work: string): Promise<void> {
  switch (t.name) {
    case 'pxe-pdhcp': {
      const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const daemonArgs = (process.env.BENCH_DAEMON_ARGS ?? '').split(' ').filter(Boolean);
      t.process = lab.spawn(
        t.ns,
        process.execPath,
        [...nodeArgs, MAIN, '-d', '-i', 'eth0', '--tftp-root', files.root, ...daemonArgs, 'pxelinux.0'],
        { cwd: ROOT },
      );
      const started = waitForOutput(t.process, /TFTP server listening/, 15_000);
      drain(t.process);
      await started;
      return;
    }
    case 'tftpd-hpa':
      // -L: standalone in the foreground; -s: serve (chroot) the root; -u root: no privilege drop.
      t.process = lab.spawn(t.ns, 'in.tftpd', ['-L', '-u', 'root', '-a', `${t.serverIp}:69`, '-s', files.root]);
      break;
    case 'dnsmasq':
      t.process = lab.spawn(t.ns, 'dnsmasq', [
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0',
        '--user=root',
        '--interface=eth0',
        '--enable-tftp',
        `--tftp-root=${files.root}`,
        `--log-facility=${join(work, 'dnsmasq.log')}`,
        `--pid-file=${join(work, 'dnsmasq.pid')}`,
      ]);
      break;
    case 'atftpd':
      t.process = lab.spawn(t.ns, atftpdBin, [
        '--daemon',
        '--no-fork',
        '--port',
        '69',
        '--bind-address',
        t.serverIp,
        '--user',
        'root',
        '--group',
        'root',
        '--logfile',
        join(work, 'atftpd.log'),
        files.root,
      ]);
      break;
  }
  drain(t.process);
}

/** One atftp fetch; resolves with the seconds it took. */
async function fetch(
  lab: Lab,
  ns: string,
  t: Target,
  name: string,
  dest: string,
  window: number | null,
): Promise<number> {
  const options = ['--option', `blksize ${BLKSIZE}`, ...(window ? ['--option', `windowsize ${window}`] : [])];
  const started = performance.now();
  const r = await lab.exec(ns, 'atftp', [...options, '-g', '-r', name, '-l', dest, t.serverIp, '69'], 300_000);
  const seconds = (performance.now() - started) / 1000;
  if (r.code !== 0) fail(`atftp from ${t.name} (${name}) failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return seconds;
}

function verify(t: Target, dest: string, data: Buffer): void {
  const got = readFileSync(dest);
  if (got.length !== data.length || sha(got) !== sha(data))
    fail(`${t.name} delivered a wrong file (${got.length} bytes, expected ${data.length})`);
  rmSync(dest);
}

/** Not measured: each server serves both files once, so JIT and page cache are warm for all alike. */
async function warmUp(lab: Lab, ns: string, t: Target, files: Files, out: string): Promise<void> {
  for (const window of [null, 16]) {
    const dest = join(out, `warm-${t.name}`);
    await fetch(lab, ns, t, files.small.name, dest, window);
    verify(t, dest, files.small.data);
  }
}

/** Until a server answers: small fetches, up to 10 s. */
async function waitReady(lab: Lab, ns: string, t: Target, out: string): Promise<void> {
  const dest = join(out, `ready-${t.name}`);
  for (let i = 0; i < 50; i++) {
    const r = await lab.exec(ns, 'atftp', ['-g', '-r', 'pxelinux.0', '-l', dest, t.serverIp, '69'], 10_000);
    if (r.code === 0 && existsSync(dest) && statSync(dest).size === 1000) return rmSync(dest);
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`${t.name} does not serve files on ${t.serverIp}:69`);
}

async function measure(
  lab: Lab,
  ns: string,
  t: Target,
  files: Files,
  out: string,
  scenario: Scenario,
  round: number,
): Promise<Row> {
  const pid = t.name === 'pxe-pdhcp' ? t.process!.pid! : undefined;
  const cpu0 = t.cpu?.read() ?? 0;
  const load1 = loadavg()[0]!;
  let rssBeforeKiB: number | undefined;
  let seconds: number;
  let bytes: number;
  if (scenario === 'parallel') {
    if (pid) {
      rssBeforeKiB = statusKiB(pid, 'VmRSS');
      resetPeak(pid);
    }
    const dests = Array.from({ length: CLIENTS }, (_, i) => join(out, `${t.name}-${i}`));
    const started = performance.now();
    await Promise.all(dests.map((d) => fetch(lab, ns, t, files.small.name, d, null)));
    seconds = (performance.now() - started) / 1000;
    bytes = CLIENTS * files.small.data.length;
    for (const d of dests) verify(t, d, files.small.data);
  } else {
    const dest = join(out, `${t.name}-big`);
    seconds = await fetch(lab, ns, t, files.big.name, dest, scenario === 'window16' ? 16 : null);
    bytes = files.big.data.length;
    verify(t, dest, files.big.data);
  }
  return {
    server: t.name,
    scenario,
    round,
    bytes,
    seconds,
    mbps: bytes / MB / seconds,
    ...(pid && scenario === 'parallel' ? { hwmKiB: statusKiB(pid, 'VmHWM'), rssBeforeKiB } : {}),
    ...(t.cpu ? { cpuSeconds: t.cpu.read() - cpu0 } : {}),
    load1,
  };
}

async function setUp(lab: Lab, names: readonly ServerName[]): Promise<{ client: string; targets: Target[] }> {
  const client = `${lab.id}-cli`;
  await lab.addNamespace(client);
  const targets: Target[] = [];
  for (const [i, name] of names.entries()) {
    const ns = `${lab.id}-${i}`;
    await lab.addNamespace(ns);
    const n = SERVERS.indexOf(name) + 1;
    const t: Target = { name, ns, clientIp: `10.89.${n}.1`, serverIp: `10.89.${n}.2` };
    const iface = `t${n}`;
    await run('ip', ['link', 'add', iface, 'netns', client, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await lab.ip(client, 'addr', 'add', `${t.clientIp}/24`, 'dev', iface);
    await lab.ip(ns, 'addr', 'add', `${t.serverIp}/24`, 'dev', 'eth0');
    // A window sent as one UDP GSO buffer would cross a veth whole; segment it before the link, as
    // a NIC without segmentation offload does, so every server puts single datagrams on the wire.
    await lab.ip(ns, 'link', 'set', 'eth0', 'gso_max_segs', '1');
    await lab.ip(client, 'link', 'set', iface, 'up');
    await lab.ip(ns, 'link', 'set', 'eth0', 'up');
    await carrier(lab, ns, 'eth0');
    targets.push(t);
  }
  return { client, targets };
}

const fmt = (n: number | undefined, digits = 1): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mbpsOf = (rows: Row[], server: ServerName, scenario: Scenario): number[] =>
  rows.filter((r) => r.server === server && r.scenario === scenario).map((r) => r.mbps);

function table(rows: Row[], names: readonly ServerName[]): string {
  const head = `| server | lockstep MB/s | windowsize 16 MB/s | ${CLIENTS} clients MB/s |`;
  const lines = [head, '|---|---|---|---|'];
  for (const s of names) {
    const cell = (sc: Scenario): string => {
      if (sc === 'window16' && !WINDOWED.has(s)) return 'n/a (no windowsize)';
      const xs = mbpsOf(rows, s, sc);
      return xs.length ? `${fmt(median(xs))} (${xs.map((x) => fmt(x)).join(' / ')})` : '-';
    };
    lines.push(`| ${s} | ${cell('lockstep')} | ${cell('window16')} | ${cell('parallel')} |`);
  }
  return lines.join('\n');
}

/** Server CPU per MB served: much less dependent on how busy the machine was than MB/s. */
function cpuTable(rows: Row[], names: readonly ServerName[]): string {
  const lines = [`| server | lockstep | windowsize 16 | ${CLIENTS} clients |`, '|---|---|---|---|'];
  for (const s of names) {
    const cell = (sc: Scenario): string => {
      const xs = rows
        .filter((r) => r.server === s && r.scenario === sc && r.cpuSeconds !== undefined)
        .map((r) => (r.cpuSeconds! * 1000) / (r.bytes / MB));
      return xs.length ? fmt(median(xs), 2) : '-';
    };
    lines.push(`| ${s} | ${cell('lockstep')} | ${WINDOWED.has(s) ? cell('window16') : 'n/a'} | ${cell('parallel')} |`);
  }
  return lines.join('\n');
}

function summary(rows: Row[], names: readonly ServerName[]): string {
  const out: string[] = [];
  const ours = (sc: Scenario): number => median(mbpsOf(rows, 'pxe-pdhcp', sc));
  const ratio = (sc: Scenario, other: ServerName): string => {
    const theirs = median(mbpsOf(rows, other, sc));
    return Number.isFinite(theirs) && Number.isFinite(ours(sc)) ? `${(ours(sc) / theirs).toFixed(2)}x` : '-';
  };
  if (names.includes('pxe-pdhcp')) {
    out.push('ratios, pxe-pdhcp / other (medians):');
    for (const other of names.filter((n) => n !== 'pxe-pdhcp')) {
      const w = WINDOWED.has(other) ? ratio('window16', other) : 'n/a';
      out.push(
        `  vs ${other}: lockstep ${ratio('lockstep', other)}, windowsize 16 ${w}, ${CLIENTS} clients ${ratio('parallel', other)}`,
      );
    }
    const targets: [string, Scenario, ServerName][] = [
      [`${CLIENTS}-client aggregate >= 1.0x tftpd-hpa`, 'parallel', 'tftpd-hpa'],
      ['windowsize 16 >= 1.0x atftpd', 'window16', 'atftpd'],
      ['lockstep >= 1.0x dnsmasq', 'lockstep', 'dnsmasq'],
    ];
    out.push('targets:');
    for (const [label, sc, other] of targets) {
      if (!names.includes(other)) continue;
      const r = ours(sc) / median(mbpsOf(rows, other, sc));
      out.push(`  ${label}: ${r.toFixed(2)}x ${r >= 1 ? 'met' : 'MISSED'}`);
    }
    const par = rows.filter((r) => r.server === 'pxe-pdhcp' && r.scenario === 'parallel');
    if (par.length) {
      const mib = (k: number | undefined): string => fmt((k ?? NaN) / 1024);
      out.push(
        `pxe-pdhcp RSS with ${CLIENTS} clients on one file: peak (VmHWM) ${par.map((r) => mib(r.hwmKiB)).join(' / ')} MiB, before ${par.map((r) => mib(r.rssBeforeKiB)).join(' / ')} MiB`,
      );
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['atftp', 'atftp'],
    ['in.tftpd', 'tftpd-hpa'],
    ['dnsmasq', 'dnsmasq-base'],
    ['dpkg', 'dpkg'],
  ]) {
    if (!have(tool!)) fail(`${tool} is not installed (Debian: ${pkg})`);
  }
  if (!existsSync(MAIN)) fail(`${MAIN} is missing: run make build`);
  const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
  for (const o of only ?? [])
    if (!SERVERS.includes(o as ServerName)) fail(`BENCH_ONLY: unknown server ${o} (one of ${SERVERS.join(', ')})`);
  const names = SERVERS.filter((s) => !only || only.includes(s));
  const work = mkdtempSync(join(tmpdir(), 'tftp-bench-'));
  // Client output on tmpfs, so the client's disk writes weigh as little as possible.
  const out = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'tftp-bench-out-'));
  const lab = await Lab.create('tbench');
  let targets: Target[] = [];
  const stop = (): void => {
    lab.cleanupSync();
    for (const t of targets) t.cpu?.remove();
    rmSync(work, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const atftpdBin = names.includes('atftpd') ? atftpd(work) : '';
    const files = makeRoot(work);
    const set = await setUp(lab, names);
    const { client } = set;
    targets = set.targets;
    for (const t of targets) {
      await startServer(lab, t, files, atftpdBin, work);
      t.cpu = CpuAccount.create(`${lab.id}-${t.name}`);
      t.cpu?.add(t.process!.pid!);
      await waitReady(lab, client, t, out);
      await warmUp(lab, client, t, files, out);
    }
    process.stdout.write(
      `tftp-bench: ${ROUNDS} rounds; ${BIG_MIB} MiB lockstep and windowsize 16, ${CLIENTS} x ${SMALL_MIB} MiB at once; blksize ${BLKSIZE}; load ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}\n`,
    );
    const rows: Row[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const order = targets.map((_, i) => targets[(i + round - 1) % targets.length]!);
      for (const scenario of SCENARIOS) {
        for (const t of order) {
          if (scenario === 'window16' && !WINDOWED.has(t.name)) continue;
          const row = await measure(lab, client, t, files, out, scenario, round);
          rows.push(row);
          const extra = row.hwmKiB !== undefined ? `, peak RSS ${fmt(row.hwmKiB / 1024)} MiB` : '';
          process.stdout.write(
            `round ${round} ${scenario} ${t.name}: ${fmt(row.mbps)} MB/s (${fmt(row.seconds, 2)} s, load ${fmt(row.load1)})${extra}\n`,
          );
        }
      }
    }
    process.stdout.write(`\nMB/s, median (each round)\n${table(rows, names)}\n`);
    process.stdout.write(
      `\nserver CPU ms per MB served, median (cgroup CPU accounting)\n${cpuTable(rows, names)}\n\n${summary(rows, names)}\n`,
    );
    if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2));
  } finally {
    await lab.cleanup();
    for (const t of targets) t.cpu?.remove();
    rmSync(work, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
