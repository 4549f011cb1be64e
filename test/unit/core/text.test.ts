import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PRINTABLE, printable } from '../../../src/core/text.js';

describe('printable', () => {
  it('leaves printable ASCII as it is', () => {
    const ascii = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
    assert.equal(printable(ascii), ascii);
    assert.equal(printable('PXEClient:Arch:00007:UNDI:003016'), 'PXEClient:Arch:00007:UNDI:003016');
    assert.equal(printable(''), '');
  });

  it('replaces control characters, DEL and non-ASCII by "?" one for one', () => {
    assert.equal(printable('a\nb\rc\td'), 'a?b?c?d');
    assert.equal(printable('\u001b[31mred\u001b[0m'), '?[31mred?[0m');
    assert.equal(printable('nul\u0000here'), 'nul?here');
    assert.equal(printable('del\u007f'), 'del?');
    assert.equal(printable('caf\u00e9 \u2603'), 'caf? ?');
  });

  it('cannot forge a second log line', () => {
    const forged = printable('pxelinux.0\n2024-01-01 error handler failed');
    assert.equal(forged.includes('\n'), false);
  });

  it('caps at MAX_PRINTABLE characters and marks the cut with an ellipsis', () => {
    assert.equal(MAX_PRINTABLE, 200);
    assert.equal(printable('x'.repeat(200)), 'x'.repeat(200));
    const long = printable('y'.repeat(5000));
    assert.equal(long, `${'y'.repeat(200)}…`);
    assert.equal(long.length, 201);
  });

  it('takes its own cap, counting characters after replacement', () => {
    assert.equal(printable('abcdef', 3), 'abc…');
    assert.equal(printable('\n\n\n\n', 2), '??…');
    assert.equal(printable('abc', 3), 'abc');
  });
});
