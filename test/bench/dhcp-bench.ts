/**
 * `make bench-dhcp`: how many PXE DISCOVERs (port 67) and 4011 REQUESTs a second our daemon answers
 * with under 1 % loss, and its latency, next to dnsmasq in proxy mode measured in the same run.
 *
 * Layout: a sender namespace with one veth pair to each server's namespace (ours on 10.88.1.0/24,
 * dnsmasq on 10.88.2.0/24). Rates are tried in rising order, each server in turn at every rate, so
 * that load from other work on the machine falls on both alike. The sender is dhcp-blast.c, built
 * here with cc. Environment: BENCH_RATES (comma list), BENCH_SECONDS (per step, default 3),
 * BENCH_JSON (write the raw results there), BENCH_ONLY (`pxe-pdhcp` or `dnsmasq`), BENCH_NODE_ARGS
 * (extra node flags for our daemon, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`; the daemon runs as
 * nobody after binding, so the directory must be writable by it), BENCH_DAEMON_ARGS (extra options
 * for our daemon, e.g. `--log-level warn`).
 *
 * BENCH_DECIDE=1 adds a third server: our daemon with `--decide-url` answered by a local HTTP
 * service in its namespace (every client: `{"file": "pxelinux.0"}`) and `--decide-cache 3600`, so
 * after the warm-up every DISCOVER takes the cache hit path; it is measured beside the static
 * rules in the same run. The MACs then come from a set of BENCH_MACS machines (default 256; also
 * settable alone), as a cache sees a lab, instead of a new MAC per packet.
 *
 * BENCH_TFTP_LOAD=K measures DHCP while the same server is busy with TFTP: both servers then serve
 * TFTP too (ours its bundled server, dnsmasq its own), and during every step K atftp clients in
 * the sender's namespace fetch a 4 MiB file from the server being measured, over and over. The
 * CPU per reply then includes the TFTP work.
 */
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeDhcp, encodeDhcp } from '../../src/wire/dhcp-packet.js';
import { Lab, have } from '../helpers/netns.js';
import { chaddrOf } from '../helpers/pxe-client.js';
import { fixture } from '../helpers/packets.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');

const RATES = (process.env.BENCH_RATES ?? '200,1000,5000,10000,15000,20000,30000,40000,60000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** A server that loses this much at one rate is not tried at higher ones. */
const GIVE_UP_LOSS = 0.2;
const SUSTAINED_LOSS = 0.01;
const DECIDE = process.env.BENCH_DECIDE === '1';
/** Distinct MACs the sender cycles through; 0: a new MAC per packet. */
const MACS = Number(process.env.BENCH_MACS ?? (DECIDE ? 256 : 0));
/** Port of the decision service inside the decide target's namespace. */
const DECIDE_PORT = 8099;
/** TFTP clients looping on the measured server during every step (0: no TFTP). */
const TFTP_LOAD = Number(process.env.BENCH_TFTP_LOAD ?? 0);
const LOAD_FILE = 'load.bin';
/** Each blast gets its own xid range, so a late reply to an earlier one is not counted. */
let blastRun = 0;

type Port = 'discover' | 'request';
interface Target {
  name: 'pxe-pdhcp' | 'dnsmasq' | 'pxe-pdhcp+decide';
  ns: string;
  /** Sender's interface towards this server, and both ends' addresses. */
  iface: string;
  senderIp: string;
  serverIp: string;
  process?: ChildProcess;
  /** Where its log lines go. */
  logPath?: string;
}

interface Blast {
  sent: number;
  replies: number;
  duplicates: number;
  sendErrors: number;
  seconds: number;
  p50us: number;
  p99us: number;
  maxUs: number;
}

interface Row extends Blast {
  target: Target['name'];
  port: Port;
  rate: number;
  loss: number;
  /** Server CPU time per reply (µs), from /proc: independent of what else runs on the machine. */
  cpuUsPerReply: number;
  load1: number;
}

function fail(message: string): never {
  process.stderr.write(`dhcp-bench: ${message}\n`);
  process.exit(1);
}

/** CPU seconds used so far by all threads of a process (sched(7): /proc/PID/task/TID/schedstat, ns). */
function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

/** The packets sent: EDK2's DISCOVER and its BINL REQUEST from port 4011 (docs/addressing.md#port-4011-requests). */
function template(port: Port, t: Target): string {
  const name = port === 'discover' ? 'ovmf-edk2-discover' : 'ovmf-edk2-request-4011-binl';
  const p = decodeDhcp(fixture(name));
  p.clientHardware = chaddrOf('02:00:00:00:00:00');
  if (port === 'request') p.clientIp = t.senderIp;
  return encodeDhcp(p).toString('hex');
}

async function blast(
  lab: Lab,
  sender: string,
  blaster: string,
  t: Target,
  port: Port,
  rate: number,
  seconds: number,
): Promise<Blast> {
  const [src, dst, dstPort] = port === 'discover' ? [68, '255.255.255.255', 67] : [4011, t.serverIp, 4011];
  const r = await lab.exec(
    sender,
    blaster,
    [
      t.iface,
      String(src),
      dst,
      String(dstPort),
      String(rate),
      String(seconds),
      template(port, t),
      ...(MACS > 0 ? [String(((++blastRun % 4096) << 20) >>> 0), String(MACS)] : []),
    ],
    (seconds + 30) * 1000,
  );
  if (r.code !== 0) fail(`sender failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Blast;
}

/**
 * Start `TFTP_LOAD` looping atftp clients against `t`; resolves once they run, with a function that
 * ends them (each loop's shell and the atftp it is waiting for).
 */
async function tftpLoad(lab: Lab, sender: string, t: Target): Promise<() => Promise<void>> {
  if (TFTP_LOAD === 0) return () => Promise.resolve();
  const get = `atftp --option 'blksize 1468' -g -r ${LOAD_FILE} -l /dev/null ${t.serverIp}`;
  const loops = Array.from({ length: TFTP_LOAD }, () =>
    lab.spawn(sender, 'sh', ['-c', `while :; do ${get} >/dev/null 2>&1 || sleep 0.1; done`], { stdio: 'ignore' }),
  );
  await new Promise((r) => setTimeout(r, 500));
  return async () => {
    for (const loop of loops) {
      let children: string[] = [];
      try {
        children = readFileSync(`/proc/${loop.pid}/task/${loop.pid}/children`, 'utf8').trim().split(/\s+/);
      } catch {
        // already gone
      }
      await lab.stop(loop, 500);
      for (const c of children.filter(Boolean)) {
        try {
          process.kill(Number(c), 'SIGTERM');
        } catch {
          // finished meanwhile
        }
      }
    }
  };
}

async function measure(lab: Lab, sender: string, blaster: string, t: Target, port: Port, rate: number): Promise<Row> {
  const pid = t.process!.pid!;
  const stopLoad = await tftpLoad(lab, sender, t);
  const cpu0 = cpuSeconds(pid);
  let b;
  try {
    b = await blast(lab, sender, blaster, t, port, rate, SECONDS);
  } finally {
    await stopLoad();
  }
  const cpu = cpuSeconds(pid) - cpu0;
  return {
    ...b,
    target: t.name,
    port,
    rate,
    loss: b.sent ? 1 - b.replies / b.sent : 1,
    cpuUsPerReply: b.replies ? (cpu * 1e6) / b.replies : NaN,
    load1: loadavg()[0]!,
  };
}

/**
 * Both servers log to a file of their own, as they would to journald or syslog: a pipe read by
 * this process would wake it for every line and take the CPU from the server being measured.
 */
function logFile(t: Target, work: string): number {
  t.logPath = join(work, `${t.name}.log`);
  return openSync(t.logPath, 'a');
}

/** The end of a server's log, for error messages. */
function logTail(t: Target): string {
  try {
    return readFileSync(t.logPath!, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}

/** Wait until a server answers a trickle of requests on both ports. */
async function waitReady(lab: Lab, sender: string, blaster: string, t: Target): Promise<void> {
  for (const port of ['discover', 'request'] as Port[]) {
    let ok = false;
    for (let i = 0; i < 40 && !ok && t.process!.exitCode === null; i++) {
      ok = (await blast(lab, sender, blaster, t, port, 20, 0.25)).replies > 0;
    }
    if (!ok)
      fail(
        `${t.name} does not answer ${port === 'discover' ? 'DISCOVERs on port 67' : 'REQUESTs on port 4011'}:\n${logTail(t)}`,
      );
    // Warm up (not measured): our daemon's JIT, and both servers' caches, reach their steady state.
    await blast(lab, sender, blaster, t, port, 2000, 1);
  }
}

/** Wait for a veth end to report carrier: Node lists only running interfaces. */
async function carrier(lab: Lab, ns: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await lab.exec(ns, 'cat', ['/sys/class/net/eth0/carrier'])).stdout.trim() === '1') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  fail(`eth0 in ${ns} has no carrier`);
}

async function setUp(lab: Lab, work: string): Promise<{ sender: string; targets: Target[] }> {
  const sender = `${lab.id}-gen`;
  await lab.addNamespace(sender);
  const targets: Target[] = [];
  const names: Target['name'][] = DECIDE ? ['pxe-pdhcp', 'dnsmasq', 'pxe-pdhcp+decide'] : ['pxe-pdhcp', 'dnsmasq'];
  for (const [i, name] of names.entries()) {
    const ns = `${lab.id}-${i}`;
    await lab.addNamespace(ns);
    const t: Target = { name, ns, iface: `g${i + 1}`, senderIp: `10.88.${i + 1}.1`, serverIp: `10.88.${i + 1}.2` };
    await run('ip', ['link', 'add', t.iface, 'netns', sender, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await lab.ip(sender, 'addr', 'add', `${t.senderIp}/24`, 'dev', t.iface);
    await lab.ip(ns, 'addr', 'add', `${t.serverIp}/24`, 'dev', 'eth0');
    await lab.ip(sender, 'link', 'set', t.iface, 'up');
    await lab.ip(ns, 'link', 'set', 'eth0', 'up');
    await carrier(lab, ns);
    targets.push(t);
  }
  const [ours, dns, decide] = targets as [Target, Target, Target | undefined];
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const daemonArgs = (process.env.BENCH_DAEMON_ARGS ?? '').split(' ').filter(Boolean);
  const tftpRoot = join(work, 'tftp');
  if (TFTP_LOAD > 0) {
    mkdirSync(tftpRoot, { mode: 0o755 });
    writeFileSync(join(tftpRoot, LOAD_FILE), randomBytes(4 << 20), { mode: 0o644 });
    chmodSync(work, 0o755);
  }
  const tftpArgs = TFTP_LOAD > 0 ? ['--tftp-root', tftpRoot] : ['--no-tftp'];
  ours.process = lab.spawn(
    ours.ns,
    process.execPath,
    [...nodeArgs, MAIN, '-d', '-i', 'eth0', ...tftpArgs, ...daemonArgs, 'pxelinux.0'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', logFile(ours, work)],
    },
  );
  dns.process = lab.spawn(
    dns.ns,
    'dnsmasq',
    [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--user=root',
      '--interface=eth0',
      `--log-facility=${join(work, 'dnsmasq.log')}`,
      `--dhcp-range=10.88.2.0,proxy`,
      '--pxe-service=x86PC,Boot,pxelinux',
      '--pxe-service=X86-64_EFI,Boot,bootx64.efi',
      ...(TFTP_LOAD > 0 ? ['--enable-tftp', `--tftp-root=${tftpRoot}`] : []),
    ],
    { stdio: ['ignore', 'ignore', logFile(dns, work)] },
  );
  if (decide) {
    // The decision service: one answer for everyone, from a server in the same namespace.
    const service =
      "require('node:http').createServer((q, r) => r.writeHead(200, {'content-type': 'application/json'})" +
      `.end('{"file": "pxelinux.0"}')).listen(${DECIDE_PORT}, '127.0.0.1')`;
    lab.spawn(decide.ns, process.execPath, ['-e', service], { stdio: 'ignore' });
    decide.process = lab.spawn(
      decide.ns,
      process.execPath,
      [
        ...nodeArgs,
        MAIN,
        '-d',
        '-i',
        'eth0',
        '--no-tftp',
        '--decide-url',
        `http://127.0.0.1:${DECIDE_PORT}/decide`,
        '--decide-cache',
        '3600',
        ...daemonArgs,
        'pxelinux.0',
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', logFile(decide, work)] },
    );
  }
  return { sender, targets };
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function table(rows: Row[], port: Port): string {
  const head = `| offered/s | server | replies/s | loss % | p50 ms | p99 ms | CPU µs/reply | load |`;
  const lines = [head, '|---|---|---|---|---|---|---|---|'];
  for (const r of rows.filter((x) => x.port === port)) {
    lines.push(
      `| ${r.rate} | ${r.target} | ${fmt(r.replies / r.seconds)} | ${fmt(r.loss * 100, 2)} | ${fmt(r.p50us / 1000, 3)} | ${fmt(r.p99us / 1000, 3)} | ${fmt(r.cpuUsPerReply, 1)} | ${fmt(r.load1, 1)} |`,
    );
  }
  return lines.join('\n');
}

/** Highest offered rate answered with under 1 % loss (0 when none). */
function sustained(rows: Row[], target: string, port: Port): number {
  return Math.max(
    0,
    ...rows.filter((r) => r.target === target && r.port === port && r.loss < SUSTAINED_LOSS).map((r) => r.rate),
  );
}

/** With BENCH_DECIDE: the cache hit path of --decide-url next to the static rules, same run. */
function decideSummary(rows: Row[]): string[] {
  if (!DECIDE) return [];
  const out = ['', `--decide-url, cache hit path (${MACS} MACs) vs static rules:`];
  for (const port of ['discover', 'request'] as Port[]) {
    const label = port === 'discover' ? 'port 67 DISCOVER' : 'port 4011 REQUEST';
    const stat = sustained(rows, 'pxe-pdhcp', port);
    const dec = sustained(rows, 'pxe-pdhcp+decide', port);
    out.push(`${label}: sustained static ${stat}/s, decide ${dec}/s (${stat ? (dec / stat).toFixed(2) : '-'}x)`);
    for (const r of rows.filter((x) => x.target === 'pxe-pdhcp' && x.port === port && x.loss < SUSTAINED_LOSS)) {
      const d = rows.find((x) => x.target === 'pxe-pdhcp+decide' && x.port === port && x.rate === r.rate);
      if (!d) continue;
      out.push(
        `  at ${r.rate}/s: p50 ${fmt(r.p50us / 1000, 3)} vs ${fmt(d.p50us / 1000, 3)} ms, p99 ${fmt(r.p99us / 1000, 3)} vs ${fmt(d.p99us / 1000, 3)} ms (${fmt(d.p99us / r.p99us, 2)}x), CPU ${fmt(r.cpuUsPerReply, 1)} vs ${fmt(d.cpuUsPerReply, 1)} µs/reply (${fmt(d.cpuUsPerReply / r.cpuUsPerReply, 2)}x)`,
      );
    }
  }
  return out;
}

function summary(rows: Row[]): string {
  const out: string[] = [];
  for (const port of ['discover', 'request'] as Port[]) {
    const label = port === 'discover' ? 'port 67 DISCOVER' : 'port 4011 REQUEST';
    const ours = sustained(rows, 'pxe-pdhcp', port);
    const theirs = sustained(rows, 'dnsmasq', port);
    const first = (t: string): string => {
      const r = rows.find((x) => x.target === t && x.port === port && x.loss >= SUSTAINED_LOSS);
      return r ? `${r.rate}/s` : 'none';
    };
    out.push(
      `${label}: sustained (<1 % loss) pxe-pdhcp ${ours}/s, dnsmasq ${theirs}/s, ratio ${theirs ? (ours / theirs).toFixed(2) : '-'}x`,
    );
    out.push(`  first rate with >= 1 % loss: pxe-pdhcp ${first('pxe-pdhcp')}, dnsmasq ${first('dnsmasq')}`);
    for (const rate of [200, 1000]) {
      const at = (t: string): string => {
        const r = rows.find((x) => x.target === t && x.port === port && x.rate === rate);
        return r ? `p50 ${fmt(r.p50us / 1000, 3)} / p99 ${fmt(r.p99us / 1000, 3)} ms` : 'not measured';
      };
      out.push(`  at ${rate}/s: pxe-pdhcp ${at('pxe-pdhcp')}; dnsmasq ${at('dnsmasq')}`);
    }
  }
  out.push(...decideSummary(rows));
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  for (const tool of ['ip', 'cc', 'dnsmasq', ...(TFTP_LOAD > 0 ? ['atftp'] : [])])
    if (!have(tool)) fail(`${tool} is not installed (Debian: iproute2, gcc, dnsmasq-base)`);
  const work = mkdtempSync(join(tmpdir(), 'pxe-bench-'));
  const blaster = join(work, 'dhcp-blast');
  execFileSync('cc', ['-O2', '-Wall', '-o', blaster, join(ROOT, 'test/bench/dhcp-blast.c')], { stdio: 'inherit' });
  const lab = await Lab.create('bench');
  const stop = (): void => {
    lab.cleanupSync();
    rmSync(work, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const { sender, targets: all } = await setUp(lab, work);
    const targets = all.filter((t) => !process.env.BENCH_ONLY || t.name === process.env.BENCH_ONLY);
    for (const t of targets) await waitReady(lab, sender, blaster, t);
    process.stdout.write(
      `dhcp-bench: ${SECONDS} s per step, rates ${RATES.join(', ')}/s${TFTP_LOAD > 0 ? `, under TFTP load (${TFTP_LOAD} atftp clients)` : ''}, load ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}\n`,
    );
    const rows: Row[] = [];
    for (const port of ['discover', 'request'] as Port[]) {
      const active = new Set(targets);
      for (const rate of RATES) {
        for (const t of targets) {
          if (!active.has(t)) continue;
          const row = await measure(lab, sender, blaster, t, port, rate);
          rows.push(row);
          process.stdout.write(
            `${port} ${rate}/s ${t.name}: ${fmt(row.replies / row.seconds)} replies/s, loss ${fmt(row.loss * 100, 2)} %, p50 ${fmt(row.p50us / 1000, 3)} ms, p99 ${fmt(row.p99us / 1000, 3)} ms\n`,
          );
          if (row.loss > GIVE_UP_LOSS) active.delete(t);
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }
    process.stdout.write(
      `\nport 67 (DISCOVER, broadcast, ${MACS > 0 ? `${MACS} MACs in turn` : 'distinct MACs'})\n${table(rows, 'discover')}\n`,
    );
    process.stdout.write(`\nport 4011 (EDK2 REQUEST from port 4011)\n${table(rows, 'request')}\n\n${summary(rows)}\n`);
    if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2));
  } finally {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
