import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRange, type RangeResult } from '../../../src/http/range.js';

const single = (start: number, end: number): RangeResult => ({ kind: 'single', start, end });

describe('parseRange (RFC 9110 §14.1.2)', () => {
  const table: [string | undefined, number, RangeResult][] = [
    [undefined, 1000, { kind: 'none' }],
    ['bytes=0-99', 1000, single(0, 99)],
    ['bytes=100-', 1000, single(100, 999)],
    ['bytes=-100', 1000, single(900, 999)],
    ['bytes=-5000', 1000, single(0, 999)],
    ['bytes=990-2000', 1000, single(990, 999)],
    ['bytes=999-999', 1000, single(999, 999)],
    ['BYTES = 0-0', 1000, single(0, 0)],
    ['bytes=0-0,', 1000, single(0, 0)],
    ['bytes=1000-', 1000, { kind: 'unsatisfiable' }],
    ['bytes=5000-6000', 1000, { kind: 'unsatisfiable' }],
    ['bytes=-0', 1000, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=-1', 0, { kind: 'unsatisfiable' }],
    ['bytes=0-1,5-6', 1000, { kind: 'multiple' }],
    ['bytes=0-1,5000-', 1000, { kind: 'multiple' }],
    ['bytes=2000-,5000-', 1000, { kind: 'unsatisfiable' }],
    // Malformed or another unit: ignored, the whole file.
    ['bytes=5-1', 1000, { kind: 'none' }],
    ['bytes=-', 1000, { kind: 'none' }],
    ['bytes=a-b', 1000, { kind: 'none' }],
    ['bytes=0-1,x', 1000, { kind: 'none' }],
    ['bytes=', 1000, { kind: 'none' }],
    ['items=0-1', 1000, { kind: 'none' }],
    ['bytes=1.5-2', 1000, { kind: 'none' }],
    ['bytes=0-99999999999999999999', 1000, { kind: 'none' }],
    [`bytes=${Array.from({ length: 20 }, (_, i) => `${i}-${i}`).join(',')}`, 1000, { kind: 'none' }],
    [`bytes=0-1${' '.repeat(2000)}`, 1000, { kind: 'none' }],
  ];
  for (const [header, size, want] of table) {
    it(`${JSON.stringify(header)?.slice(0, 40)} of ${size} bytes → ${want.kind}`, () =>
      assert.deepEqual(parseRange(header, size), want));
  }
});
