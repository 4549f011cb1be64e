/**
 * `pxe-probe --status` against the in-process daemon on loopback: the daemon with `--upstream` (a
 * local mirror), `--decide-url` (a local decision service), `--metrics` and `--events`; the probe's
 * own TFTP and HTTP fetches, then its reading of `/status`. Shows which answer of the decision URL
 * (or which rule after it failed) decided, and where each file came from: local, cache miss, cache hit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../src/cli/args.js';
import type { PxeEvent } from '../../src/core/events.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { fetchBoot, type TransferReport } from '../../src/probe/fetch.js';
import { fetchHttpBoot } from '../../src/probe/http-fetch.js';
import { decisionText, getText, readStatus } from '../../src/probe/status.js';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { TestClient } from '../helpers/daemon.js';
import { memoryLogger } from '../helpers/log.js';
import { requestBytes } from '../helpers/packets.js';
import { pattern, tempRoot } from '../helpers/tftp.js';
import { FakeUpstream } from '../helpers/upstream.js';

const DECIDED = '52:54:00:0f:00:01';
const BROKEN = '52:54:00:0f:00:02';
const DENIED = '52:54:00:0f:00:03';

const LOCAL = pattern(30_000, 3);
const MIRRORED = pattern(200_000, 4);
const PAGE = pattern(90_000, 5);

/** A decision service: a file for DECIDED, a server error for BROKEN, "not here" for everyone else. */
function decisionServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const mac = new URL(req.url!, 'http://x').searchParams.get('mac');
    if (mac === DECIDED) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ file: 'mirrored.efi' }));
    } else res.writeHead(mac === BROKEN ? 500 : 404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pxe` }),
    ),
  );
}

describe('pxe-probe --status on loopback: the decision and each file’s origin, from the daemon', () => {
  const root = tempRoot({ 'local.efi': LOCAL, 'page.html': 'local page\n' });
  const out = tempRoot();
  const cacheDir = mkdtempSync(join(tmpdir(), 'probe-status-cache-'));
  const eventsFile = join(out.dir, 'events.jsonl');
  let mirror: FakeUpstream;
  let decide: Awaited<ReturnType<typeof decisionServer>>;
  let client: TestClient;
  let daemon: Daemon;
  let status: string;
  const { log } = memoryLogger('info');
  /** A mirrored file is in the cache (complete, renamed in) once this line is written. */
  const cached = (name: string) =>
    log.waitFor((l) => l.message === 'upstream download complete' && String(l.url).endsWith(`/${name}`));

  before(async () => {
    mirror = await FakeUpstream.start();
    mirror.files.set('/mirrored.efi', { body: MIRRORED });
    mirror.files.set('/page.bin', { body: PAGE });
    decide = await decisionServer();
    client = await TestClient.open();
    const base =
      `-d -l 127.0.0.1 -t 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 ` +
      `--tftp-port 0 --http --http-port 0 --client-port ${client.port} --tftp-root ${root.dir}`;
    const r = parseArgs([
      ...base.split(' '),
      ...['--upstream', mirror.url, '--cache-dir', cacheDir, '--metrics', '127.0.0.1:0'],
      ...['--decide-url', decide.url, '--events', eventsFile, 'pxelinux.0'],
    ]);
    assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
    if (r.kind !== 'run') throw new Error('unreachable');
    daemon = await startDaemon(r.config, { log });
    status = `http://127.0.0.1:${daemon.outside.metricsPort}`;
  });
  after(async () => {
    client.close();
    await daemon.close();
    await mirror.close();
    decide.server.closeAllConnections();
    decide.server.close();
    root.remove();
    out.remove();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  /** What a booting client sends: a DISCOVER, then (with the offer in hand) the router's DHCPREQUEST taking 127.0.0.1. */
  async function boot(mac: string): Promise<void> {
    const n = client.received.length;
    await client.send(requestBytes({ mac }), daemon.ports.dhcp[0]!);
    if (mac === DENIED) return;
    await client.waitFor(n + 1, 3000);
    const taking: [number, Buffer] = [DhcpOption.REQUESTED_IP, Buffer.of(127, 0, 0, 1)];
    await client.send(requestBytes({ mac, type: MessageType.REQUEST, extra: [taking] }), daemon.ports.dhcp[0]!);
  }

  const tftp = async (file: string): Promise<TransferReport> => {
    const r = await fetchBoot({
      server: '127.0.0.1',
      port: daemon.ports.tftp[0]!,
      bootFile: file,
      mac: Buffer.from(DECIDED.replaceAll(':', ''), 'hex'),
      clientIp: '127.0.0.1',
      arch: 7,
      blksize: 1468,
      windowsize: 4,
    });
    assert.equal(r.transfers.length, 1);
    assert.equal(r.transfers[0]!.ok, true, JSON.stringify(r.transfers[0]));
    return r.transfers[0]!;
  };

  it('TFTP: the decision URL’s answer, and a mirrored file fetched (miss), then cached (hit), beside a local one', async () => {
    await boot(DECIDED);
    const me = { ip: '127.0.0.1', mac: DECIDED };
    // As three runs of the probe would: a file, then the status page.
    const first = [await tftp('mirrored.efi')];
    assert.equal(first[0]!.origin, 'unknown', 'over TFTP, the probe alone cannot tell');
    await readStatus(status, me, first);
    await cached('mirrored.efi');
    const second = [await tftp('/mirrored.efi')];
    await readStatus(status, me, second);
    const third = [await tftp('local.efi')];
    const s = await readStatus(status, me, third);
    assert.deepEqual(
      [first, second, third].map(([t]) => t!.origin),
      ['cache-miss', 'cache-hit', 'local'],
    );
    assert.ok(s.ok, JSON.stringify(s));
    assert.equal(s.client?.decidedBy, 'decide-url');
    assert.equal(s.client?.rule, 'decide-url (file=mirrored.efi)');
    assert.equal(s.client?.decide?.status, 200);
    assert.equal(s.client?.decide?.url, decide.url);
    const line = decisionText(s);
    process.stdout.write(`# ${line}\n`);
    assert.match(
      line,
      new RegExp(
        `^Decided by: decide-url ${decide.url} \\(HTTP 200 in \\d+ ms\\): file=mirrored\\.efi \\[port 67, file mirrored\\.efi\\]$`,
      ),
    );
    const starts = readFileSync(eventsFile, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as PxeEvent)
      .filter((e) => e.type === 'transfer-start');
    assert.deepEqual(
      starts.map((e) => [e.file, 'origin' in e ? e.origin : undefined]),
      [
        ['mirrored.efi', 'cache-miss'],
        ['mirrored.efi', 'cache-hit'],
        ['local.efi', 'local'],
      ],
    );
  });

  it('HTTP: X-Cache tells the probe itself; the daemon lists the same', async () => {
    const http = `http://127.0.0.1:${daemon.ports.http[0]!}`;
    const got: TransferReport[] = [];
    for (const path of ['/page.bin', '/page.bin', '/page.html']) {
      if (got.length === 1) await cached('page.bin');
      const r = await fetchHttpBoot(`${http}${path}`);
      assert.equal(r.transfers[0]?.ok, true, JSON.stringify(r.transfers[0]));
      got.push(r.transfers[0]);
    }
    assert.deepEqual(
      got.map((t) => t.origin),
      ['cache-miss', 'cache-hit', 'local'],
    );
    const page = await getText(`${status}/status`, 3000);
    assert.ok(page.ok);
    const listed = (
      JSON.parse(page.body) as { 'recent-transfers': { protocol: string; file: string; origin: string }[] }
    )['recent-transfers']
      .filter((t) => t.protocol === 'http')
      .map((t) => [t.file, t.origin]);
    assert.deepEqual(listed, [
      ['page.html', 'local'],
      ['page.bin', 'cache-hit'],
      ['page.bin', 'cache-miss'],
    ]);
  });

  it('a decision URL that fails: the local rules answered, and the line says after what', async () => {
    await boot(BROKEN);
    const s = await readStatus(status, { mac: BROKEN }, []);
    assert.ok(s.ok);
    assert.equal(s.client?.decidedBy, 'fallback');
    const line = decisionText(s);
    process.stdout.write(`# ${line}\n`);
    assert.match(
      line,
      new RegExp(
        `^Decided by: the local rules \\(default\\), after decide-url ${decide.url} \\(HTTP 500 in \\d+ ms\\) failed \\[port 67, file pxelinux\\.0\\]$`,
      ),
    );
  });

  it('a client the decision URL denies: nothing was sent, and why', async () => {
    await boot(DENIED);
    // No answer to wait for: the status shows the refusal once the decision has landed.
    let line = '';
    const deadline = Date.now() + 3000;
    while (!/decide-denied/.test(line) && Date.now() < deadline) {
      line = decisionText(await readStatus(status, { mac: DENIED }, []));
      if (!/decide-denied/.test(line)) await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(
      line,
      new RegExp(
        `^Decided by: nothing was sent \\(decide-denied\\), decide-url ${decide.url} \\(HTTP 404 in \\d+ ms\\) \\[port 67\\]$`,
      ),
    );
  });

  it('a status URL with nothing behind it, or one that never answers: one line, within the deadline', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = await readStatus(`http://127.0.0.1:${port}`, { mac: DECIDED }, []);
    assert.equal(down.ok, false);
    assert.match(
      decisionText(down),
      /^Decided by: unknown \(status http:\/\/127\.0\.0\.1:\d+\/status not read: .*ECONNREFUSED.*\)$/,
    );
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const t0 = Date.now();
      const r = await getText(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/status`, 300);
      assert.deepEqual(r, { ok: false, error: 'no answer within 0.3 s' });
      assert.ok(Date.now() - t0 < 1500);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
