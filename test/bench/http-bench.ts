/**
 * `make bench-http`: our HTTP server (the real daemon, `--http`) next to nginx (Debian `nginx-light`)
 * serving the same directory, measured in one run with curl from another network namespace:
 *   single    one 64 MiB download;
 *   parallel  20 downloads of that file at once (aggregate MB/s);
 *   slow      20 clients reading at 256 kB/s each for a few seconds: peak RSS of each server.
 * Server CPU per MB comes from /proc/PID/stat (utime + stime of the server and, for nginx, its
 * workers). Each round runs every scenario on both servers, the order alternating between rounds;
 * the median of the rounds is reported. Each server first serves the file once, unmeasured, and
 * that download is checked by size and sha256.
 *
 * Layout: a client namespace and a server namespace joined by one veth pair (10.90.0.1 and
 * 10.90.0.2); our daemon on port 80, nginx on port 8080, both in the server namespace. nginx runs
 * one worker process (our server is one process with one event loop) with Debian's `sendfile on`.
 * Environment: BENCH_ROUNDS (default 3), BENCH_CLIENTS (20), BENCH_BIG_MIB (64), BENCH_JSON.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, have, waitForOutput } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 20);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 64);
const SLOW_RATE = '256k';
const SLOW_SECONDS = 4;
const MB = 1e6;
const CLIENT_IP = '10.90.0.1';
const SERVER_IP = '10.90.0.2';

const SERVERS = ['pxe-pdhcp', 'nginx'] as const;
type ServerName = (typeof SERVERS)[number];
const SCENARIOS = ['single', 'parallel'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Target {
  name: ServerName;
  port: number;
  process?: ChildProcess;
}

interface Row {
  server: ServerName;
  scenario: Scenario;
  round: number;
  bytes: number;
  seconds: number;
  mbps: number;
  cpuSeconds: number;
  load1: number;
}

function fail(message: string): never {
  process.stderr.write(`http-bench: ${message}\n`);
  process.exit(1);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const TICK = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

/** The process and, for nginx, its workers (its children). */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** utime + stime (proc(5) fields 14 and 15) of a process tree, in seconds. */
function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / TICK;
}

function kib(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      sum += m ? Number(m[1]) : 0;
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** proc(5): writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS. */
function resetPeak(pid: number): void {
  for (const p of processTree(pid)) writeFileSync(`/proc/${p}/clear_refs`, '5');
}

function drain(p: ChildProcess): void {
  p.stdout?.resume();
  p.stderr?.resume();
}

async function startServer(lab: Lab, ns: string, t: Target, root: string, work: string): Promise<void> {
  if (t.name === 'pxe-pdhcp') {
    t.process = lab.spawn(ns, process.execPath, [
      MAIN,
      '-d',
      '-i',
      'eth0',
      '--no-tftp',
      '--http',
      '--http-port',
      String(t.port),
      '--http-root',
      root,
      '--log-level',
      'warn',
      'undionly.kpxe',
    ]);
    const started = waitForOutput(t.process, /listening/, 15_000).catch(() => undefined);
    drain(t.process);
    await started;
    return;
  }
  const conf = join(work, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      `pid ${join(work, 'nginx.pid')};`,
      `error_log ${join(work, 'nginx-error.log')};`,
      'events { worker_connections 1024; }',
      'http {',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  access_log off;',
      '  default_type application/octet-stream;',
      `  client_body_temp_path ${work};`,
      `  server { listen ${SERVER_IP}:${t.port}; root ${root}; }`,
      '}',
      '',
    ].join('\n'),
  );
  t.process = lab.spawn(ns, 'nginx', ['-c', conf, '-e', join(work, 'nginx-error.log')]);
  drain(t.process);
}

async function curl(lab: Lab, ns: string, args: string[], timeoutMs = 600_000): Promise<string> {
  const r = await lab.exec(ns, 'curl', ['-sS', ...args], timeoutMs);
  if (r.code !== 0) fail(`curl ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

async function waitReady(lab: Lab, ns: string, t: Target): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await lab.exec(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', url(t, 'small')], 5000);
    if (r.stdout === '200') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`${t.name} does not answer on ${SERVER_IP}:${t.port}`);
}

const url = (t: Target, name: string): string => `http://${SERVER_IP}:${t.port}/${name}`;

async function warmUp(lab: Lab, ns: string, t: Target, out: string, data: Buffer): Promise<void> {
  const dest = join(out, `warm-${t.name}`);
  await curl(lab, ns, ['-o', dest, url(t, 'big.bin')]);
  const got = readFileSync(dest);
  if (got.length !== data.length || sha(got) !== sha(data)) fail(`${t.name} delivered a wrong file`);
  rmSync(dest);
}

async function measure(lab: Lab, ns: string, t: Target, scenario: Scenario, round: number, size: number): Promise<Row> {
  const pid = t.process!.pid!;
  const cpu0 = cpuSeconds(pid);
  const load1 = loadavg()[0]!;
  const started = performance.now();
  let bytes: number;
  if (scenario === 'single') {
    const got = await curl(lab, ns, ['-o', '/dev/null', '-w', '%{size_download}', url(t, 'big.bin')]);
    bytes = Number(got);
  } else {
    const args = ['-Z', '--parallel-max', String(CLIENTS), '-w', '%{size_download}\n'];
    for (let i = 0; i < CLIENTS; i++) args.push('-o', '/dev/null', url(t, `big.bin?c=${i}`));
    const got = await curl(lab, ns, args);
    bytes = got
      .split('\n')
      .filter(Boolean)
      .reduce((a, b) => a + Number(b), 0);
  }
  const seconds = (performance.now() - started) / 1000;
  const want = scenario === 'single' ? size : size * CLIENTS;
  if (bytes !== want) fail(`${t.name} ${scenario}: ${bytes} bytes, expected ${want}`);
  return {
    server: t.name,
    scenario,
    round,
    bytes,
    seconds,
    mbps: bytes / MB / seconds,
    cpuSeconds: cpuSeconds(pid) - cpu0,
    load1,
  };
}

/** 20 clients reading slowly: the server's peak RSS over the run, and before it (KiB). */
async function slowClients(lab: Lab, ns: string, t: Target): Promise<{ before: number; peak: number }> {
  const pid = t.process!.pid!;
  const before = kib(pid, 'VmRSS');
  resetPeak(pid);
  const args = ['--limit-rate', SLOW_RATE, '--max-time', String(SLOW_SECONDS), '-Z', '--parallel-max', String(CLIENTS)];
  for (let i = 0; i < CLIENTS; i++) args.push('-o', '/dev/null', url(t, `big.bin?slow=${i}`));
  await lab.exec(ns, 'curl', ['-s', ...args], (SLOW_SECONDS + 30) * 1000); // exit 28 (timeout) is the point
  return { before, peak: kib(pid, 'VmHWM') };
}

const fmt = (n: number | undefined, digits = 1): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function report(rows: Row[], rss: Map<ServerName, { before: number; peak: number }[]>): string {
  const mbps = (s: ServerName, sc: Scenario): number =>
    median(rows.filter((r) => r.server === s && r.scenario === sc).map((r) => r.mbps));
  const cpu = (s: ServerName, sc: Scenario): number =>
    median(rows.filter((r) => r.server === s && r.scenario === sc).map((r) => (r.cpuSeconds * 1000) / (r.bytes / MB)));
  const each = (s: ServerName, sc: Scenario): string =>
    rows
      .filter((r) => r.server === s && r.scenario === sc)
      .map((r) => fmt(r.mbps, 0))
      .join(' / ');
  const mib = (k: number): string => fmt(k / 1024);
  const lines = [
    `| server | 1 stream MB/s | ${CLIENTS} streams MB/s (aggregate) | CPU ms/MB, 1 stream | CPU ms/MB, ${CLIENTS} streams | RSS with ${CLIENTS} slow clients, peak (before) MiB |`,
    '|---|---|---|---|---|---|',
  ];
  for (const s of SERVERS) {
    const r = rss.get(s) ?? [];
    lines.push(
      `| ${s} | ${fmt(mbps(s, 'single'), 0)} (${each(s, 'single')}) | ${fmt(mbps(s, 'parallel'), 0)} (${each(s, 'parallel')}) | ${fmt(cpu(s, 'single'), 2)} | ${fmt(cpu(s, 'parallel'), 2)} | ${r.map((x) => mib(x.peak)).join(' / ')} (${r.map((x) => mib(x.before)).join(' / ')}) |`,
    );
  }
  const ratio = (sc: Scenario): number => mbps('pxe-pdhcp', sc) / mbps('nginx', sc);
  lines.push(
    '',
    `ratio pxe-pdhcp / nginx (medians): 1 stream ${fmt(ratio('single'), 2)}x, ${CLIENTS} streams ${fmt(ratio('parallel'), 2)}x`,
    `target: ${CLIENTS}-stream aggregate >= 0.8x nginx: ${fmt(ratio('parallel'), 2)}x ${ratio('parallel') >= 0.8 ? 'met' : 'MISSED'}`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['curl', 'curl'],
    ['nginx', 'nginx-light'],
  ]) {
    if (!have(tool!)) fail(`${tool} is not installed (Debian: ${pkg}; make deps installs it)`);
  }
  if (!existsSync(MAIN)) fail(`${MAIN} is missing: run make build`);
  const work = mkdtempSync(join(tmpdir(), 'http-bench-'));
  const out = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'http-bench-out-'));
  const root = join(work, 'root');
  mkdirSync(root);
  const big = randomBytes(BIG_MIB * 1024 * 1024);
  writeFileSync(join(root, 'big.bin'), big);
  writeFileSync(join(root, 'small'), 'ok\n');
  // Our daemon reads as nobody after binding; nginx's worker as www-data.
  for (const d of [work, root]) chmodSync(d, 0o755);
  const lab = await Lab.create('hbench');
  const stop = (): void => {
    lab.cleanupSync();
    rmSync(work, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const client = `${lab.id}-cli`;
    const server = `${lab.id}-srv`;
    await lab.addNamespace(client);
    await lab.addNamespace(server);
    await lab.ip(client, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', server);
    await lab.ip(client, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
    await lab.ip(server, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'eth0');
    await lab.ip(client, 'link', 'set', 'eth0', 'up');
    await lab.ip(server, 'link', 'set', 'eth0', 'up');
    await lab.carrier(server, 'eth0');
    const targets: Target[] = [
      { name: 'pxe-pdhcp', port: 80 },
      { name: 'nginx', port: 8080 },
    ];
    for (const t of targets) {
      await startServer(lab, server, t, root, work);
      await waitReady(lab, client, t);
      await warmUp(lab, client, t, out, big);
    }
    process.stdout.write(
      `http-bench: ${ROUNDS} rounds; ${BIG_MIB} MiB, 1 stream and ${CLIENTS} at once, over a veth pair; load ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}\n`,
    );
    const rows: Row[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 ? targets : [...targets].reverse();
      for (const scenario of SCENARIOS) {
        for (const t of order) {
          const row = await measure(lab, client, t, scenario, round, big.length);
          rows.push(row);
          process.stdout.write(
            `round ${round} ${scenario} ${t.name}: ${fmt(row.mbps)} MB/s (${fmt(row.seconds, 2)} s, CPU ${fmt(row.cpuSeconds, 2)} s, load ${fmt(row.load1)})\n`,
          );
        }
      }
    }
    const rss = new Map<ServerName, { before: number; peak: number }[]>();
    for (const t of targets) {
      const r = await slowClients(lab, client, t);
      rss.set(t.name, [r]);
      process.stdout.write(
        `slow clients ${t.name}: peak RSS ${fmt(r.peak / 1024)} MiB (before ${fmt(r.before / 1024)} MiB)\n`,
      );
    }
    process.stdout.write(`\n${report(rows, rss)}\n`);
    if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({ rows, rss: [...rss] }, null, 2));
  } finally {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
