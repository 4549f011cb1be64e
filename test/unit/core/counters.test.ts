import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counters, RateLimiter, type CounterSink } from '../../../src/core/counters.js';

/** A clock the test moves by hand, in milliseconds. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('Counters', () => {
  type Name = 'offer-sent' | 'ack-sent' | 'truncated';

  it('counts by one or by n, and reads 0 for a name never counted', () => {
    const c = new Counters<Name>();
    assert.equal(c.get('offer-sent'), 0);
    c.count('offer-sent');
    c.count('offer-sent');
    c.count('truncated', 5);
    assert.equal(c.get('offer-sent'), 2);
    assert.equal(c.get('truncated'), 5);
    assert.equal(c.get('ack-sent'), 0);
  });

  it('snapshot lists only counted names, sorted, as a plain object', () => {
    const c = new Counters<Name>();
    c.count('truncated');
    c.count('ack-sent', 3);
    c.count('offer-sent');
    const snap = c.snapshot();
    assert.deepEqual(Object.keys(snap), ['ack-sent', 'offer-sent', 'truncated']);
    assert.deepEqual(snap, { 'ack-sent': 3, 'offer-sent': 1, truncated: 1 });
    // A copy: counting later does not change a snapshot taken before.
    c.count('ack-sent');
    assert.equal(snap['ack-sent'], 3);
  });

  it('one Counters serves as the sink of a narrower set of names', () => {
    const all = new Counters<Name>();
    const offers: CounterSink<'offer-sent'> = all;
    offers.count('offer-sent', 2);
    assert.equal(all.get('offer-sent'), 2);
  });
});

describe('RateLimiter (token bucket, injected clock)', () => {
  it('lets a full burst through at once, then refuses and counts what it refused', () => {
    const clock = manualClock();
    const r = new RateLimiter(10, 3, clock.now);
    assert.deepEqual([r.take(), r.take(), r.take(), r.take(), r.take()], [true, true, true, false, false]);
    assert.equal(r.suppressed, 2);
  });

  it('refills at perSecond: one token per 1/perSecond seconds', () => {
    const clock = manualClock();
    const r = new RateLimiter(10, 3, clock.now);
    for (let i = 0; i < 3; i++) r.take();
    clock.advance(99);
    assert.equal(r.take(), false, 'not yet a whole token after 99 ms');
    clock.advance(1);
    // 100 ms in all, but the refused take above consumed nothing and kept the 0.99.
    assert.equal(r.take(), true);
    assert.equal(r.take(), false);
  });

  it('never holds more than the burst, however long it was idle', () => {
    const clock = manualClock();
    const r = new RateLimiter(10, 3, clock.now);
    clock.advance(3_600_000);
    let passed = 0;
    for (let i = 0; i < 10; i++) if (r.take()) passed++;
    assert.equal(passed, 3);
    assert.equal(r.suppressed, 7);
  });

  it('over a long run lets through perSecond per second on average', () => {
    const clock = manualClock();
    const r = new RateLimiter(50, 200, clock.now);
    let passed = 0;
    // 1000 attempts a second for 10 s.
    for (let i = 0; i < 10_000; i++) {
      if (r.take()) passed++;
      clock.advance(1);
    }
    assert.ok(passed >= 200 + 50 * 10 - 1 && passed <= 200 + 50 * 10 + 1, `passed ${passed}`);
    assert.equal(r.suppressed, 10_000 - passed);
  });

  it('reads the clock it was given (a clock going backwards adds no tokens)', () => {
    let t = 5000;
    const r = new RateLimiter(1, 1, () => t);
    assert.equal(r.take(), true);
    t = 1000;
    assert.equal(r.take(), false);
    t = 1000 + 999;
    assert.equal(r.take(), false);
    t = 1000 + 1000;
    assert.equal(r.take(), true);
  });
});
