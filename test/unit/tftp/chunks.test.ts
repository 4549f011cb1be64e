import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readAheadChunk } from '../../../src/tftp/chunks.js';

const KiB = 1024;
const BUDGET = 64 * KiB * KiB;

void describe('readAheadChunk: the read-ahead budget shared by transfers', () => {
  void it('a few transfers read 256 KiB at a time', () => {
    assert.equal(readAheadChunk(BUDGET, 0), 256 * KiB);
    assert.equal(readAheadChunk(BUDGET, 64), 256 * KiB);
  });

  void it('many transfers get smaller reads, so together they hold about the budget', () => {
    assert.equal(readAheadChunk(BUDGET, 128), 128 * KiB);
    assert.equal(readAheadChunk(BUDGET, 512), 32 * KiB);
    assert.ok(4 * 512 * readAheadChunk(BUDGET, 512) <= BUDGET);
  });

  void it('never below 16 KiB', () => {
    assert.equal(readAheadChunk(BUDGET, 1024), 16 * KiB);
    assert.equal(readAheadChunk(BUDGET, 100_000), 16 * KiB);
  });
});
