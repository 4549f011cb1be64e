import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetasciiSource, netasciiGrowth, toNetascii } from '../../../src/tftp/netascii.js';
import { memorySource, pattern } from '../../helpers/tftp.js';

void describe('netascii (RFC 764 as RFC 1350 uses it)', () => {
  void it('maps LF to CR LF and CR to CR NUL', () => {
    assert.deepEqual(toNetascii(Buffer.from('a\nb\rc')), Buffer.from('a\r\nb\r\0c', 'latin1'));
    assert.equal(netasciiGrowth(Buffer.from('\n\r\n')), 3);
  });

  void it('a converted view reads in order, slice by slice, the same bytes as the whole conversion', async () => {
    const raw = pattern(300_000, 5); // many CR and LF bytes, across several 64 KiB slices
    const want = toNetascii(raw);
    const view = await NetasciiSource.open(memorySource(raw));
    assert.equal(view.size, want.length);
    const got: Buffer[] = [];
    for (let pos = 0; pos < view.size;) {
      const parts = [Buffer.alloc(1000), Buffer.alloc(4321)];
      const n = await view.readv(parts, pos);
      got.push(Buffer.concat(parts).subarray(0, n));
      pos += n;
      if (n === 0) break;
    }
    assert.deepEqual(Buffer.concat(got), want);
  });

  void it('refuses a read out of order instead of serving wrong bytes', async () => {
    const view = await NetasciiSource.open(memorySource(Buffer.from('a\nb')));
    await assert.rejects(view.readv([Buffer.alloc(2)], 1));
  });
});
