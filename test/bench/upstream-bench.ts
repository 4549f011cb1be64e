/**
 * `make bench-upstream`: what `--upstream` costs, measured in one run on a LAN of network namespaces
 * (a mirror running Debian's nginx-light, the built daemon, a client):
 *   TFTP hit   a file served from the cache against the same bytes from the local root
 *              (atftp, blksize 1468, windowsize 16); the ratio should be at least 0.95;
 *   HTTP hit   the same over HTTP (curl);
 *   first      a file nobody asked for yet, fetched through the daemon over HTTP and over TFTP,
 *              against a direct curl of the same file from the mirror: at full speed, and with the
 *              mirror held to BENCH_RATE by nginx's limit_rate (a WAN mirror).
 * Each round runs every measurement, the local/cache order alternating; the median is reported.
 * Every file is checked (size and sha256). Environment: BENCH_ROUNDS (5), BENCH_MIB (32),
 * BENCH_RATE (limit_rate for the slow mirror, default 20m), BENCH_JSON (write the raw results there).
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nginxConf } from '../helpers/nginx.js';
import { Lab, have, waitForOutput } from '../helpers/netns.js';
import { pattern } from '../helpers/tftp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MIB = Number(process.env.BENCH_MIB ?? 32);
const RATE = process.env.BENCH_RATE ?? '20m';
const MIRROR = '10.88.0.1';
const SERVER = '10.88.0.2';
const MB = 1e6;

function fail(message: string): never {
  process.stderr.write(`upstream-bench: ${message}\n`);
  process.exit(1);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Row {
  what: string;
  round: number;
  seconds: number;
  mbps: number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces): sudo make bench-upstream');
  for (const tool of ['ip', 'nginx', 'curl', 'atftp']) if (!have(tool)) fail(`${tool} is not installed (make deps)`);
  if (!existsSync(MAIN)) fail(`${MAIN} is missing: make build`);
  const work = mkdtempSync(join(tmpdir(), 'upstream-bench-'));
  chmodSync(work, 0o755);
  const lab = await Lab.create('upbench');
  const cleanup = async (): Promise<void> => {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    await bench(lab, work);
  } finally {
    await cleanup();
  }
}

async function bench(lab: Lab, work: string): Promise<void> {
  const size = MIB * 1024 * 1024;
  const data = pattern(size, 42);
  const want = sha(data);
  const mirrorDir = join(work, 'mirror');
  const localDir = join(work, 'root');
  for (const d of [mirrorDir, join(mirrorDir, 'slow'), localDir, join(work, 'out')]) mkdirSync(d, { mode: 0o755 });
  writeFileSync(join(localDir, 'local.img'), data);
  writeFileSync(join(mirrorDir, 'hit.img'), data);
  // A fresh name per first fetch (hard links: one copy on disk, one page cache).
  writeFileSync(join(work, 'first.data'), data);
  for (let r = 0; r < ROUNDS; r++) {
    linkSync(join(work, 'first.data'), join(mirrorDir, `fast-${r}.img`));
    linkSync(join(work, 'first.data'), join(mirrorDir, `fast-tftp-${r}.img`));
    linkSync(join(work, 'first.data'), join(mirrorDir, 'slow', `${r}.img`));
    linkSync(join(work, 'first.data'), join(mirrorDir, 'slow', `tftp-${r}.img`));
  }
  writeFileSync(
    join(work, 'nginx.conf'),
    nginxConf({ work, listen: `${MIRROR}:8080`, root: mirrorDir, server: `location /slow/ { limit_rate ${RATE}; }` }),
  );
  const mirror = await lab.addHost('mirror', `${MIRROR}/24`);
  const server = await lab.addHost('server', `${SERVER}/24`);
  const client = await lab.addHost('client', '10.88.0.10/24');
  const nginx = lab.spawn(mirror.ns, 'nginx', ['-c', join(work, 'nginx.conf'), '-p', work]);
  drain(nginx);
  for (let i = 0; ; i++) {
    const r = await lab.exec(client.ns, 'curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${MIRROR}:8080/hit.img`,
    ]);
    if (r.stdout === '200') break;
    if (i > 100) fail(`nginx did not start: ${readFileSync(join(work, 'error.log'), 'utf8')}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const daemon = lab.spawn(server.ns, process.execPath, [
    MAIN,
    '-d',
    '-i',
    'eth0',
    '--tftp-root',
    localDir,
    '--upstream',
    `http://${MIRROR}:8080/`,
    '--cache-dir',
    join(work, 'cache'),
    '--cache-max-size',
    `${(2 + 4 * ROUNDS) * MIB + 64}M`,
    '--http',
    '--http-port',
    '8081',
    'local.img',
  ]);
  await waitForOutput(daemon, /HTTP server listening/, 15_000).catch((err: Error) => fail(err.message));
  drain(daemon);

  let n = 0;
  const out = (): string => join(work, 'out', `${++n}`);
  const check = (path: string, what: string): void => {
    const got = readFileSync(path);
    if (got.length !== size || sha(got) !== want) fail(`${what}: wrong bytes (${got.length} of ${size})`);
    rmSync(path);
  };
  const atftp = async (name: string, what: string): Promise<number> => {
    const dest = out();
    const t0 = performance.now();
    const r = await lab.exec(
      client.ns,
      'atftp',
      ['--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', name, '-l', dest, SERVER, '69'],
      300_000,
    );
    const s = (performance.now() - t0) / 1000;
    if (r.code !== 0) fail(`${what}: atftp failed: ${r.stderr}`);
    check(dest, what);
    return s;
  };
  const curl = async (url: string, what: string): Promise<number> => {
    const dest = out();
    const r = await lab.exec(client.ns, 'curl', ['-sS', '-o', dest, '-w', '%{time_total}', url], 300_000);
    if (r.code !== 0) fail(`${what}: curl failed: ${r.stderr}`);
    check(dest, what);
    return Number(r.stdout);
  };

  // Unmeasured: the cache gets hit.img; JIT and page cache warm for both paths.
  await curl(`http://${SERVER}:8081/hit.img`, 'warm-up');
  await atftp('hit.img', 'warm-up');
  await atftp('local.img', 'warm-up');
  await curl(`http://${SERVER}:8081/local.img`, 'warm-up');

  const rows: Row[] = [];
  const add = (what: string, round: number, seconds: number): void => {
    rows.push({ what, round, seconds, mbps: size / MB / seconds });
  };
  for (let r = 0; r < ROUNDS; r++) {
    const pairs: [string, () => Promise<number>][] = [
      ['TFTP local', () => atftp('local.img', 'TFTP local')],
      ['TFTP cache hit', () => atftp('hit.img', 'TFTP hit')],
      ['HTTP local', () => curl(`http://${SERVER}:8081/local.img`, 'HTTP local')],
      ['HTTP cache hit', () => curl(`http://${SERVER}:8081/hit.img`, 'HTTP hit')],
    ];
    // Alternate which of each pair goes first.
    for (let i = 0; i < pairs.length; i += 2) {
      const order = r % 2 ? [pairs[i + 1]!, pairs[i]!] : [pairs[i]!, pairs[i + 1]!];
      for (const [what, f] of order) add(what, r, await f());
    }
    add('first: direct curl of the mirror', r, await curl(`http://${MIRROR}:8080/fast-${r}.img`, 'direct'));
    add('first: HTTP through the daemon', r, await curl(`http://${SERVER}:8081/fast-${r}.img`, 'first HTTP'));
    add('first: TFTP through the daemon', r, await atftp(`fast-tftp-${r}.img`, 'first TFTP'));
    add(`first, mirror at ${RATE}/s: direct curl`, r, await curl(`http://${MIRROR}:8080/slow/${r}.img`, 'slow direct'));
    add(
      `first, mirror at ${RATE}/s: HTTP through the daemon`,
      r,
      await curl(`http://${SERVER}:8081/slow/${r}.img`, 'slow HTTP'),
    );
    add(`first, mirror at ${RATE}/s: TFTP through the daemon`, r, await atftp(`slow/tftp-${r}.img`, 'slow TFTP'));
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2));
  const med = new Map<string, { s: number; mbps: number }>();
  for (const what of [...new Set(rows.map((x) => x.what))]) {
    const mine = rows.filter((x) => x.what === what);
    med.set(what, { s: median(mine.map((x) => x.seconds)), mbps: median(mine.map((x) => x.mbps)) });
  }
  const line = (what: string, extra = ''): string => {
    const m = med.get(what)!;
    return `${what.padEnd(48)} ${m.s.toFixed(3).padStart(8)} s ${m.mbps.toFixed(1).padStart(8)} MB/s${extra}`;
  };
  const ratio = (a: string, b: string): number => med.get(a)!.mbps / med.get(b)!.mbps;
  const tftpRatio = ratio('TFTP cache hit', 'TFTP local');
  const httpRatio = ratio('HTTP cache hit', 'HTTP local');
  const report = [
    `upstream bench: ${MIB} MiB, median of ${ROUNDS} rounds, nginx-light mirror, atftp (blksize 1468, windowsize 16) and curl`,
    line('TFTP local'),
    line('TFTP cache hit', `   ${tftpRatio.toFixed(3)}× local`),
    line('HTTP local'),
    line('HTTP cache hit', `   ${httpRatio.toFixed(3)}× local`),
    line('first: direct curl of the mirror'),
    line(
      'first: HTTP through the daemon',
      `   ${(med.get('first: HTTP through the daemon')!.s / med.get('first: direct curl of the mirror')!.s).toFixed(2)}× the direct time`,
    ),
    line('first: TFTP through the daemon'),
    line(`first, mirror at ${RATE}/s: direct curl`),
    line(
      `first, mirror at ${RATE}/s: HTTP through the daemon`,
      `   ${(med.get(`first, mirror at ${RATE}/s: HTTP through the daemon`)!.s / med.get(`first, mirror at ${RATE}/s: direct curl`)!.s).toFixed(2)}× the direct time`,
    ),
    line(
      `first, mirror at ${RATE}/s: TFTP through the daemon`,
      `   ${(med.get(`first, mirror at ${RATE}/s: TFTP through the daemon`)!.s / med.get(`first, mirror at ${RATE}/s: direct curl`)!.s).toFixed(2)}× the direct time`,
    ),
  ];
  process.stdout.write(`${report.join('\n')}\n`);
  const low = [tftpRatio, httpRatio].some((x) => x < 0.95);
  if (low) process.stdout.write('cache hits are below 0.95× a local file\n');
  process.exitCode = low ? 1 : 0;
}

function drain(p: ChildProcess): void {
  p.stdout?.resume();
  p.stderr?.resume();
}

void main();
