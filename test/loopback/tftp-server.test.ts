import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Counters } from '../../src/core/counters.js';
import type { TftpCounter } from '../../src/tftp/context.js';
import type { TftpServer } from '../../src/tftp/server.js';
import type { TftpPacket } from '../../src/wire/tftp-packet.js';
import { udpDatagrams, type OpenDatagrams } from '../../src/net/datagram.js';
import { until } from '../helpers/daemon.js';
import {
  lossyTransport,
  memoryLogger,
  pattern,
  ScriptClient,
  seeded,
  startTestTftp,
  tempRoot,
} from '../helpers/tftp.js';

const FILES = { 'undionly.kpxe': pattern(70_000, 7), 'big.bin': pattern(1_000_000, 9), 'pxelinux.0': pattern(1024, 3) };
const root = tempRoot(FILES);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
after(() => root.remove());
const listen = [{ address: '127.0.0.1', port: 0, transferAddress: '127.0.0.1', mtu: 1500 }];

/** Fetch a whole file with a scripted client (lockstep or windowed), acking the last in-order block. */
async function fetch(port: number, name: string, options: [string, string][] = []): Promise<Buffer> {
  const c = await ScriptClient.open();
  try {
    c.send({ kind: 'rrq', filename: name, mode: 'octet', options: new Map(options) }, port);
    const parts: Buffer[] = [];
    let expect = 1;
    let blksize = 512;
    let window = 1;
    let inWindow = 0;
    for (;;) {
      const { packet: p, from } = await c.next(5000);
      if (p.kind === 'oack') {
        blksize = Number(p.options.get('blksize') ?? 512);
        window = Number(p.options.get('windowsize') ?? 1);
        c.send({ kind: 'ack', block: 0 }, from.port);
        continue;
      }
      assert.equal(p.kind, 'data', `unexpected ${JSON.stringify(p)}`);
      if (p.kind !== 'data') break;
      if (p.block !== (expect & 0xffff)) {
        c.send({ kind: 'ack', block: (expect - 1) & 0xffff }, from.port); // RFC 7440: ack the last in order
        inWindow = 0;
        continue;
      }
      parts.push(Buffer.from(p.data));
      expect++;
      const last = p.data.length < blksize;
      if (last || ++inWindow >= window) {
        c.send({ kind: 'ack', block: p.block }, from.port);
        inWindow = 0;
      }
      if (last) return Buffer.concat(parts);
    }
    throw new Error('unreachable');
  } finally {
    await c.close();
  }
}

// The same behaviour whether transfers run on the main thread or in transfer workers.
for (const workers of [0, 2]) {
  void describe(`TFTP server on loopback (${workers} transfer workers)`, () => {
    let server: TftpServer;
    let counters: Counters<TftpCounter>;
    let port: number;
    const { log, lines } = memoryLogger();
    before(async () => {
      ({ server, counters } = await startTestTftp({
        root: root.dir,
        listen,
        maxTransfers: 8,
        idleTimeoutMs: 3000,
        log,
        extra: { workers },
      }));
      assert.equal(server.workers, workers);
      port = server.ports[0]!;
    });
    after(() => server.close());

    void it('size probe, then a fresh RRQ (docs/vectors.md#vector-15)', async () => {
      const probe = await ScriptClient.open();
      probe.send(
        {
          kind: 'rrq',
          filename: 'undionly.kpxe',
          mode: 'octet',
          options: new Map([
            ['tsize', '0'],
            ['blksize', '1456'],
          ]),
        },
        port,
      );
      const oack = await probe.next();
      assert.notEqual(oack.from.port, port, 'answered from a new port (TID)');
      assert.deepEqual(oack.packet.kind === 'oack' && Object.fromEntries(oack.packet.options), {
        tsize: '70000',
        blksize: '1456',
      });
      probe.send({ kind: 'error', code: 8, message: 'User aborted the transfer' }, oack.from.port);
      assert.deepEqual(await probe.drain(1300), [], 'no retransmission after the abort');
      await probe.close();
      const second = await ScriptClient.open();
      second.send(
        { kind: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: new Map([['blksize', '1456']]) },
        port,
      );
      const o2 = await second.next();
      assert.deepEqual(o2.packet.kind === 'oack' && Object.fromEntries(o2.packet.options), { blksize: '1456' });
      second.send({ kind: 'ack', block: 0 }, o2.from.port);
      const d1 = await second.next();
      assert.deepEqual(d1.packet.kind === 'data' && [d1.packet.block, d1.packet.data.length], [1, 1456]);
      second.send({ kind: 'error', code: 0, message: 'done' }, o2.from.port);
      await second.close();
      await log.waitFor((l) => l.message === 'TFTP size probe ended by client' && l.level === 'debug');
    });

    void it('clamps blksize 9000 to 1468 (docs/vectors.md#vector-16) and serves the file intact, windowed and lockstep', async () => {
      assert.equal(
        sha(
          await fetch(port, 'big.bin', [
            ['blksize', '9000'],
            ['windowsize', '8'],
          ]),
        ),
        sha(FILES['big.bin']),
      );
      assert.equal(sha(await fetch(port, 'pxelinux.0')), sha(FILES['pxelinux.0']));
      const done = await log.waitFor((l) => l.message === 'TFTP transfer complete' && l.file === 'big.bin');
      assert.equal(done?.blksize, 1468);
      assert.equal(done?.windowsize, 8);
      assert.equal(done?.bytes, 1_000_000);
      assert.equal(done?.level, 'info');
    });

    void it('a flood of write requests gets every refusal but only a capped number of info lines', async () => {
      const c = await ScriptClient.open();
      const before = lines.filter((l) => l.message === 'TFTP write refused (read-only server)').length;
      const N = 600;
      try {
        // In bursts of 50, so no socket buffer drops any of them.
        for (let burst = 0; burst < N; burst += 50) {
          for (let i = burst; i < burst + 50; i++)
            c.send({ kind: 'wrq', filename: `w${i}`, mode: 'octet', options: new Map() }, port);
          for (let i = 0; i < 50; i++) {
            const { packet } = await c.next();
            assert.deepEqual(packet.kind === 'error' && packet.code, 2);
          }
        }
      } finally {
        await c.close();
      }
      const logged = lines.filter((l) => l.message === 'TFTP write refused (read-only server)').length - before;
      assert.ok(logged > 0 && logged < N / 2, `${logged} info lines for ${N} refusals`);
    });

    void it('missing file and traversal → ERROR 1, WRQ refused (docs/vectors.md#vector-20)', async () => {
      const c = await ScriptClient.open();
      const ask = async (p: TftpPacket): Promise<TftpPacket> => {
        c.send(p, port);
        return (await c.next()).packet;
      };
      const e1 = await ask({
        kind: 'rrq',
        filename: 'pxelinux.cfg/01-52-54-00-12-34-56',
        mode: 'octet',
        options: new Map(),
      });
      assert.deepEqual(e1.kind === 'error' && e1.code, 1);
      const e2 = await ask({ kind: 'rrq', filename: '../../etc/passwd', mode: 'octet', options: new Map() });
      // Outside the root reads as missing (ERROR 1), so nothing outside can be probed.
      assert.deepEqual(e2.kind === 'error' && e2.code, 1);
      const e3 = await ask({ kind: 'wrq', filename: 'x', mode: 'octet', options: new Map() });
      assert.deepEqual(e3.kind === 'error' && e3.code, 2);
      const e4 = await ask({ kind: 'rrq', filename: 'pxelinux.0', mode: 'mail', options: new Map() });
      assert.deepEqual(e4.kind === 'error' && e4.code, 4);
      await c.close();
    });

    void it('the same RRQ twice within 1 ms is one transfer (docs/vectors.md#vector-21)', async () => {
      const c = await ScriptClient.open();
      const rrq: TftpPacket = {
        kind: 'rrq',
        filename: 'pxelinux.0',
        mode: 'octet',
        options: new Map([['blksize', '512']]),
      };
      const started = counters.get('tftp-transfer-started');
      c.send(rrq, port);
      c.send(rrq, port);
      const got = await c.drain(150);
      assert.equal(got.length, 1, 'one OACK');
      assert.equal(counters.get('tftp-transfer-started'), started + 1);
      c.send({ kind: 'error', code: 0, message: 'bye' }, got[0]!.from.port);
      await c.close();
    });

    void it('an ACK from another port gets ERROR 5 and the transfer goes on (docs/vectors.md#vector-22)', async () => {
      const c = await ScriptClient.open();
      const stray = await ScriptClient.open();
      c.send({ kind: 'rrq', filename: 'pxelinux.0', mode: 'octet', options: new Map() }, port);
      const d1 = await c.next();
      stray.send({ kind: 'ack', block: 1 }, d1.from.port);
      const e = await stray.next();
      assert.deepEqual(e.packet.kind === 'error' && e.packet.code, 5);
      c.send({ kind: 'ack', block: 1 }, d1.from.port);
      const d2 = await c.next();
      assert.deepEqual(d2.packet.kind === 'data' && d2.packet.block, 2);
      c.send({ kind: 'error', code: 0, message: 'bye' }, d1.from.port);
      await c.close();
      await stray.close();
    });
  });
}

void describe('TFTP server through a lossy, duplicating, reordering socket', () => {
  for (const [name, options] of [
    ['lockstep', [['blksize', '1468']]],
    [
      'windowsize 16',
      [
        ['blksize', '1468'],
        ['windowsize', '16'],
      ],
    ],
  ] as [string, [string, string][]][]) {
    void it(`${name}: 1 MB arrives intact, with retransmissions`, async () => {
      const counts = { dropped: 0, duplicated: 0, reordered: 0 };
      const { log } = memoryLogger('info');
      const { server } = await startTestTftp({
        root: root.dir,
        listen,
        maxTransfers: 4,
        idleTimeoutMs: 5000,
        log,
        openDatagrams: lossyTransport({ drop: 0.1, duplicate: 0.05, reorder: 0.05, random: seeded(42) }, counts),
      });
      try {
        const data = await fetch(server.ports[0]!, 'big.bin', options);
        assert.equal(sha(data), sha(FILES['big.bin']));
        assert.ok(counts.dropped > 10 && counts.duplicated > 5 && counts.reordered > 5, JSON.stringify(counts));
        const done = await log.waitFor((l) => l.message === 'TFTP transfer complete');
        assert.ok(Number(done.retransmits) > 0, JSON.stringify(done));
      } finally {
        await server.close();
      }
    });
  }

  void it('refuses transfers beyond the concurrency cap with a busy ERROR', async () => {
    const { log } = memoryLogger('info');
    const { server } = await startTestTftp({ root: root.dir, listen, maxTransfers: 1, idleTimeoutMs: 2000, log });
    const a = await ScriptClient.open();
    const b = await ScriptClient.open();
    try {
      a.send({ kind: 'rrq', filename: 'big.bin', mode: 'octet', options: new Map() }, server.ports[0]!);
      const d1 = await a.next();
      // Confirmed by its first ACK, the transfer holds its slot; an unconfirmed one would make room.
      a.send({ kind: 'ack', block: 1 }, d1.from.port);
      await a.next();
      b.send({ kind: 'rrq', filename: 'big.bin', mode: 'octet', options: new Map() }, server.ports[0]!);
      const e = await b.next();
      assert.deepEqual(e.packet.kind === 'error' && e.packet.code, 0);
      assert.equal(server.active, 1);
    } finally {
      await a.close();
      await b.close();
      await server.close();
    }
    assert.equal(server.active, 0);
  });
});

void describe('TFTP server: a bug met while handling a packet', () => {
  void it('is counted and logged once, ends that transfer only, and the next request is served', async () => {
    const real = udpDatagrams(() => undefined);
    let broken = true;
    // A transfer socket whose sends throw once data flows: a stand-in for any bug of ours on the ACK path.
    const faulty: OpenDatagrams = async (o) => {
      const d = await real(o);
      if (o.port !== 0) return d;
      let sends = 0;
      return {
        ...d,
        port: d.port,
        onMessage: (h) => d.onMessage(h),
        close: () => d.close(),
        send: (buf, off, len, to) => {
          if (broken && ++sends > 1) throw new Error('a bug');
          d.send(buf, off, len, to);
        },
      };
    };
    const { log, lines } = memoryLogger('info');
    const { server, counters } = await startTestTftp({
      root: root.dir,
      listen,
      maxTransfers: 4,
      idleTimeoutMs: 2000,
      log,
      openDatagrams: faulty,
    });
    const c = await ScriptClient.open();
    try {
      c.send({ kind: 'rrq', filename: 'big.bin', mode: 'octet', options: new Map() }, server.ports[0]!);
      const d1 = await c.next();
      c.send({ kind: 'ack', block: 1 }, d1.from.port); // DATA 2 throws inside the ACK handler
      await log.waitFor((l) => l.message === 'TFTP handler failed');
      assert.equal(counters.get('tftp-internal-error'), 1);
      assert.ok(!lines.some((l) => /\n\s+at /.test(String(l.error))), 'no stack trace');
      await until(() => server.active === 0, 2000, 'the broken transfer freed its slot');
      broken = false;
      assert.equal(sha(await fetch(server.ports[0]!, 'pxelinux.0')), sha(FILES['pxelinux.0']));
    } finally {
      await c.close();
      await server.close();
    }
  });
});

void describe('TFTP server: a transfer worker that dies', () => {
  void it('ends its transfers, frees their slots, logs one line; a new worker serves the next', async () => {
    const { log, lines } = memoryLogger('info');
    const { server, counters } = await startTestTftp({
      root: root.dir,
      listen,
      maxTransfers: 4,
      idleTimeoutMs: 5000,
      log,
      extra: { workers: 1 },
    });
    const c = await ScriptClient.open();
    try {
      c.send({ kind: 'rrq', filename: 'big.bin', mode: 'octet', options: new Map() }, server.ports[0]!);
      const d1 = await c.next();
      assert.equal(d1.packet.kind, 'data');
      assert.equal(server.active, 1);
      await server.stopWorkerForTest(0);
      await until(() => server.active === 0, 2000, 'the slot is free');
      assert.equal(counters.get('tftp-aborted'), 1, 'the transfer ended as aborted');
      await log.waitFor((l) => l.message.startsWith('TFTP transfer worker stopped'));
      assert.equal(counters.get('tftp-internal-error'), 1);
      await until(() => server.workers === 1, 2000, 'a new worker took its place');
      assert.equal(sha(await fetch(server.ports[0]!, 'pxelinux.0')), sha(FILES['pxelinux.0']));
      assert.equal(lines.filter((l) => l.message.startsWith('TFTP transfer worker stopped')).length, 1);
    } finally {
      await c.close();
      await server.close();
    }
  });
});
