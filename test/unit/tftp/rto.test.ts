import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MAX_RTO_MS, MIN_RTO_MS, RetransmitTimer } from '../../../src/tftp/rto.js';

/** Time block `block` from `at` and take its ACK `rtt` ms later. */
function sample(t: RetransmitTimer, at: number, block: number, rtt: number): void {
  t.sent(at, block);
  t.acked(at + rtt, block);
}

describe('RetransmitTimer: RFC 6298 estimation', () => {
  it('starts at 1 s, capped at 2 s, before any round trip is measured (§2.1)', () => {
    const t = new RetransmitTimer();
    assert.equal(t.currentMs, 1000);
    assert.equal(t.maxMs, DEFAULT_MAX_RTO_MS);
    assert.equal(t.minMs, MIN_RTO_MS);
    assert.equal(t.lastSendAt, -Infinity);
  });

  it('first sample R: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR (§2.2)', () => {
    const t = new RetransmitTimer();
    sample(t, 0, 1, 100);
    assert.equal(t.currentMs, 300);
  });

  it('later samples: RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, SRTT = 7/8·SRTT + 1/8·R (§2.3)', () => {
    const t = new RetransmitTimer();
    sample(t, 0, 1, 100); // SRTT 100, RTTVAR 50
    sample(t, 1000, 2, 100); // RTTVAR 37.5, SRTT 100 → 250
    assert.equal(t.currentMs, 250);
    sample(t, 2000, 3, 180); // RTTVAR 0.75·37.5 + 0.25·80 = 48.125, SRTT 110 → 302.5
    assert.equal(t.currentMs, 302.5);
  });

  it('is floored at MIN_RTO_MS on a fast LAN', () => {
    const t = new RetransmitTimer();
    sample(t, 0, 1, 1);
    assert.equal(t.currentMs, MIN_RTO_MS);
    sample(t, 10, 2, 0);
    assert.equal(t.currentMs, MIN_RTO_MS);
  });

  it('is capped at the maximum on a slow path', () => {
    const t = new RetransmitTimer();
    sample(t, 0, 1, 900); // 900 + 4·450 = 2700
    assert.equal(t.currentMs, DEFAULT_MAX_RTO_MS);
  });

  it('times one block at a time: later sends do not restart the sample', () => {
    const t = new RetransmitTimer();
    t.sent(0, 1);
    t.sent(10, 2);
    t.sent(20, 3);
    t.acked(100, 3); // covers block 1, sent at 0: R = 100
    assert.equal(t.currentMs, 300);
    assert.equal(t.lastSendAt, 20);
  });

  it('an ACK short of the timed block takes no sample; the one that covers it does', () => {
    const t = new RetransmitTimer();
    t.sent(0, 5);
    t.acked(40, 4);
    assert.equal(t.currentMs, 1000);
    t.acked(80, 5);
    assert.equal(t.currentMs, 80 + 4 * 40);
    // The sample was taken: a repeated ACK changes nothing.
    t.acked(5000, 5);
    assert.equal(t.currentMs, 240);
  });
});

describe("RetransmitTimer: Karn's rule", () => {
  it('a retransmission cancels the running sample, so its ACK measures nothing', () => {
    const t = new RetransmitTimer();
    t.sent(0, 1);
    t.backoff();
    t.sent(1000, -1);
    t.acked(1010, 1);
    assert.equal(t.currentMs, 2000, 'still backed off: no sample from an ambiguous ACK');
    assert.equal(t.lastSendAt, 1000);
  });

  it('the next fresh send is timed again', () => {
    const t = new RetransmitTimer();
    t.sent(0, 1);
    t.sent(1000, -1);
    t.acked(1010, 1);
    sample(t, 2000, 2, 50);
    assert.equal(t.currentMs, 150);
  });
});

describe('RetransmitTimer: backoff (§5.5)', () => {
  it('doubles on each timeout up to the maximum', () => {
    const t = new RetransmitTimer();
    t.backoff();
    assert.equal(t.currentMs, 2000);
    t.backoff();
    assert.equal(t.currentMs, 2000);
    const u = new RetransmitTimer();
    sample(u, 0, 1, 100);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      u.backoff();
      seen.push(u.currentMs);
    }
    assert.deepEqual(seen, [600, 1200, 2000, 2000, 2000]);
  });

  it('progress drops the backoff to the estimate, without a sample', () => {
    const t = new RetransmitTimer();
    sample(t, 0, 1, 100);
    t.backoff();
    t.backoff();
    assert.equal(t.currentMs, 1200);
    t.progressed();
    assert.equal(t.currentMs, 300);
  });

  it('progress before any sample drops back to the initial 1 s', () => {
    const t = new RetransmitTimer();
    t.backoff();
    t.progressed();
    assert.equal(t.currentMs, 1000);
  });

  it('a fresh sample replaces the backed-off value', () => {
    const t = new RetransmitTimer();
    sample(t, 0, 1, 100);
    t.backoff();
    sample(t, 1000, 2, 100);
    assert.equal(t.currentMs, 250);
  });
});

describe('RetransmitTimer: the client timeout option caps it (RFC 2349)', () => {
  it('a short client timeout caps the initial value, samples and backoff', () => {
    const t = new RetransmitTimer(500);
    assert.equal(t.maxMs, 500);
    assert.equal(t.currentMs, 500);
    sample(t, 0, 1, 400); // 400 + 800 = 1200 → 500
    assert.equal(t.currentMs, 500);
    t.backoff();
    assert.equal(t.currentMs, 500);
  });

  it('a long client timeout lets backoff go past 2 s, to the client value', () => {
    const t = new RetransmitTimer(5000);
    assert.equal(t.currentMs, 1000);
    const seen: number[] = [];
    for (let i = 0; i < 4; i++) {
      t.backoff();
      seen.push(t.currentMs);
    }
    assert.deepEqual(seen, [2000, 4000, 5000, 5000]);
  });

  it('a client timeout below the floor is raised to the floor', () => {
    const t = new RetransmitTimer(5);
    assert.equal(t.maxMs, MIN_RTO_MS);
    assert.equal(t.currentMs, MIN_RTO_MS);
  });
});
