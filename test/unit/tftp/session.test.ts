import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { negotiate } from '../../../src/tftp/negotiate.js';
import { TftpSession, type SessionSummary } from '../../../src/tftp/session.js';
import { decodeTftp, type TftpPacket } from '../../../src/wire/tftp-packet.js';
import { memorySource, pattern } from '../../helpers/tftp.js';

/** A session driven by hand: a fake clock, timers fired on demand, sends recorded. */
class Harness {
  now = 0;
  sent: TftpPacket[] = [];
  timers: { at: number; fn: () => void }[] = [];
  summary: SessionSummary | undefined;
  readonly session: TftpSession;

  /** Bytes of each `send` call, to see how packets were batched. */
  sends: number[] = [];

  /** `maxBatch` > 1: sends may carry several packets end to end, cut apart here as the kernel's GSO does. */
  constructor(data: Buffer, options: [string, string][] = [], idleTimeoutMs = 10_000, maxBatch?: number) {
    const negotiated = negotiate(new Map(options), {
      mtu: 1500,
      maxWindow: 64,
      maxWindowBytes: 1 << 20,
      fileSize: data.length,
    });
    const stride = 4 + negotiated.blockSize;
    this.session = new TftpSession(
      { file: memorySource(data), negotiated, idleTimeoutMs },
      {
        ...(maxBatch !== undefined ? { maxBatch } : {}),
        send: (b, off, len) => {
          this.sends.push(len);
          for (let at = off; at < off + len; at += stride)
            this.sent.push(decodeTftp(Buffer.from(b.subarray(at, Math.min(at + stride, off + len)))));
        },
        now: () => this.now,
        setTimer: (fn, ms) => {
          const t = { at: this.now + ms, fn };
          this.timers.push(t);
          return t;
        },
        clearTimer: (h) => (this.timers = this.timers.filter((t) => t !== h)),
      },
      (s) => (this.summary = s),
    );
  }

  /** Let reads (promises) settle. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }

  /** Advance the clock by `ms`, firing due timers. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = Math.max(this.now, due.at);
      due.fn();
      await this.settle();
    }
    this.now = end;
  }

  take(): TftpPacket[] {
    return this.sent.splice(0);
  }

  blocks(): number[] {
    return this.take().map((p) => (p.kind === 'data' ? p.block : -1));
  }
}

void describe('TftpSession', () => {
  void it('sends DATA 1 at once without options, and 512/512/0 for a 1024-byte file (docs/vectors.md#vector-18, #vector-19)', async () => {
    const h = new Harness(pattern(1024));
    h.session.start();
    await h.settle();
    const first = h.take();
    assert.equal(first.length, 1);
    const d1 = first[0]!;
    assert.deepEqual(d1.kind === 'data' && [d1.block, d1.data.length], [1, 512]);
    h.session.ack(1);
    const second = h.take()[0]!;
    assert.deepEqual(second.kind === 'data' && [second.block, second.data.length], [2, 512]);
    h.session.ack(2);
    const third = h.take()[0]!;
    assert.deepEqual(third.kind === 'data' && [third.block, third.data.length], [3, 0]);
    h.session.ack(3);
    assert.equal(h.summary?.outcome, 'done');
    assert.equal(h.summary?.bytes, 1024);
  });

  void it("never answers a duplicate ACK in lockstep (no Sorcerer's Apprentice)", async () => {
    const h = new Harness(pattern(4096));
    h.session.start();
    await h.settle();
    h.take();
    h.session.ack(1);
    assert.deepEqual(h.blocks(), [2]);
    h.session.ack(1);
    h.session.ack(1);
    assert.deepEqual(h.blocks(), []);
    h.session.ack(2);
    assert.deepEqual(h.blocks(), [3]);
  });

  void it('sends a window of 4, resends from block 3 after ACK 2 (docs/vectors.md#vector-17)', async () => {
    const h = new Harness(pattern(1468 * 10), [
      ['blksize', '1468'],
      ['windowsize', '4'],
    ]);
    h.session.start();
    await h.settle();
    const oack = h.take();
    const o = oack[0]!;
    assert.deepEqual(o.kind === 'oack' && Object.fromEntries(o.options), { blksize: '1468', windowsize: '4' });
    h.session.ack(0);
    assert.deepEqual(h.blocks(), [1, 2, 3, 4]);
    h.session.ack(2);
    assert.deepEqual(h.blocks(), [3, 4, 5, 6]);
    h.session.ack(6);
    assert.deepEqual(h.blocks(), [7, 8, 9, 10]);
    // A repeated ACK 6 (client saw a gap) resends once, and not again within the same timeout.
    h.session.ack(6);
    assert.deepEqual(h.blocks(), [7, 8, 9, 10]);
    h.session.ack(6);
    assert.deepEqual(h.blocks(), []);
    h.session.ack(10);
    assert.deepEqual(h.blocks(), [11]);
    h.session.ack(11);
    assert.equal(h.summary?.outcome, 'done');
    assert.equal(h.summary?.retransmits, 1);
  });

  void it('sends a window in runs of at most maxBatch packets laid end to end (UDP GSO)', async () => {
    const data = pattern(1468 * 20 + 100);
    const h = new Harness(
      data,
      [
        ['blksize', '1468'],
        ['windowsize', '16'],
      ],
      10_000,
      6,
    );
    h.session.start();
    await h.settle();
    h.take();
    h.sends.length = 0;
    h.session.ack(0);
    assert.deepEqual(
      h.blocks(),
      Array.from({ length: 16 }, (_, i) => i + 1),
    );
    assert.deepEqual(h.sends, [6 * 1472, 6 * 1472, 4 * 1472]);
    h.sends.length = 0;
    h.session.ack(16);
    const last = h.take();
    assert.deepEqual(
      last.map((p) => (p.kind === 'data' ? p.block : -1)),
      [17, 18, 19, 20, 21],
    );
    // The file's short last block ends the run, the one place GSO allows a short segment.
    assert.deepEqual(h.sends, [4 * 1472 + 4 + 100]);
    const got = Buffer.concat(last.map((p) => (p.kind === 'data' ? p.data : Buffer.alloc(0))));
    assert.ok(got.equals(data.subarray(16 * 1468)));
    h.session.ack(21);
    assert.equal(h.summary?.outcome, 'done');
  });

  void it('a window that waits for the disk resumes with its own rest, not a new window', async () => {
    // 179 blocks of 1468 fill one 256 KiB read chunk; the next chunk is not read until we settle.
    const h = new Harness(pattern(1468 * 400), [
      ['blksize', '1468'],
      ['windowsize', '16'],
    ]);
    h.session.start();
    await h.settle();
    h.take();
    h.session.ack(0);
    for (let end = 16; end <= 176; end += 16) h.session.ack(end);
    h.take();
    assert.deepEqual(h.blocks(), []);
    h.session.ack(176);
    assert.deepEqual(h.blocks(), [177, 178, 179], 'stops at the end of the chunk in memory');
    await h.settle();
    assert.deepEqual(
      h.blocks(),
      Array.from({ length: 13 }, (_, i) => 180 + i),
      'the rest of the window: 180-192',
    );
    h.session.ack(192);
    assert.deepEqual(
      h.blocks(),
      Array.from({ length: 16 }, (_, i) => 193 + i),
    );
    assert.equal(h.summary, undefined);
  });

  void it('an ACK of new blocks drops the timeout backoff (windows under loss)', async () => {
    const h = new Harness(pattern(1468 * 64), [
      ['blksize', '1468'],
      ['windowsize', '4'],
    ]);
    h.session.start();
    await h.settle();
    h.take();
    await h.advance(1);
    h.session.ack(0);
    h.take();
    await h.advance(1);
    h.session.ack(4); // a clean sample: RTO at its 20 ms floor
    assert.deepEqual(h.blocks(), [5, 6, 7, 8]);
    await h.advance(20);
    assert.deepEqual(h.blocks(), [5, 6, 7, 8], 'timeout after 20 ms');
    await h.advance(40);
    assert.deepEqual(h.blocks(), [5, 6, 7, 8], 'backed off to 40 ms');
    // The retransmitted window is acknowledged (no RTT sample, Karn), and the backoff is gone.
    h.session.ack(8);
    assert.deepEqual(h.blocks(), [9, 10, 11, 12]);
    await h.advance(20);
    assert.deepEqual(h.blocks(), [9, 10, 11, 12], 'back to 20 ms, not 80');
  });

  void it('retransmits on timeout with backoff, then gives up after the retry limit', async () => {
    const h = new Harness(pattern(2000));
    h.session.start();
    await h.settle();
    h.take();
    await h.advance(999);
    assert.deepEqual(h.blocks(), []);
    await h.advance(2);
    assert.deepEqual(h.blocks(), [1]);
    await h.advance(1998);
    assert.deepEqual(h.blocks(), []);
    await h.advance(2);
    assert.deepEqual(h.blocks(), [1]);
    await h.advance(60_000);
    assert.equal(h.summary?.outcome, 'timeout');
  });

  void it('adapts the timeout to the measured round trip', async () => {
    const h = new Harness(pattern(512 * 20));
    h.session.start();
    await h.settle();
    for (let b = 1; b <= 10; b++) {
      h.take();
      await h.advance(1);
      h.session.ack(b);
    }
    assert.deepEqual(h.blocks(), [11]);
    await h.advance(25);
    assert.deepEqual(h.blocks(), [11], 'retransmitted within tens of ms, not 1 s');
  });

  void it('ends quietly on the size probe: OACK, then client ERROR 8 (docs/vectors.md#vector-15)', async () => {
    const h = new Harness(pattern(70_000), [
      ['tsize', '0'],
      ['blksize', '1456'],
    ]);
    h.session.start();
    await h.settle();
    const [oack] = h.take();
    assert.deepEqual(oack?.kind === 'oack' && Object.fromEntries(oack.options), { tsize: '70000', blksize: '1456' });
    h.session.onPacket({ kind: 'error', code: 8, message: 'User aborted the transfer' });
    assert.equal(h.summary?.outcome, 'client-error');
    assert.equal(h.summary?.duringNegotiation, true);
    await h.advance(10_000);
    assert.deepEqual(h.take(), [], 'no retransmission after the abort');
  });

  void it('rolls block numbers over from 65535 to 0 (docs/vectors.md#vector-23)', async () => {
    const h = new Harness(pattern(65536 * 512 + 1));
    h.session.start();
    await h.settle();
    let last: TftpPacket | undefined;
    for (let abs = 1; abs <= 65537; abs++) {
      const sent = h.take();
      if (sent.length === 0) {
        await h.settle();
        sent.push(...h.take());
      }
      assert.equal(sent.length, 1, `block ${abs}`);
      last = sent[0]!;
      assert.equal(last.kind === 'data' && last.block, abs & 0xffff, `wire number of block ${abs}`);
      h.session.ack(abs & 0xffff);
    }
    assert.equal(last?.kind === 'data' && last.data.length, 1);
    assert.equal(h.summary?.outcome, 'done');
    assert.equal(h.summary?.bytes, 65536 * 512 + 1);
  });
});
