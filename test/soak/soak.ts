/**
 * Soak: the built daemon on loopback for `--seconds` (600) at `--rate` (500) PXE DISCOVERs per
 * second from random MACs, plus a TFTP transfer (curl, 256 KiB) every second. Prints RSS at start
 * and end, offers received, transfer failures and the daemon's error lines; exits 1 on any error.
 *
 *   node --import tsx test/soak/soak.ts [--seconds N] [--rate N]
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requestBytes } from '../helpers/packets.js';
import { listeningPorts, loopbackArgs, startDaemonProcess, stopDaemon, waitForLine } from '../helpers/process.js';

const run = promisify(execFile);
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const seconds = arg('--seconds', 600);
const rate = arg('--rate', 500);

const rssKiB = (pid: number): number =>
  Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

const root = mkdtempSync(join(tmpdir(), 'pxe-pdhcp-soak-'));
chmodSync(root, 0o755);
const file = randomBytes(256 * 1024);
writeFileSync(join(root, 'soak.bin'), file, { mode: 0o644 });
writeFileSync(join(root, 'pxelinux.0'), 'x', { mode: 0o644 });
const want = createHash('sha256').update(file).digest('hex');

/** After the load stops: how long offers still in flight and the last transfers may take. */
const DRAIN_MS = 25_000;

const client = createSocket('udp4');
let offers = 0;
let onOffer = (): void => undefined;
client.on('message', () => {
  offers++;
  onOffer();
});
await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
const args = loopbackArgs(client.address().port).filter((a) => a !== '--no-tftp');
args.splice(args.length - 1, 0, '--tftp-root', root, '--tftp-port', '0');
const daemon = startDaemonProcess(args, { built: true });
const ports = await listeningPorts(daemon);
const tftpPort = Number((await waitForLine(daemon, /TFTP server listening .*ports=(\d+)/))[1]);
const pid = daemon.child.pid!;

let sent = 0;
let sendErrors = 0;
let transfers = 0;
let transferErrors = 0;
const inFlight = new Set<Promise<void>>();
const rssStart = rssKiB(pid);
const started = Date.now();
const samples: string[] = [];

// DISCOVERs in 10 ms ticks, so the rate holds without a burst per second.
const tick = setInterval(() => {
  const due = Math.floor(((Date.now() - started) / 1000) * rate) - sent;
  for (let i = 0; i < due; i++) {
    const mac = [...randomBytes(6)]
      .map((b, j) => (j === 0 ? (b & 0xfe) | 2 : b).toString(16).padStart(2, '0'))
      .join(':');
    client.send(requestBytes({ mac, xid: sent, arch: sent % 3 === 0 ? 7 : 0 }), ports.dhcp, '127.0.0.1', (err) => {
      if (err) sendErrors++;
    });
    sent++;
  }
}, 10);

const fetcher = setInterval(() => {
  const dest = join(root, `out-${transfers % 4}.bin`);
  transfers++;
  const transfer = run('curl', [
    '-sS',
    '--max-time',
    '20',
    '--tftp-blksize',
    '1468',
    '-o',
    dest,
    `tftp://127.0.0.1:${tftpPort}/soak.bin`,
  ])
    .then(() => {
      if (createHash('sha256').update(readFileSync(dest)).digest('hex') !== want) transferErrors++;
    })
    .catch(() => {
      transferErrors++;
    })
    .finally(() => inFlight.delete(transfer));
  inFlight.add(transfer);
}, 1000);

const sampler = setInterval(() => samples.push(`${Math.round((Date.now() - started) / 1000)}s:${rssKiB(pid)}`), 60_000);

await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(tick);
clearInterval(fetcher);
clearInterval(sampler);
// Drain: every transfer started has ended (curl's own --max-time bounds it), and offers still in
// flight are in, or DRAIN_MS has passed (what is missing then is reported as unanswered).
const drainStart = Date.now();
await Promise.all([...inFlight]);
await new Promise<void>((resolve) => {
  const timer = setTimeout(resolve, Math.max(0, DRAIN_MS - (Date.now() - drainStart)));
  onOffer = () => {
    if (offers >= sent) {
      clearTimeout(timer);
      resolve();
    }
  };
  onOffer();
});
const rssEnd = rssKiB(pid);
const alive = daemon.child.exitCode === null;
const code = await stopDaemon(daemon);
client.close();
rmSync(root, { recursive: true, force: true });
const errorLines = daemon
  .output()
  .split('\n')
  .filter((l) => /\berror\b|internal-error|handler failed/.test(l));
const lost = sent - offers;
console.log(
  `soak: ${seconds} s at ${rate} DISCOVER/s: sent ${sent}, offers ${offers} (${lost} unanswered, ${sendErrors} send errors); ` +
    `${transfers} TFTP transfers, ${transferErrors} failed; RSS start ${rssStart} KiB, end ${rssEnd} KiB` +
    `${samples.length ? ` (per minute: ${samples.join(' ')})` : ''}; daemon error lines ${errorLines.length}; exit ${code}`,
);
for (const l of errorLines.slice(0, 5)) console.log(`  ${l}`);
process.exitCode = alive && code === 0 && transferErrors === 0 && sendErrors === 0 && errorLines.length === 0 ? 0 : 1;
