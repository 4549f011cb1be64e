import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxBlockSize, negotiate } from '../../../src/tftp/negotiate.js';

const limits = { mtu: 1500, maxWindow: 64, maxWindowBytes: 512 * 1024, fileSize: 70000 };
const opts = (pairs: [string, string][]): Map<string, string> => new Map(pairs);

void describe('negotiate (RFC 2347/2348/2349/7440)', () => {
  void it('answers tsize with the exact size and echoes blksize 1456 (docs/vectors.md#vector-15)', () => {
    const n = negotiate(
      opts([
        ['tsize', '0'],
        ['blksize', '1456'],
      ]),
      limits,
    );
    assert.deepEqual(
      [...n.oack],
      [
        ['tsize', '70000'],
        ['blksize', '1456'],
      ],
    );
    assert.equal(n.blockSize, 1456);
  });

  void it('clamps blksize 9000 to 1468 at MTU 1500 and ignores blksize 4 (docs/vectors.md#vector-16)', () => {
    assert.equal(negotiate(opts([['blksize', '9000']]), limits).oack.get('blksize'), '1468');
    const small = negotiate(opts([['blksize', '4']]), limits);
    assert.equal(small.oack.size, 0);
    assert.equal(small.blockSize, 512);
    assert.equal(maxBlockSize(65536), 65464);
    assert.equal(negotiate(opts([['blksize', '70000']]), { ...limits, mtu: 65536 }).blockSize, 65464);
  });

  void it('grants a window no larger than asked, and bounded in bytes (docs/vectors.md#vector-17)', () => {
    const n = negotiate(
      opts([
        ['blksize', '1468'],
        ['windowsize', '4'],
      ]),
      limits,
    );
    assert.equal(n.windowSize, 4);
    assert.equal(n.oack.get('windowsize'), '4');
    const big = negotiate(
      opts([
        ['blksize', '1468'],
        ['windowsize', '1000'],
      ]),
      limits,
    );
    assert.equal(big.windowSize, 64);
    const bytes = negotiate(
      opts([
        ['blksize', '1468'],
        ['windowsize', '64'],
      ]),
      { ...limits, maxWindowBytes: 16 * 1468 },
    );
    assert.equal(bytes.windowSize, 16);
  });

  void it('takes timeout 1..255, ignores junk, unknown options and tsize of unknown size', () => {
    assert.equal(negotiate(opts([['timeout', '3']]), limits).timeoutMs, 3000);
    for (const [k, v] of [
      ['timeout', '0'],
      ['timeout', '256'],
      ['blksize', '1e3'],
      ['blksize', '-1'],
      ['windowsize', '0'],
      ['multicast', ''],
      ['rollover', '0'],
    ] as [string, string][]) {
      assert.equal(negotiate(opts([[k, v]]), limits).oack.size, 0, `${k}=${v}`);
    }
    assert.equal(negotiate(opts([['tsize', '0']]), { ...limits, fileSize: undefined }).oack.size, 0);
    assert.equal(negotiate(opts([['tsize', '0']]), { ...limits, fileSize: 0 }).oack.size, 0, 'curl refuses tsize 0');
  });

  void it('sends no OACK without options (docs/vectors.md#vector-18)', () => {
    const n = negotiate(new Map(), limits);
    assert.equal(n.oack.size, 0);
    assert.deepEqual([n.blockSize, n.windowSize], [512, 1]);
  });
});
