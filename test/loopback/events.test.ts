import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseArgs } from '../../src/cli/args.js';
import type { PxeEvent } from '../../src/core/events.js';
import type { Config } from '../../src/daemon/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { MessageType } from '../../src/wire/dhcp-constants.js';
import { TestClient, until } from '../helpers/daemon.js';
import { memoryLogger } from '../helpers/log.js';
import { requestBytes } from '../helpers/packets.js';
import { have } from '../helpers/netns.js';
import { pattern, tempRoot } from '../helpers/tftp.js';

// Events, notifications, --remap, --metrics and --exit-after on loopback, against the in-process
// daemon with its TFTP and HTTP servers, fetched from with tftp-hpa and curl.

const run = promisify(execFile);
const NBP = pattern(40_000, 7);
const GRUB = pattern(70_000, 8);
const root = tempRoot({ 'pxelinux.0': NBP });
mkdirSync(join(root.dir, 'efi64'));
writeFileSync(join(root.dir, 'efi64', 'grubx64.efi'), GRUB);
mkdirSync(join(root.dir, 'hosts'));
writeFileSync(join(root.dir, 'hosts', '52-54-00-0e-00-01.cfg'), 'mine\n');
writeFileSync(join(root.dir, 'hosts', 'default.cfg'), 'default\n');
const out = tempRoot();
const MAC = '52:54:00:0e:00:01';
const REMAPS = [
  '^grubx64\\.efi$ efi64/grubx64.efi',
  '^host\\.cfg$ hosts/${mac}.cfg',
  '^host\\.cfg$ hosts/default.cfg',
  '^cfg-(.*)$ hosts/$1',
];

function cliConfig(args: string[], clientPort: number): Config {
  const base = `-d -l 127.0.0.1 -t 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 --tftp-port 0 --http --http-port 0 --client-port ${clientPort} --tftp-root ${root.dir}`;
  const r = parseArgs([...base.split(' '), ...args]);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

/** A UDP listener that keeps each datagram as parsed JSON. */
async function udpListener(): Promise<{ socket: Socket; got: PxeEvent[] }> {
  const socket = createSocket('udp4');
  const got: PxeEvent[] = [];
  socket.on('message', (m) => got.push(JSON.parse(m.toString()) as PxeEvent));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, got };
}

const tftpHpa = (port: number, name: string, dest: string) =>
  run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, dest], { timeout: 20_000 });
const curl = (url: string, dest: string) =>
  run('curl', ['-sS', '--max-time', '20', '-o', dest, url], { timeout: 30_000 });

describe('events, notifications, --remap and --metrics (loopback)', () => {
  let client: TestClient;
  let daemon: Daemon;
  let listener: Awaited<ReturnType<typeof udpListener>>;
  const eventsFile = join(out.dir, 'events.jsonl');
  const exits: { code: number; reason: string }[] = [];
  const { log } = memoryLogger('info');
  let tftpPort: number;
  let httpPort: number;

  before(async () => {
    for (const tool of ['tftp', 'curl']) assert.ok(have(tool), `${tool} is not installed (Debian: tftp-hpa, curl)`);
    client = await TestClient.open();
    listener = await udpListener();
    const args = [
      '--events',
      eventsFile,
      '--notify',
      `udp://127.0.0.1:${listener.socket.address().port}`,
      '--metrics',
      '127.0.0.1:0',
      '--exit-after',
      'transfer-done:pxelinux.0',
      '--exit-after',
      `offer:${MAC}`,
      '--deny',
      '52:54:00:0e:00:66',
      ...REMAPS.flatMap((r) => ['--remap', r]),
      'pxelinux.0',
    ];
    daemon = await startDaemon(cliConfig(args, client.port), {
      log,
      exit: (code, reason) => exits.push({ code, reason }),
    });
    tftpPort = daemon.ports.tftp[0]!;
    httpPort = daemon.ports.http[0]!;
  });
  after(async () => {
    client.close();
    listener.socket.close();
    await daemon.close();
    root.remove();
    out.remove();
  });

  it('an offer, a denial and an ignored packet are events', async () => {
    await client.send(requestBytes({ mac: MAC }), daemon.ports.dhcp[0]!);
    await client.send(requestBytes({ mac: '52:54:00:0e:00:66' }), daemon.ports.dhcp[0]!);
    await client.send(requestBytes({ mac: '52:54:00:0e:00:67', vendor: 'MSFT 5.0' }), daemon.ports.dhcp[0]!);
    // A 4011 request from 127.0.0.1 tells the daemon which MAC uses that address (for ${mac}).
    await client.send(
      requestBytes({ mac: MAC, type: MessageType.REQUEST, ciaddr: '127.0.0.1', arch: 7 }),
      daemon.ports.proxy[0]!,
    );
    await until(() => listener.got.length >= 4, 3000, 'four events');
    // Two sockets (67 and 4011): the order between them is the kernel's.
    assert.deepEqual(
      listener.got
        .slice(0, 4)
        .map((e) => e.type)
        .sort(),
      ['ack', 'denied', 'ignored', 'offer'],
    );
    const offer = listener.got.find((e) => e.type === 'offer')!;
    assert.equal(offer.mac, MAC);
    assert.ok('file' in offer && offer.file === 'pxelinux.0');
    assert.match(offer.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(exits.length, 0, 'not every --exit-after event has happened yet');
  });

  it('--remap with tftp-hpa: grubx64.efi at the root comes from efi64/', async () => {
    const dest = join(out.dir, 'grub');
    await tftpHpa(tftpPort, 'grubx64.efi', dest);
    assert.ok(readFileSync(dest).equals(GRUB));
    await until(
      () => listener.got.some((e) => e.type === 'transfer-done' && e.file === 'efi64/grubx64.efi'),
      3000,
      'done',
    );
    const done = listener.got.find((e) => e.type === 'transfer-done')!;
    assert.ok('requested' in done && done.requested === 'grubx64.efi');
    assert.equal(done.mac, MAC, 'the MAC learnt from the 4011 request');
  });

  it('--remap with ${mac}: curl over TFTP and over HTTP get this machine its own file', async () => {
    const viaTftp = join(out.dir, 'host-tftp');
    await curl(`tftp://127.0.0.1:${tftpPort}/host.cfg`, viaTftp);
    assert.equal(readFileSync(viaTftp, 'utf8'), 'mine\n');
    const viaHttp = join(out.dir, 'host-http');
    await curl(`http://127.0.0.1:${httpPort}/host.cfg`, viaHttp);
    assert.equal(readFileSync(viaHttp, 'utf8'), 'mine\n');
    await until(() => listener.got.some((e) => e.type === 'http-request'), 3000, 'the HTTP events');
    const h = listener.got.find((e) => e.type === 'transfer-done' && e.protocol === 'http')!;
    assert.ok('file' in h && h.file === 'hosts/52-54-00-0e-00-01.cfg');
  });

  it('an escape attempt through a remap is refused over TFTP and HTTP', async () => {
    const tftp = await run('tftp', [
      '-m',
      'binary',
      '127.0.0.1',
      String(tftpPort),
      '-c',
      'get',
      'cfg-../../../../etc/passwd',
      join(out.dir, 'p1'),
    ]).catch((e: { stdout?: string; stderr?: string }) => e);
    assert.match(`${tftp.stdout ?? ''}${tftp.stderr ?? ''}`, /File not found/);
    await assert.rejects(curl(`tftp://127.0.0.1:${tftpPort}/cfg-..%2f..%2f..%2fetc%2fpasswd`, join(out.dir, 'p2')));
    const r = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--path-as-is',
      `http://127.0.0.1:${httpPort}/cfg-../../../../etc/passwd`,
    ]);
    assert.equal(r.stdout, '404');
    await until(() => listener.got.filter((e) => e.type === 'transfer-failed').length >= 2, 3000, 'the refusals');
    const failed = listener.got.filter((e) => e.type === 'transfer-failed');
    assert.ok(
      failed.every((e) => 'reason' in e && e.reason === 'bad-name'),
      JSON.stringify(failed),
    );
  });

  it('--exit-after: once pxelinux.0 is fetched (and the offer was made), the daemon is asked to exit 0', async () => {
    assert.equal(exits.length, 0);
    await curl(`tftp://127.0.0.1:${tftpPort}/pxelinux.0`, join(out.dir, 'nbp'));
    await until(() => exits.length > 0, 3000, 'the exit');
    assert.deepEqual(exits, [{ code: 0, reason: 'exit-after' }]);
  });

  it('one datagram per event, the same events as the JSON lines of --events', async () => {
    // The file is written at once; a datagram may still be on its way: wait until both have them all.
    await until(
      () => readFileSync(eventsFile, 'utf8').split('\n').length - 1 === listener.got.length,
      2000,
      'the file and the datagrams',
    );
    const lines = readFileSync(eventsFile, 'utf8').trimEnd().split('\n');
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as PxeEvent),
      listener.got,
    );
    const types = new Set(listener.got.map((e) => e.type));
    for (const t of [
      'offer',
      'ack',
      'denied',
      'ignored',
      'transfer-start',
      'transfer-done',
      'transfer-failed',
      'http-request',
    ])
      assert.ok(types.has(t as PxeEvent['type']), `a ${t} event`);
  });

  it('/metrics passes promtool check metrics and counts what happened', async () => {
    const res = await fetch(`http://127.0.0.1:${daemon.outside.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^pxe_pdhcp_dhcp_answers_total\{kind="offer",rule="default",decided_by="rules"\} 1$/m);
    assert.match(text, /^pxe_pdhcp_dhcp_dropped_total\{reason="denied"\} 1$/m);
    assert.match(text, /^pxe_pdhcp_dhcp_dropped_total\{reason="not-pxe-client"\} 1$/m);
    assert.match(text, /^pxe_pdhcp_stats_total\{stat="tftp-done"\} [1-9]/m);
    assert.match(text, /^pxe_pdhcp_transfer_bytes_total\{protocol="tftp"\} \d+$/m);
    assert.match(text, /^pxe_pdhcp_transfers_active\{protocol="tftp"\} 0$/m);
    assert.match(text, /^pxe_pdhcp_info\{version="\d+\.\d+\.\d+"\} 1$/m);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.ok(!promtool.error, 'promtool is not installed (Debian package prometheus; make deps)');
    assert.equal(promtool.status, 0, `promtool check metrics:\n${promtool.stdout}${promtool.stderr}`);
  });

  it('/status lists the interfaces and the clients seen', async () => {
    const res = await fetch(`http://127.0.0.1:${daemon.outside.metricsPort}/status`);
    const s = (await res.json()) as {
      version: string;
      'clients-seen': { mac: string; ip?: string }[];
      interfaces: unknown[];
    };
    assert.match(s.version, /^\d+\.\d+\.\d+$/);
    assert.equal(s.interfaces.length, 1);
    const me = s['clients-seen'].find((c) => c.mac === MAC);
    assert.equal(me?.ip, '127.0.0.1');
    const other = await fetch(`http://127.0.0.1:${daemon.outside.metricsPort}/other`);
    assert.equal(other.status, 404);
  });
});

describe('--exit-timeout', () => {
  it('asks the daemon to exit 1 when the events have not all happened in time', async () => {
    const exits: { code: number; reason: string }[] = [];
    const { log, lines } = memoryLogger('info');
    const config = cliConfig(
      ['--no-tftp', '--exit-after', 'transfer-done:vmlinuz', '--exit-timeout', '1', 'pxelinux.0'],
      68,
    );
    const t0 = Date.now();
    const d = await startDaemon(config, { log, exit: (code, reason) => exits.push({ code, reason }) });
    try {
      await until(() => exits.length > 0, 3000, 'the deadline');
      assert.deepEqual(exits, [{ code: 1, reason: 'exit-timeout' }]);
      assert.ok(Date.now() - t0 >= 950);
      assert.ok(lines.some((l) => l.message.startsWith('exit-timeout') && l.missing === 'transfer-done:vmlinuz'));
    } finally {
      await d.close();
    }
  });
});
