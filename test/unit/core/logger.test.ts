import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../../../src/core/counters.js';
import { PEER_LINES_BURST, PEER_LINES_PER_SECOND, PeerLog, silentLogger } from '../../../src/core/logger.js';
import { MemoryLogger } from '../../helpers/log.js';

/** A PeerLog over a MemoryLogger, with a bucket on a clock the test moves. */
function capped(perSecond: number, burst: number, level: 'debug' | 'info' | 'warn' = 'debug') {
  let t = 0;
  const log = new MemoryLogger(level);
  const peer = new PeerLog(log, new RateLimiter(perSecond, burst, () => t));
  return { log, peer, advance: (ms: number) => void (t += ms) };
}

describe('PeerLog', () => {
  it('writes a line with its fields through the base logger', () => {
    const { log, peer } = capped(10, 5);
    assert.equal(peer.line('info', 'proxy offer', { mac: '52:54:00:12:34:56' }), true);
    assert.deepEqual(log.lines, [{ level: 'info', message: 'proxy offer', mac: '52:54:00:12:34:56' }]);
    assert.equal(peer.base, log);
  });

  it('caps a burst: lines past it are left out and counted', () => {
    const { log, peer } = capped(10, 3);
    const results = Array.from({ length: 7 }, (_, i) => peer.line('warn', `line ${i}`));
    assert.deepEqual(results, [true, true, true, false, false, false, false]);
    assert.deepEqual(
      log.lines.map((l) => l.message),
      ['line 0', 'line 1', 'line 2'],
    );
    assert.equal(peer.suppressed, 4);
  });

  it('the first line after a cut carries lines-suppressed=N, the next ones do not', () => {
    const { log, peer, advance } = capped(10, 2);
    for (let i = 0; i < 5; i++) peer.line('info', 'ignored', { n: i });
    advance(250); // 2.5 tokens, capped at the burst of 2
    assert.equal(peer.line('info', 'after'), true);
    assert.equal(peer.line('info', 'again'), true);
    assert.equal(peer.line('info', 'cut'), false);
    assert.deepEqual(log.lines.slice(2), [
      { level: 'info', message: 'after', 'lines-suppressed': 3 },
      { level: 'info', message: 'again' },
    ]);
    assert.equal(peer.suppressed, 1);
  });

  it('refills at its rate: a steady trickle under the rate is never cut', () => {
    const { log, peer, advance } = capped(50, 1);
    for (let i = 0; i < 100; i++) {
      assert.equal(peer.line('info', 'req'), true, `line ${i}`);
      advance(20);
    }
    assert.equal(log.lines.length, 100);
    assert.equal(peer.suppressed, 0);
  });

  it('debug lines are never capped, take no token and carry no count', () => {
    const { log, peer } = capped(10, 1);
    assert.equal(peer.line('info', 'first'), true);
    assert.equal(peer.line('info', 'cut'), false);
    for (let i = 0; i < 50; i++) assert.equal(peer.line('debug', 'dropped malformed packet'), true);
    assert.equal(log.lines.length, 51);
    assert.ok(log.lines.every((l) => !('lines-suppressed' in l)));
    assert.equal(peer.suppressed, 1, 'debug lines do not add to the count');
  });

  it('a level the logger does not write takes no token and is not counted as suppressed', () => {
    const { log, peer } = capped(10, 1, 'warn');
    for (let i = 0; i < 10; i++) assert.equal(peer.line('info', 'quiet'), false);
    assert.equal(peer.line('debug', 'quiet'), false);
    assert.equal(peer.suppressed, 0);
    assert.equal(peer.line('warn', 'loud'), true);
    assert.deepEqual(log.lines, [{ level: 'warn', message: 'loud' }]);
  });

  it('reserve gives the fields to add, or null when the line is left out', () => {
    const { peer, advance } = capped(1, 1, 'info');
    assert.deepEqual(peer.reserve('info'), {});
    assert.equal(peer.reserve('info'), null);
    assert.equal(peer.reserve('info'), null);
    assert.equal(peer.reserve('debug'), null, 'debug is off on this logger');
    advance(1000);
    assert.deepEqual(peer.reserve('error'), { 'lines-suppressed': 2 });
    assert.equal(peer.suppressed, 0);
  });

  it('clearSuppressed forgets the count (the periodic summary reported it)', () => {
    const { log, peer, advance } = capped(1, 1);
    peer.line('info', 'a');
    peer.line('info', 'b');
    peer.line('info', 'c');
    assert.equal(peer.suppressed, 2);
    peer.clearSuppressed();
    assert.equal(peer.suppressed, 0);
    advance(1000);
    peer.line('info', 'd');
    assert.deepEqual(log.lines.at(-1), { level: 'info', message: 'd' });
  });

  it('the default cap is PEER_LINES_BURST at once, then PEER_LINES_PER_SECOND', () => {
    const { log, peer, advance } = capped(PEER_LINES_PER_SECOND, PEER_LINES_BURST);
    for (let i = 0; i < PEER_LINES_BURST * 2; i++) peer.line('info', 'flood');
    assert.equal(log.lines.length, PEER_LINES_BURST);
    advance(1000);
    for (let i = 0; i < PEER_LINES_BURST * 2; i++) peer.line('info', 'flood');
    assert.equal(log.lines.length, PEER_LINES_BURST + PEER_LINES_PER_SECOND);
  });

  it('over the silent logger, nothing is written or counted', () => {
    const peer = new PeerLog(silentLogger);
    assert.equal(peer.line('error', 'x'), false);
    assert.equal(peer.reserve('info'), null);
    assert.equal(peer.suppressed, 0);
  });
});
