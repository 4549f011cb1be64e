import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ipFromBytes, ipToBytes, isIPv4, writeIp } from '../../../src/wire/ip.js';
import { EncodeError } from '../../../src/wire/reader.js';

/** The definition the scanner must match: four parts of 1-3 ASCII digits, each at most 255. */
function reference(text: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  return m !== null && m.slice(1).every((p) => Number(p) <= 255);
}

const CASES = [
  '0.0.0.0',
  '10.77.0.2',
  '255.255.255.255',
  '01.002.3.4',
  '256.1.1.1',
  '1.2.3.256',
  '1.2.3.999',
  '1.2.3',
  '1.2.3.4.5',
  '1..2.3',
  '.1.2.3',
  '1.2.3.',
  '',
  ' 1.2.3.4',
  '1.2.3.4 ',
  '1234.1.1.1',
  '1.2.3.0004',
  '-1.2.3.4',
  '1.2.3.4\n',
  '１.2.3.4',
  'a.b.c.d',
  '1.2.3.4/24',
];

describe('dotted quads', () => {
  it('isIPv4 agrees with the regular-expression definition', () => {
    for (const text of CASES) assert.equal(isIPv4(text), reference(text), JSON.stringify(text));
  });

  it('agrees on random strings of digits and dots', () => {
    const alphabet = '0123456789..';
    for (let n = 0; n < 20_000; n++) {
      let text = '';
      const len = 1 + Math.floor(Math.random() * 16);
      for (let i = 0; i < len; i++) text += alphabet[Math.floor(Math.random() * alphabet.length)];
      assert.equal(isIPv4(text), reference(text), JSON.stringify(text));
    }
  });

  it('ipToBytes and writeIp give the bytes, ipFromBytes reads them back', () => {
    assert.deepEqual([...ipToBytes('192.168.1.10')], [192, 168, 1, 10]);
    const out = Buffer.alloc(8);
    writeIp(out, 2, '10.77.0.255');
    assert.deepEqual([...out], [0, 0, 10, 77, 0, 255, 0, 0]);
    assert.equal(ipFromBytes(out, 2), '10.77.0.255');
  });

  it('throws EncodeError (our caller bug, not a malformed packet) for anything else', () => {
    for (const text of CASES.filter((t) => !reference(t))) {
      assert.throws(
        () => ipToBytes(text),
        (e: unknown) => e instanceof EncodeError,
        JSON.stringify(text),
      );
    }
  });
});
