import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counters, RateLimiter } from '../../../src/core/counters.js';
import { EventBus, type PxeEvent } from '../../../src/core/events.js';
import { PeerLog } from '../../../src/core/logger.js';
import { parseClientPatterns } from '../../../src/pxe/acl.js';
import type { BootPolicy } from '../../../src/pxe/boot.js';
import { ClientTable } from '../../../src/pxe/clients.js';
import { Decider, type Fetch } from '../../../src/pxe/decide.js';
import type { Destination, ServerContext } from '../../../src/pxe/policy.js';
import { handleDatagram, type ReplySender, type ResponderPort } from '../../../src/pxe/responder.js';
import { parseRule } from '../../../src/pxe/rules.js';
import { DhcpOption, MessageType } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp, type DhcpPacket } from '../../../src/wire/dhcp-packet.js';
import { ipToBytes } from '../../../src/wire/ip.js';
import { MemoryLogger } from '../../helpers/log.js';
import { requestBytes } from '../../helpers/packets.js';

const ctx: ServerContext = {
  serverIp: '10.77.0.2',
  tftpServer: '10.77.0.2',
  broadcastAddress: '255.255.255.255',
  clientPort: 68,
  interfaceName: 'eth0',
};
const POLICY: BootPolicy = {
  defaultFile: 'undionly.kpxe',
  efiMode: 'bypass',
  rules: [parseRule('arch=efi-x64,file=ipxe.efi')],
  deny: parseClientPatterns('deny', ['52:54:00:00:00:66']),
};
const CLIENT = { address: '0.0.0.0', port: 68 };

/** A decision server in memory: by MAC, an answer, a status, a delay or a refusal. */
type Script = Record<string, { status: number; body?: string; delayMs?: number } | 'refuse'>;

function fetchFrom(script: Script, asked: string[]): Fetch {
  return (url, init) => {
    const mac = new URL(url).searchParams.get('mac')!;
    asked.push(mac);
    const a = script[mac] ?? { status: 404 };
    if (a === 'refuse') return Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve(new Response(a.body ?? null, { status: a.status })), a.delayMs ?? 0);
      init.signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new DOMException('aborted', 'AbortError'));
      });
    });
  };
}

function harness(script: Script, fallback: 'rules' | 'deny' = 'rules') {
  const sent: { reply: DhcpPacket; to: Destination; at: number }[] = [];
  const out: ReplySender = { send: (bytes, to) => void sent.push({ reply: decodeDhcp(bytes), to, at: Date.now() }) };
  const log = new MemoryLogger('debug');
  const counters = new Counters<string>();
  const events: PxeEvent[] = [];
  const bus = new EventBus();
  bus.add({ emit: (e) => events.push(e) });
  const asked: string[] = [];
  const decider = new Decider(
    { url: 'http://decide.invalid/pxe', timeoutMs: 300, fallback, cacheMs: 10_000, http: false },
    { fetch: fetchFrom(script, asked) },
  );
  const clients = new ClientTable();
  const deps = {
    lines: new PeerLog(log, new RateLimiter(50, 200, () => 0)),
    counters,
    policy: () => POLICY,
    events: bus,
    clients,
    decider: () => decider,
  };
  const feed = (port: ResponderPort, msg: Buffer, from = CLIENT): void =>
    handleDatagram(port, out, ctx, deps, msg, from);
  return { sent, log, counters, feed, events, asked, clients, decider };
}

const discover = (mac: string, extra: Parameters<typeof requestBytes>[0] = {}) => requestBytes({ mac, ...extra });
const settle = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe('the responder with --decide-url', () => {
  it('answers with the decision, asynchronously for that client only, then from the cache at once', async () => {
    const h = harness({
      '52:54:00:00:00:01': { status: 200, body: '{"file": "hosts/one.0", "next-server": "10.77.0.9"}', delayMs: 30 },
    });
    h.feed('dhcp', discover('52:54:00:00:00:01'));
    assert.equal(h.sent.length, 0, 'nothing is sent before the decision lands');
    await settle(80);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.reply.bootFile, 'hosts/one.0');
    assert.equal(h.sent[0]!.reply.nextServer, '10.77.0.9');
    h.feed('dhcp', discover('52:54:00:00:00:01'));
    assert.equal(h.sent.length, 2, 'a cached decision answers synchronously');
    assert.equal(h.asked.length, 1);
    const offer = h.events.find((e) => e.type === 'offer')!;
    assert.equal(offer.mac, '52:54:00:00:00:01');
    assert.equal('decided-by' in offer && offer['decided-by'], 'decide-url');
    assert.match('rule' in offer ? offer.rule : '', /^decide-url \(file=hosts\/one\.0,next-server=10\.77\.0\.9\)$/);
    const line = h.log.lines.find((l) => l.message === 'proxy offer')!;
    assert.match(String(line.rule), /^decide-url/);
    assert.equal(
      h.clients.byMac('52:54:00:00:00:01')?.last && 'file' in h.clients.byMac('52:54:00:00:00:01')!.last!
        ? 'hosts/one.0'
        : '',
      'hosts/one.0',
    );
  });

  it('a slow decision for one client does not delay another', async () => {
    const h = harness({
      '52:54:00:00:00:01': { status: 200, body: '{"file": "slow.0"}', delayMs: 250 },
      '52:54:00:00:00:02': { status: 200, body: '{"file": "fast.0"}' },
    });
    const t0 = Date.now();
    h.feed('dhcp', discover('52:54:00:00:00:01'));
    h.feed('dhcp', discover('52:54:00:00:00:02'));
    await settle(50);
    assert.deepEqual(
      h.sent.map((s) => s.reply.bootFile),
      ['fast.0'],
    );
    assert.ok(h.sent[0]!.at - t0 < 50);
    await settle(300);
    assert.deepEqual(
      h.sent.map((s) => s.reply.bootFile),
      ['fast.0', 'slow.0'],
    );
  });

  it('retransmissions while the question is out get one answer, to the latest packet', async () => {
    const h = harness({ '52:54:00:00:00:01': { status: 200, body: '{"file": "a.0"}', delayMs: 40 } });
    for (const xid of [1, 2, 3]) h.feed('dhcp', discover('52:54:00:00:00:01', { xid }));
    await settle(100);
    assert.equal(h.asked.length, 1);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.reply.transactionId, 3);
  });

  it('204/403/404 deny: no answer, a denied event and counter', async () => {
    const h = harness({ '52:54:00:00:00:03': { status: 403 } });
    h.feed('dhcp', discover('52:54:00:00:00:03'));
    await settle();
    assert.equal(h.sent.length, 0);
    assert.equal(h.counters.get('decide-denied'), 1);
    const denied = h.events.find((e) => e.type === 'denied')!;
    assert.equal('reason' in denied && denied.reason, 'decide-denied');
    assert.equal('detail' in denied && denied.detail, 'decide-url answered 403');
    const line = h.log.lines.find((l) => l.reason === 'decide-denied')!;
    assert.equal(line.level, 'info');
  });

  it('falls back to the local rules when the server is down, saying so', async () => {
    const h = harness({ '52:54:00:00:00:04': 'refuse', '52:54:00:00:00:05': { status: 500 } });
    h.feed('dhcp', discover('52:54:00:00:00:04'));
    h.feed('dhcp', discover('52:54:00:00:00:05', { arch: 7 }));
    await settle();
    assert.deepEqual(
      h.sent.map((s) => s.reply.bootFile),
      ['undionly.kpxe', 'ipxe.efi'],
    );
    const offers = h.events.filter((e) => e.type === 'offer');
    assert.ok(offers.every((e) => 'decided-by' in e && e['decided-by'] === 'fallback'));
    assert.match(
      'rule' in offers[0]! ? offers[0].rule : '',
      /^default, after decide-url unreachable \(ECONNREFUSED\)$/,
    );
    assert.match(
      'rule' in offers[1]! ? offers[1].rule : '',
      /^rule 1 \(arch=efi-x64,file=ipxe.efi\), after decide-url status 500$/,
    );
  });

  it('--decide-fallback deny: a failed question is not answered', async () => {
    const h = harness({ '52:54:00:00:00:04': 'refuse' }, 'deny');
    h.feed('dhcp', discover('52:54:00:00:00:04'));
    await settle();
    assert.equal(h.sent.length, 0);
    assert.equal(h.counters.get('decide-unavailable'), 1);
    assert.equal(h.events[0]?.type, 'denied');
  });

  it('a client refused by --deny is never asked about; non-PXE traffic neither', async () => {
    const h = harness({});
    h.feed('dhcp', discover('52:54:00:00:00:66'));
    h.feed('dhcp', requestBytes({ mac: '52:54:00:00:00:67', vendor: 'MSFT 5.0' }));
    await settle();
    assert.equal(h.asked.length, 0);
    assert.equal(h.counters.get('denied'), 1);
    assert.equal(h.counters.get('not-pxe-client'), 1);
    assert.deepEqual(
      h.events.map((e) => e.type),
      ['denied', 'ignored'],
    );
  });

  it('a kernel-only answer is for iPXE: other firmware gets the local rules', async () => {
    const h = harness({ '52:54:00:00:00:07': { status: 200, body: '{"file": "ipxe-from-url.efi"}' } });
    h.feed('dhcp', discover('52:54:00:00:00:07'));
    await settle();
    assert.equal(h.sent[0]?.reply.bootFile, 'ipxe-from-url.efi');
  });

  it('answers port 4011 requests too, asking with port=4011, and learns the client address', async () => {
    const h = harness({ '52:54:00:00:00:08': { status: 200, body: '{"file": "x.efi"}' } });
    const req = requestBytes({ mac: '52:54:00:00:00:08', type: MessageType.REQUEST, ciaddr: '10.77.0.50', arch: 7 });
    h.feed('proxy', req, { address: '10.77.0.50', port: 4011 });
    await settle();
    assert.equal(h.sent[0]?.reply.bootFile, 'x.efi');
    assert.equal(h.clients.byIp('10.77.0.50')?.mac, '52:54:00:00:00:08');
    assert.equal(h.events[0]?.type, 'ack');
    assert.equal(h.events[0]?.ip, '10.77.0.50');
  });
});

describe('the responder learns client addresses from their DHCPREQUEST to the real server', () => {
  it('option 50 of a PXE REQUEST on port 67', () => {
    const h = harness({});
    h.feed(
      'dhcp',
      requestBytes({
        mac: '52:54:00:00:00:09',
        type: MessageType.REQUEST,
        arch: 7,
        extra: [[DhcpOption.REQUESTED_IP, ipToBytes('10.77.0.61')]],
      }),
    );
    const c = h.clients.byIp('10.77.0.61');
    assert.equal(c?.mac, '52:54:00:00:00:09');
    assert.equal(c?.arch, 'efi-x64');
    assert.equal(h.sent.length, 0, 'still not answered');
  });
});
