import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { decodeDhcp } from '../../src/wire/dhcp-packet.js';
import { loopbackConfig, startTestDaemon, TestClient, until, type TestDaemon } from '../helpers/daemon.js';
import { fixture, requestBytes } from '../helpers/packets.js';

describe('the responder on loopback, ephemeral ports', () => {
  let client: TestClient;
  let t: TestDaemon;
  let dhcpPort: number;
  let proxyPort: number;

  before(async () => {
    client = await TestClient.open();
    t = await startTestDaemon(loopbackConfig(client.port));
    dhcpPort = t.daemon.ports.dhcp[0]!;
    proxyPort = t.daemon.ports.proxy[0]!;
  });
  after(async () => {
    client.close();
    await t.daemon.close();
  });

  it('answers a captured iPXE BIOS DISCOVER with a proxy offer', async () => {
    const start = client.received.length;
    await client.send(fixture('ipxe-bios-rom-discover'), dhcpPort);
    await client.waitFor(start + 1);
    const { msg, from } = client.received[start]!;
    assert.equal(from.port, dhcpPort);
    const offer = decodeDhcp(msg);
    assert.equal(offer.op, 2);
    assert.equal(offer.transactionId, decodeDhcp(fixture('ipxe-bios-rom-discover')).transactionId);
    assert.deepEqual([...offer.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.OFFER]);
    assert.equal(offer.nextServer, '127.0.0.1');
    assert.equal(offer.bootFile, 'pxelinux.0');
    const line = t.lines.find((l) => l.message === 'proxy offer');
    assert.ok(line, 'one info line per answered client');
    assert.equal(line.mac, '52:54:00:77:00:01');
    assert.equal(line.arch, 'bios');
    assert.equal(line['user-class'], 'iPXE');
    assert.equal(line.rule, 'default');
  });

  it('answers a 4011 REQUEST from port 4011 back to the sender port', async () => {
    const start = client.received.length;
    const req = requestBytes({ type: MessageType.REQUEST, ciaddr: '127.0.0.1', arch: 7, xid: 0x55aa0001 });
    await client.send(req, proxyPort);
    await client.waitFor(start + 1);
    const { msg, from } = client.received[start]!;
    assert.equal(from.port, proxyPort, 'the ACK comes from the 4011 socket');
    const ack = decodeDhcp(msg);
    assert.deepEqual([...ack.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.ACK]);
    assert.equal(ack.transactionId, 0x55aa0001);
    assert.equal(ack.clientIp, '127.0.0.1');
  });

  it('drops garbage, non-PXE and REQUESTs on 67, counting each, and keeps serving', async () => {
    const before = client.received.length;
    const stats = t.daemon.stats;
    await client.send(Buffer.alloc(10), dhcpPort);
    await client.send(Buffer.from('not a dhcp packet at all'.repeat(20)), dhcpPort);
    await client.send(requestBytes({ vendor: 'MSFT 5.0' }), dhcpPort);
    await client.send(fixture('ovmf-edk2-request-67'), dhcpPort);
    await client.send(fixture('syslinux-efi-discover-no-vendor-class'), dhcpPort);
    await until(() => stats.get('truncated') >= 1 && stats.get('bad-op') >= 1, 2000, 'malformed counted');
    await until(
      () => stats.get('not-pxe-client') >= 2 && stats.get('wrong-message-type') >= 1,
      2000,
      'ignores counted',
    );
    await client.send(fixture('ovmf-edk2-discover'), dhcpPort);
    await client.waitFor(before + 1);
    assert.equal(client.received.length, before + 1, 'only the valid DISCOVER was answered');
    const dropped = t.lines.filter((l) => l.message === 'dropped malformed packet');
    assert.ok(dropped.length >= 2 && dropped.every((l) => l.level === 'debug'));
    assert.equal(stats.get('internal-error'), 0);
  });

  it('one answer per request, also for retransmitted DISCOVERs', async () => {
    const start = client.received.length;
    const sent = t.daemon.stats.get('offer-sent');
    const d = requestBytes({ xid: 7 });
    for (let i = 0; i < 5; i++) await client.send(d, dhcpPort);
    await client.waitFor(start + 5);
    await until(() => t.daemon.stats.get('offer-sent') === sent + 5, 1000, 'offers counted');
    assert.equal(client.received.length, start + 5);
  });
});

describe('start-up errors are UserErrors', () => {
  it('a port in use', async () => {
    const c = await TestClient.open();
    const a = await startTestDaemon(loopbackConfig(c.port));
    const taken = a.daemon.ports.dhcp[0]!;
    await assert.rejects(
      startTestDaemon(loopbackConfig(c.port, { ports: { dhcp: taken, proxy: 0, client: c.port } })),
      (e: Error) => e.name === 'UserError' && /already in use/.test(e.message),
    );
    await a.daemon.close();
    c.close();
  });

  it('a listen address that is not ours, an interface that does not exist', async () => {
    await assert.rejects(
      startTestDaemon(loopbackConfig(9, { listenAddress: '192.0.2.77' })),
      /not an address of this host/,
    );
    await assert.rejects(
      startTestDaemon(loopbackConfig(9, { interfaces: ['nosuch0'] })),
      /interface nosuch0 does not exist/,
    );
  });
});
