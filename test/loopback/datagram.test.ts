import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { isRoutineTrouble, udpDatagrams, type Datagrams } from '../../src/net/datagram.js';
import { until } from '../helpers/daemon.js';

/** A client socket on loopback that keeps what it receives. */
async function client(): Promise<{ socket: Socket; got: Buffer[] }> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, got };
}

void describe('transfer transport: connected socket, sibling for foreign TIDs, UDP GSO', () => {
  let c: { socket: Socket; got: Buffer[] };
  let other: { socket: Socket; got: Buffer[] };
  let t: Datagrams;
  const errors: string[] = [];
  const heard: string[] = [];
  before(async () => {
    c = await client();
    other = await client();
    t = await udpDatagrams((_kind, detail) => errors.push(detail))({
      address: '127.0.0.1',
      port: 0,
      purpose: 'TFTP transfer',
      peer: { address: '127.0.0.1', port: c.socket.address().port },
    });
    t.onMessage((msg, from) => heard.push(`${from.port}:${msg.toString()}`));
  });
  after(async () => {
    await t.close();
    c.socket.close();
    other.socket.close();
  });

  void it('sends to the client, hears it, and hears another sender through the sibling', async () => {
    t.send(Buffer.from('to client'), 0, 9, { address: '127.0.0.1', port: c.socket.address().port });
    await until(() => c.got.length === 1, 2000, 'datagram at the client');
    assert.equal(c.got[0]!.toString(), 'to client');
    c.socket.send('from client', t.port, '127.0.0.1');
    other.socket.send('from elsewhere', t.port, '127.0.0.1');
    await until(() => heard.length === 2, 2000, 'both datagrams heard');
    assert.deepEqual(
      heard.sort(),
      [`${c.socket.address().port}:from client`, `${other.socket.address().port}:from elsewhere`].sort(),
    );
    // Replies to a foreign TID (ERROR 5) leave from the same port.
    t.send(Buffer.from('error 5'), 0, 7, { address: '127.0.0.1', port: other.socket.address().port });
    await until(() => other.got.length === 1, 2000, 'reply to the other sender');
  });

  void it('one send carries several datagrams once segmentation is on', async () => {
    c.got.length = 0;
    const batch = t.segment!(100, () => assert.fail('no fallback expected'));
    assert.ok(batch > 1, `batch ${batch}`);
    const buf = Buffer.alloc(350);
    for (let i = 0; i < 4; i++) buf.fill(0x61 + i, i * 100, Math.min(350, (i + 1) * 100));
    t.send(buf, 0, 350, { address: '127.0.0.1', port: c.socket.address().port });
    await until(() => c.got.length === 4, 2000, 'four datagrams');
    assert.deepEqual(
      c.got.map((b) => b.length),
      [100, 100, 100, 50],
    );
    assert.deepEqual(
      c.got.map((b) => String.fromCharCode(b[0]!)),
      ['a', 'b', 'c', 'd'],
    );
  });
});

void describe('transfer transport: a segmented send the kernel refuses falls back to single datagrams', () => {
  void it('resends the refused buffer one datagram at a time and reports the fallback', async () => {
    const c = await client();
    const errors: string[] = [];
    const t = await udpDatagrams((_kind, detail) => errors.push(detail))({
      address: '127.0.0.1',
      port: 0,
      purpose: 'TFTP transfer',
      peer: { address: '127.0.0.1', port: c.socket.address().port },
    });
    try {
      let fellBack = false;
      t.segment!(10, () => (fellBack = true));
      // 200 segments of 10 bytes: more than UDP_MAX_SEGMENTS (64, or 128 on newer kernels), so the
      // kernel refuses the send (EINVAL).
      const buf = Buffer.alloc(2000, 0x7a);
      t.send(buf, 0, 2000, { address: '127.0.0.1', port: c.socket.address().port });
      await until(() => c.got.length === 200, 3000, '200 single datagrams');
      assert.ok(fellBack, 'the caller was told to send one datagram per call');
      assert.ok(c.got.every((b) => b.length === 10));
      assert.equal(errors.length, 1);
      // Segmentation is off now: a later send is one datagram again.
      t.send(buf, 0, 30, { address: '127.0.0.1', port: c.socket.address().port });
      await until(() => c.got.length === 201, 2000, 'one more datagram');
      assert.equal(c.got[200]!.length, 30);
    } finally {
      await t.close();
      c.socket.close();
    }
  });
});

void describe('transfer transport: a client that closed its port', () => {
  void it('ICMP port unreachable (ECONNREFUSED) is reported as peer-gone, a routine trouble', async () => {
    const gone = createSocket('udp4');
    await new Promise<void>((r) => gone.bind(0, '127.0.0.1', r));
    const port = gone.address().port;
    await new Promise<void>((r) => gone.close(() => r()));
    const troubles: string[] = [];
    const d = await udpDatagrams((kind) => troubles.push(kind))({
      address: '127.0.0.1',
      port: 0,
      purpose: 'test',
      peer: { address: '127.0.0.1', port },
    });
    try {
      const b = Buffer.from('data');
      for (let i = 0; i < 3 && !troubles.includes('peer-gone'); i++) {
        d.send(b, 0, b.length, { address: '127.0.0.1', port });
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(troubles.includes('peer-gone'), `troubles: ${troubles.join(', ')}`);
      assert.ok(!troubles.includes('socket-error'));
      assert.equal(isRoutineTrouble('peer-gone'), true);
      assert.equal(isRoutineTrouble('socket-error'), false);
    } finally {
      await d.close();
    }
  });
});
