import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileOrigin } from '../../../src/core/events.js';
import { OriginTracker } from '../../../src/daemon/origins.js';
import type { FileSource, OpenFile, OpenResult } from '../../../src/files/root.js';

/** A source that opens every name with the given cache mark, and refuses `missing`. */
function source(mark: () => 'hit' | 'miss'): FileSource & { opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    open(name: string): Promise<OpenResult> {
      opened.push(name);
      if (name === 'missing') return Promise.resolve({ ok: false, reason: 'not-found' });
      const file = { name, size: 1, mtime: new Date(0), cache: mark() } as unknown as OpenFile;
      return Promise.resolve({ ok: true, file });
    },
    check: () => Promise.resolve({ ok: true, size: 1 }),
  };
}

describe('file origins', () => {
  it('an opened file names its origin from its cache mark', () => {
    assert.equal(fileOrigin(undefined), 'local');
    assert.equal(fileOrigin('hit'), 'cache-hit');
    assert.equal(fileOrigin('miss'), 'cache-miss');
  });

  it('a transfer takes the origin its open noted, in order per name; none noted is local', async () => {
    const marks: ('hit' | 'miss')[] = ['miss', 'hit', 'hit'];
    const t = new OriginTracker();
    const src = t.wrap(source(() => marks.shift()!));
    await src.open('vmlinuz');
    await src.open('vmlinuz');
    await src.open('initrd.img');
    assert.equal(t.size, 3);
    assert.equal(t.take('vmlinuz'), 'cache-miss');
    assert.equal(t.take('initrd.img'), 'cache-hit');
    assert.equal(t.take('vmlinuz'), 'cache-hit');
    assert.equal(t.take('vmlinuz'), 'local', 'every note taken: the next is from the local root');
    assert.equal(t.take('pxelinux.0'), 'local');
    assert.equal(t.size, 0);
  });

  it('a refused open notes nothing, and check is passed through', async () => {
    const t = new OriginTracker();
    const inner = source(() => 'miss');
    const src = t.wrap(inner);
    assert.deepEqual(await src.open('missing'), { ok: false, reason: 'not-found' });
    assert.equal(t.size, 0);
    assert.deepEqual(await src.check('x'), { ok: true, size: 1 });
  });

  it('notes nobody took expire, and there are never more than the cap', () => {
    let now = 1000;
    const t = new OriginTracker({ max: 3, ttlMs: 100, now: () => now });
    t.note('a', 'cache-miss');
    now += 150;
    assert.equal(t.take('a'), 'local', 'a note older than its life is not used');
    t.note('a', 'cache-hit');
    t.note('b', 'cache-hit');
    t.note('c', 'cache-hit');
    t.note('d', 'cache-miss');
    assert.equal(t.size, 3);
    assert.equal(t.take('a'), 'local', 'the oldest note went to make room');
    assert.equal(t.take('d'), 'cache-miss');
    now += 150;
    t.note('e', 'cache-miss');
    assert.equal(t.size, 3, 'not yet: the expired are cleared only when the cap is reached');
    t.note('f', 'cache-hit');
    t.note('g', 'cache-hit');
    assert.equal(t.size, 3);
    assert.equal(t.take('b'), 'local');
    assert.equal(t.take('e'), 'cache-miss');
  });
});
