import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../src/cli/args.js';
import type { PxeEvent } from '../../src/core/events.js';
import type { Config } from '../../src/daemon/config.js';
import { decodeDhcp } from '../../src/wire/dhcp-packet.js';
import { macToString } from '../../src/wire/ip.js';
import { startTestDaemon, TestClient, until, type TestDaemon } from '../helpers/daemon.js';
import { requestBytes } from '../helpers/packets.js';

// --decide-url against a real HTTP decision server on loopback: per-MAC answers, a denial, a
// server slower (3 s) than --decide-timeout (2 s), and one that is down; the slow one must not
// delay anybody else, which is measured and printed.

const ONE = '52:54:00:0d:00:01';
const DENIED = '52:54:00:0d:00:02';
const SLOW = '52:54:00:0d:00:03';
const FOUR = '52:54:00:0d:00:04';
const UNKNOWN = '52:54:00:0d:00:05';
const BROKEN = '52:54:00:0d:00:06';

/** The decision server: answers by the `mac` parameter, records what it was asked. */
function decisionServer(): Promise<{ server: Server; url: string; asked: URLSearchParams[] }> {
  const asked: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    asked.push(q);
    const json = (body: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    switch (q.get('mac')) {
      case ONE:
        return json({ file: 'hosts/one.0', 'next-server': '127.0.0.9' });
      case DENIED:
        res.writeHead(403).end();
        return;
      case SLOW:
        setTimeout(() => json({ file: 'slow.0' }), 3000).unref();
        return;
      case FOUR:
        return json({ file: 'four.efi' });
      case BROKEN:
        return json({ file: 'x', mac: 'not a key' });
      default:
        res.writeHead(404).end();
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/decide?site=lab`, asked });
    }),
  );
}

function cliConfig(args: string[], clientPort: number): Config {
  const base = `-d -l 127.0.0.1 -t 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 --no-tftp --client-port ${clientPort}`;
  const r = parseArgs([...base.split(' '), ...args]);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

describe('--decide-url on loopback', () => {
  let client: TestClient;
  let t: TestDaemon;
  let decider: Awaited<ReturnType<typeof decisionServer>>;
  const events: PxeEvent[] = [];
  /** Replies by MAC, with the time they arrived. */
  const replies = new Map<string, { file: string; nextServer: string; at: number }[]>();

  before(async () => {
    decider = await decisionServer();
    client = await TestClient.open();
    client.socket.on('message', (msg) => {
      const p = decodeDhcp(msg);
      const mac = macToString(p.clientHardware);
      replies.set(mac, [...(replies.get(mac) ?? []), { file: p.bootFile, nextServer: p.nextServer, at: Date.now() }]);
    });
    t = await startTestDaemon(
      cliConfig(['--decide-url', decider.url, '--boot', 'arch=efi-x64,file=local.efi', 'pxelinux.0'], client.port),
      'info',
    );
    t.daemon.outside.events.add({ emit: (e) => events.push(e) });
  });
  after(async () => {
    client.close();
    await t.daemon.close();
    decider.server.closeAllConnections();
    decider.server.close();
  });

  it('answers per MAC, denies one, and the slow one (3 s, past the 2 s timeout) delays nobody else', async () => {
    const t0 = Date.now();
    // The slow one first: everything after it must still be answered at once.
    for (const mac of [SLOW, ONE, DENIED, FOUR, UNKNOWN]) {
      await client.send(requestBytes({ mac, arch: mac === FOUR ? 7 : 0 }), t.daemon.ports.dhcp[0]!);
    }
    await until(() => replies.has(ONE) && replies.has(FOUR), 2000, 'the quick answers');
    const quick = Math.max(replies.get(ONE)![0]!.at, replies.get(FOUR)![0]!.at) - t0;
    await until(() => replies.has(SLOW), 4000, 'the slow client, answered by the fallback');
    const slow = replies.get(SLOW)![0]!.at - t0;
    process.stdout.write(
      `# decide: quick answers within ${quick} ms while one decision was outstanding; slow client answered by fallback after ${slow} ms\n`,
    );
    assert.ok(quick < 1000, `the quick clients waited ${quick} ms, the slow one's timeout is 2000 ms`);
    assert.ok(slow >= 1900 && slow < 2900, `the slow client fell back at the 2 s timeout (${slow} ms)`);
    assert.deepEqual(replies.get(ONE)![0], {
      file: 'hosts/one.0',
      nextServer: '127.0.0.9',
      at: replies.get(ONE)![0]!.at,
    });
    assert.equal(replies.get(FOUR)![0]!.file, 'four.efi');
    assert.equal(replies.get(SLOW)![0]!.file, 'pxelinux.0', 'fallback rules: the default <nbp>');
    assert.ok(!replies.has(DENIED), '403: not answered');
    assert.ok(!replies.has(UNKNOWN), '404: not answered');
    assert.equal(t.daemon.stats.get('decide-denied'), 2);
    assert.equal(t.daemon.stats.get('decide-request'), 5);
  });

  it('asked every parameter, the URL own query kept', () => {
    const q = decider.asked.find((a) => a.get('mac') === FOUR)!;
    assert.equal(q.get('site'), 'lab');
    assert.equal(q.get('arch'), 'efi-x64');
    assert.equal(q.get('port'), '67');
    assert.equal(q.get('uuid'), '7e57ab00-0000-4000-8000-525400123456');
    assert.match(q.get('vendor-class')!, /^PXEClient:Arch:00007/);
    assert.deepEqual([q.get('interface'), q.get('relay'), q.get('user-class')], ['', '', '']);
  });

  it('logged and told each decision, with status and milliseconds', () => {
    const decide = events.filter((e) => e.type === 'decide');
    const byMac = new Map(decide.map((e) => [e.mac, e]));
    const status = (mac: string) => {
      const e = byMac.get(mac);
      return e && 'status' in e ? e.status : undefined;
    };
    assert.equal(status(ONE), 200);
    assert.equal(status(DENIED), 403);
    assert.equal(status(SLOW), 'timeout');
    const slow = byMac.get(SLOW);
    assert.ok(slow && 'ms' in slow && slow.ms >= 1900);
    assert.ok(
      decide.every((e) => 'url' in e && e.url === decider.url.split('?')[0]),
      'no query string in events',
    );
    const denied = events.filter((e) => e.type === 'denied').map((e) => e.mac);
    assert.deepEqual(denied.sort(), [DENIED, UNKNOWN].sort());
    const line = t.lines.find((l) => l.message === 'ignored' && l.mac === DENIED);
    assert.equal(line?.detail, 'decide-url answered 403');
  });

  it('a retransmission is answered from the cache at once, without a request', async () => {
    const before = decider.asked.length;
    const n = replies.get(ONE)!.length;
    const t0 = Date.now();
    await client.send(requestBytes({ mac: ONE }), t.daemon.ports.dhcp[0]!);
    await until(() => replies.get(ONE)!.length > n, 1000, 'the cached answer');
    assert.ok(Date.now() - t0 < 200);
    assert.equal(decider.asked.length, before);
  });

  it('an answer that is not a valid rule falls back, saying why', async () => {
    await client.send(requestBytes({ mac: BROKEN }), t.daemon.ports.dhcp[0]!);
    await until(() => replies.has(BROKEN), 2000, 'the fallback answer');
    assert.equal(replies.get(BROKEN)![0]!.file, 'pxelinux.0');
    const e = events.find((x) => x.type === 'decide' && x.mac === BROKEN);
    assert.match(e && 'detail' in e ? String(e.detail) : '', /unknown key 'mac'/);
  });

  it('a decision server that is down: fallback rules answer; after a reload to --decide-fallback deny, none', async () => {
    const down = createServer();
    const port = await new Promise<number>((resolve) =>
      down.listen(0, '127.0.0.1', () => resolve((down.address() as AddressInfo).port)),
    );
    await new Promise<void>((resolve) => down.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/decide`;
    const kept = t.daemon.reload(cliConfig(['--decide-url', url, 'pxelinux.0'], client.port));
    assert.deepEqual(kept, []);
    const mac = '52:54:00:0d:00:07';
    const t0 = Date.now();
    await client.send(requestBytes({ mac }), t.daemon.ports.dhcp[0]!);
    await until(() => replies.has(mac), 2000, 'the fallback answer');
    assert.ok(Date.now() - t0 < 1000, 'a refused connection falls back at once');
    assert.equal(replies.get(mac)![0]!.file, 'pxelinux.0');
    const offer = events.filter((e) => e.type === 'offer' && e.mac === mac).pop();
    assert.equal(offer && 'decided-by' in offer && offer['decided-by'], 'fallback');
    assert.match(
      offer && 'rule' in offer ? offer.rule : '',
      /^default, after decide-url unreachable \(ECONNREFUSED\)$/,
    );

    t.daemon.reload(cliConfig(['--decide-url', url, '--decide-fallback', 'deny', 'pxelinux.0'], client.port));
    const other = '52:54:00:0d:00:08';
    await client.send(requestBytes({ mac: other }), t.daemon.ports.dhcp[0]!);
    await until(() => t.daemon.stats.get('decide-unavailable') === 1, 2000, 'the refusal');
    assert.ok(!replies.has(other));

    // Without --decide-url again: the local rules alone.
    t.daemon.reload(cliConfig(['pxelinux.0'], client.port));
    await client.send(requestBytes({ mac: other }), t.daemon.ports.dhcp[0]!);
    await until(() => replies.has(other), 2000, 'the local answer');
  });
});

describe('--decide-url with a kernel answer for iPXE (loopback, --http)', () => {
  it('firmware gets the local rule, iPXE a script URL, and the script boots the decided kernel', async () => {
    const server = createServer((req, res) => {
      const q = new URL(req.url!, 'http://x').searchParams;
      const body =
        q.get('user-class') === 'iPXE'
          ? { kernel: 'debian/linux', initrd: ['debian/initrd.gz'], cmdline: 'priority=low console=ttyS0,115200' }
          : { kernel: 'debian/linux' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
    const client = await TestClient.open();
    const t = await startTestDaemon(
      cliConfig(
        ['--http', '--http-port', '0', '--decide-url', `http://127.0.0.1:${port}/d`, '--boot', 'file=undionly.kpxe'],
        client.port,
      ),
      'info',
    );
    try {
      const mac = '52:54:00:0d:00:20';
      await client.send(requestBytes({ mac }), t.daemon.ports.dhcp[0]!);
      await client.waitFor(1, 3000);
      assert.equal(decodeDhcp(client.received[0]!.msg).bootFile, 'undionly.kpxe', 'a PXE ROM cannot run a kernel');
      await client.send(requestBytes({ mac, userClass: 'iPXE', xid: 2 }), t.daemon.ports.dhcp[0]!);
      await client.waitFor(2, 3000);
      const script = decodeDhcp(client.received[1]!.msg).bootFile;
      assert.match(script, /^http:\/\/127\.0\.0\.1:\d+\/pxe-pdhcp\/boot\/52-54-00-0d-00-20\.ipxe\?arch=0/);
      const body = await (await fetch(script)).text();
      assert.match(body, /^#!ipxe/);
      assert.match(body, /kernel http:\/\/127\.0\.0\.1:\d+\/debian\/linux .*priority=low console=ttyS0,115200/);
      assert.match(body, /initrd http:\/\/127\.0\.0\.1:\d+\/debian\/initrd\.gz/);
      assert.match(body, /decide-url \(kernel=debian\/linux/);
    } finally {
      client.close();
      await t.daemon.close();
      server.closeAllConnections();
      server.close();
    }
  });
});
