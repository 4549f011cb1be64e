import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counters, RateLimiter } from '../../../src/core/counters.js';
import { PeerLog } from '../../../src/core/logger.js';
import type { BootPolicy } from '../../../src/pxe/boot.js';
import type { Destination, ServerContext } from '../../../src/pxe/policy.js';
import { handleDatagram, type DhcpCounter, type ReplySender, type ResponderPort } from '../../../src/pxe/responder.js';
import { DhcpOption, MessageType } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp, type DhcpPacket } from '../../../src/wire/dhcp-packet.js';
import { EncodeError } from '../../../src/wire/reader.js';
import { MemoryLogger, type LogLine } from '../../helpers/log.js';
import { fixture, requestBytes } from '../../helpers/packets.js';

// The namespace LAN of the captures (test/fixtures/README.md): proxyDHCP at 10.77.0.2.
const ctx: ServerContext = {
  serverIp: '10.77.0.2',
  tftpServer: '10.77.0.2',
  broadcastAddress: '255.255.255.255',
  clientPort: 68,
};
const POLICY: BootPolicy = { defaultFile: 'undionly.kpxe', efiMode: 'binl' };
const CLIENT = { address: '0.0.0.0', port: 68 };

/** A responder's surroundings: a recording sender, the log behind the cap, the counters. */
function harness(policy: () => BootPolicy = () => POLICY, send?: ReplySender['send']) {
  const sent: { reply: DhcpPacket; bytes: Buffer; to: Destination }[] = [];
  const out: ReplySender = {
    send: send ?? ((bytes, to) => void sent.push({ reply: decodeDhcp(bytes), bytes, to })),
  };
  const log = new MemoryLogger('debug');
  const counters = new Counters<DhcpCounter>();
  const deps = { lines: new PeerLog(log, new RateLimiter(50, 200, () => 0)), counters, policy };
  const feed = (port: ResponderPort, msg: Buffer, from = CLIENT): void =>
    handleDatagram(port, out, ctx, deps, msg, from);
  return { sent, log, counters, feed };
}

/** Lines whose message is `message`. */
const linesOf = (log: MemoryLogger, message: string): LogLine[] => log.lines.filter((l) => l.message === message);

describe('handleDatagram with captured firmware packets', () => {
  it('iPXE BIOS ROM DISCOVER on 67: one bypass offer, broadcast to :68, counted offer-sent', async () => {
    const h = harness();
    h.feed('dhcp', fixture('ipxe-bios-rom-discover'));
    assert.equal(h.sent.length, 1);
    const { reply, to } = h.sent[0]!;
    assert.deepEqual(to, { address: '255.255.255.255', port: 68 });
    assert.deepEqual([...reply.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.OFFER]);
    assert.equal(reply.bootFile, 'undionly.kpxe');
    assert.equal(reply.clientHardware.subarray(0, 6).toString('hex'), '525400770001');
    assert.deepEqual([...reply.options.get(DhcpOption.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
    assert.deepEqual(h.counters.snapshot(), { 'offer-sent': 1 });
    // The info line is written after the send, off the reply's path.
    assert.equal(linesOf(h.log, 'proxy offer').length, 0, 'not logged before the send has gone');
    const line = await h.log.waitFor((l) => l.message === 'proxy offer');
    assert.equal(line.level, 'info');
    assert.equal(line.mac, '52:54:00:77:00:01');
    assert.equal(line.file, 'undionly.kpxe');
    assert.equal(line.shape, 'bypass');
    assert.equal(line.port, 67);
    assert.equal(line.to, '255.255.255.255:68');
  });

  it('OVMF DISCOVER on 67: a BINL offer without option 43', () => {
    const h = harness();
    h.feed('dhcp', fixture('ovmf-edk2-discover'));
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.reply.options.has(DhcpOption.VENDOR_SPECIFIC), false);
    assert.equal(h.counters.get('offer-sent'), 1);
  });

  it('OVMF BINL request on 4011 from port 4011: an ACK back to that port, counted ack-sent', async () => {
    const h = harness();
    // Its ciaddr is 10.77.0.101, the packet's source (docs/addressing.md#where-port-4011-answers-go).
    const from = { address: '10.77.0.101', port: 4011 };
    h.feed('proxy', fixture('ovmf-edk2-request-4011-binl'), from);
    assert.equal(h.sent.length, 1);
    assert.deepEqual(h.sent[0]!.to, from);
    assert.deepEqual([...h.sent[0]!.reply.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.ACK]);
    assert.deepEqual(h.counters.snapshot(), { 'ack-sent': 1 });
    const line = await h.log.waitFor((l) => l.message === 'boot ack');
    assert.equal(line.port, 4011);
  });

  it('iPXE boot-server request on 4011: the ACK echoes sub-option 71', () => {
    const h = harness();
    h.feed('proxy', fixture('ipxe-bios-rom-request-4011-bootserver'), { address: '10.77.0.100', port: 68 });
    assert.equal(h.sent.length, 1);
    assert.equal(
      h.sent[0]!.reply.options.get(DhcpOption.VENDOR_SPECIFIC)!.toString('hex'),
      '06010847048000' + '0000ff',
    );
  });

  it('REQUESTs on 67 for the router lease are ignored and counted, with a debug line', () => {
    const h = harness();
    h.feed('dhcp', fixture('ipxe-bios-rom-request-67'));
    h.feed('dhcp', fixture('ovmf-edk2-request-67'));
    assert.equal(h.sent.length, 0);
    assert.deepEqual(h.counters.snapshot(), { 'wrong-message-type': 2 });
    const ignored = linesOf(h.log, 'ignored');
    assert.equal(ignored.length, 2);
    assert.ok(ignored.every((l) => l.level === 'debug' && l.reason === 'wrong-message-type' && l.port === 'dhcp'));
  });

  it('a DISCOVER without option 60 (syslinux.efi) is not a PXE client', () => {
    const h = harness();
    h.feed('dhcp', fixture('syslinux-efi-discover-no-vendor-class'));
    assert.equal(h.sent.length, 0);
    assert.deepEqual(h.counters.snapshot(), { 'not-pxe-client': 1 });
  });

  it('a mixed stream: replies and ignores add up', () => {
    const h = harness();
    const dhcp = ['ipxe-bios-rom-discover', 'ovmf-edk2-discover', 'ipxe-efi-discover', 'ovmf-edk2-request-67'];
    for (const name of dhcp) h.feed('dhcp', fixture(name));
    h.feed('proxy', fixture('ipxe-efi-request-4011'), { address: '10.77.0.103', port: 68 });
    h.feed('proxy', fixture('ovmf-edk2-discover'), { address: '10.77.0.102', port: 68 });
    assert.equal(h.sent.length, 4);
    const snap = h.counters.snapshot();
    assert.equal(snap['offer-sent'], 3);
    assert.equal(snap['ack-sent'], 1);
    assert.equal(
      Object.values(snap).reduce((a, b) => a + b, 0),
      6,
      JSON.stringify(snap),
    );
  });
});

describe('handleDatagram on bad input and on our own bugs', () => {
  it('a truncated datagram is counted by its decode error and logged at debug, nothing sent', () => {
    const h = harness();
    h.feed('dhcp', fixture('ipxe-bios-rom-discover').subarray(0, 100));
    h.feed('dhcp', Buffer.alloc(0));
    assert.equal(h.sent.length, 0);
    assert.deepEqual(h.counters.snapshot(), { truncated: 2 });
    const dropped = linesOf(h.log, 'dropped malformed packet');
    assert.equal(dropped.length, 2);
    assert.equal(dropped[0]!.level, 'debug');
    assert.equal(dropped[0]!.reason, 'truncated');
  });

  it('a thrown non-Decode error is counted internal-error, logged once at error, without a stack', () => {
    const boom = new Error('policy exploded');
    const h = harness(() => {
      throw boom;
    });
    assert.doesNotThrow(() => h.feed('dhcp', fixture('ipxe-bios-rom-discover'), { address: '10.77.0.9', port: 68 }));
    assert.equal(h.sent.length, 0);
    assert.deepEqual(h.counters.snapshot(), { 'internal-error': 1 });
    const failed = linesOf(h.log, 'handler failed');
    assert.equal(failed.length, 1);
    const line = failed[0]!;
    assert.equal(line.level, 'error');
    assert.equal(line.port, 'dhcp');
    assert.equal(line.from, '10.77.0.9:68');
    assert.equal(line.error, 'Error: policy exploded');
    const text = JSON.stringify(line);
    assert.ok(boom.stack?.includes('\n    at '), 'the error has a stack to leave out');
    assert.ok(!text.includes(' at ') && !text.includes('\\n'), `no stack in the line: ${text}`);
    assert.equal(linesOf(h.log, 'dropped malformed packet').length, 0, 'not mistaken for a malformed packet');
  });

  it('an EncodeError (our encoder bug) is an internal error too, not a malformed packet', () => {
    const h = harness(() => {
      throw new EncodeError('menu description over 255 bytes');
    });
    h.feed('proxy', fixture('ovmf-edk2-request-4011-binl'), { address: '10.77.0.100', port: 4011 });
    assert.deepEqual(h.counters.snapshot(), { 'internal-error': 1 });
    assert.equal(linesOf(h.log, 'handler failed')[0]!.error, 'EncodeError: menu description over 255 bytes');
  });

  it('a send that throws is an internal error, and no reply is counted as sent', () => {
    const h = harness(undefined, () => {
      throw new TypeError('socket gone');
    });
    h.feed('dhcp', requestBytes({ arch: 0 }));
    assert.deepEqual(h.counters.snapshot(), { 'internal-error': 1 });
  });

  it('the policy is read per packet, so a reload applies to the next one', () => {
    let policy: BootPolicy = POLICY;
    const h = harness(() => policy);
    h.feed('dhcp', fixture('ipxe-bios-rom-discover'));
    policy = { ...POLICY, defaultFile: 'pxelinux.0' };
    h.feed('dhcp', fixture('ipxe-bios-rom-discover'));
    assert.deepEqual(
      h.sent.map((s) => s.reply.bootFile),
      ['undionly.kpxe', 'pxelinux.0'],
    );
  });
});
