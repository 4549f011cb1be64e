import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodeError } from '../../../src/wire/reader.js';
import {
  decodeTftp,
  encodeTftp,
  isTftpError,
  peekAck,
  MAX_ERROR_TEXT,
  TftpErrorCode,
  tftpErrorName,
  writeDataHeader,
  type TftpPacket,
} from '../../../src/wire/tftp-packet.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** Byte-exact vectors, one or more per packet type (RFC 1350 §5, RFC 2347). */
const VECTORS: { name: string; bytes: Buffer; packet: TftpPacket }[] = [
  {
    name: 'RRQ without options',
    bytes: hex(`0001 ${ascii('pxelinux.0')}00 ${ascii('octet')}00`),
    packet: { kind: 'rrq', filename: 'pxelinux.0', mode: 'octet', options: new Map() },
  },
  {
    name: 'RRQ with tsize and blksize (the EDK2 size probe)',
    bytes: hex(
      `0001 ${ascii('undionly.kpxe')}00 ${ascii('octet')}00 ${ascii('tsize')}00 3000 ${ascii('blksize')}00 ${ascii('1456')}00`,
    ),
    packet: {
      kind: 'rrq',
      filename: 'undionly.kpxe',
      mode: 'octet',
      options: new Map([
        ['tsize', '0'],
        ['blksize', '1456'],
      ]),
    },
  },
  {
    name: 'WRQ',
    bytes: hex(`0002 ${ascii('up.bin')}00 ${ascii('octet')}00`),
    packet: { kind: 'wrq', filename: 'up.bin', mode: 'octet', options: new Map() },
  },
  {
    name: 'DATA block 1',
    bytes: hex('0003 0001 deadbeef'),
    packet: { kind: 'data', block: 1, data: hex('deadbeef') },
  },
  {
    name: 'DATA empty (end of an exact multiple)',
    bytes: hex('0003 0003'),
    packet: { kind: 'data', block: 3, data: Buffer.alloc(0) },
  },
  { name: 'ACK 0', bytes: hex('0004 0000'), packet: { kind: 'ack', block: 0 } },
  { name: 'ACK 65535', bytes: hex('0004 ffff'), packet: { kind: 'ack', block: 65535 } },
  {
    name: 'ERROR 1',
    bytes: hex(`0005 0001 ${ascii('File not found')}00`),
    packet: { kind: 'error', code: 1, message: 'File not found' },
  },
  {
    name: 'ERROR 8 from EDK2',
    bytes: hex(`0005 0008 ${ascii('User aborted the transfer')}00`),
    packet: { kind: 'error', code: 8, message: 'User aborted the transfer' },
  },
  {
    name: 'OACK',
    bytes: hex(`0006 ${ascii('tsize')}00 ${ascii('70000')}00 ${ascii('blksize')}00 ${ascii('1456')}00`),
    packet: {
      kind: 'oack',
      options: new Map([
        ['tsize', '70000'],
        ['blksize', '1456'],
      ]),
    },
  },
];

function assertDecodeError(fn: () => unknown, code: string, label = ''): void {
  assert.throws(fn, (e: unknown) => e instanceof DecodeError && e.code === code, `${label}: expected ${code}`);
}

void describe('TFTP codec vectors', () => {
  for (const v of VECTORS) {
    void it(`${v.name}: decodes and encodes byte for byte`, () => {
      assert.deepEqual(decodeTftp(v.bytes), v.packet);
      assert.deepEqual(encodeTftp(v.packet), v.bytes);
      assert.deepEqual(encodeTftp(decodeTftp(v.bytes)), v.bytes);
    });
  }

  void it('every prefix of every vector decodes or throws DecodeError, never anything else', () => {
    for (const v of VECTORS) {
      for (let n = 0; n < v.bytes.length; n++) {
        try {
          decodeTftp(v.bytes.subarray(0, n));
        } catch (e) {
          assert.ok(e instanceof DecodeError, `${v.name} len ${n}: ${String(e)}`);
        }
      }
    }
  });
});

void describe('decodeTftp is lenient where clients differ', () => {
  void it('lower-cases option names and the mode, keeps the first of a repeated option', () => {
    const p = decodeTftp(
      hex(
        `0001 ${ascii('a')}00 ${ascii('OCTET')}00 ${ascii('BlkSize')}00 ${ascii('1400')}00 ${ascii('blksize')}00 ${ascii('9')}00`,
      ),
    );
    assert.equal(p.kind, 'rrq');
    if (p.kind !== 'rrq') return;
    assert.equal(p.mode, 'octet');
    assert.deepEqual([...p.options], [['blksize', '1400']]);
  });

  void it('ignores NUL padding and a dangling option name after the request', () => {
    const padded = decodeTftp(hex(`0001 ${ascii('a')}00 ${ascii('octet')}00 ${ascii('tsize')}00 3000 000000`));
    assert.deepEqual(padded.kind === 'rrq' && [...padded.options], [['tsize', '0']]);
    const dangling = decodeTftp(hex(`0001 ${ascii('a')}00 ${ascii('octet')}00 ${ascii('tsize')}00`));
    assert.deepEqual(dangling.kind === 'rrq' && [...dangling.options], []);
    const unterminated = decodeTftp(hex(`0001 ${ascii('a')}00 ${ascii('octet')}00 ${ascii('tsize')}00 30`));
    assert.deepEqual(unterminated.kind === 'rrq' && [...unterminated.options], []);
  });

  void it('accepts an ERROR without the final NUL and a padded ACK', () => {
    assert.deepEqual(decodeTftp(hex(`0005 0000 ${ascii('TFTP Aborted')}`)), {
      kind: 'error',
      code: 0,
      message: 'TFTP Aborted',
    });
    assert.deepEqual(decodeTftp(hex('0004 0007 0000')), { kind: 'ack', block: 7 });
  });
});

void describe('decodeTftp refuses malformed datagrams', () => {
  const cases: [string, string, string][] = [
    ['empty', '', 'truncated'],
    ['one byte', '00', 'truncated'],
    ['opcode 0', '0000 0000', 'bad-opcode'],
    ['opcode 7', '0007 0000', 'bad-opcode'],
    ['RRQ with no NUL', `0001 ${ascii('pxelinux.0')}`, 'bad-string'],
    ['RRQ with no mode', `0001 ${ascii('pxelinux.0')}00`, 'bad-string'],
    ['RRQ with unterminated mode', `0001 ${ascii('pxelinux.0')}00 ${ascii('oct')}`, 'bad-string'],
    ['DATA without block', '0003 00', 'truncated'],
    ['ACK without block', '0004', 'truncated'],
    ['ERROR without code', '0005 01', 'truncated'],
    ['OACK with unterminated value', `0006 ${ascii('tsize')}00 ${ascii('12')}`, 'bad-string'],
    ['OACK with a name and no value', `0006 ${ascii('tsize')}00`, 'bad-option'],
  ];
  for (const [name, bytes, code] of cases) {
    void it(`${name} → ${code}`, () => assertDecodeError(() => decodeTftp(hex(bytes)), code, name));
  }
});

void describe('encodeTftp', () => {
  void it('cuts ERROR text at MAX_ERROR_TEXT bytes and still ends with NUL', () => {
    const b = encodeTftp({ kind: 'error', code: TftpErrorCode.ACCESS_VIOLATION, message: 'x'.repeat(2000) });
    assert.equal(b.length, 4 + MAX_ERROR_TEXT + 1);
    assert.equal(b[b.length - 1], 0);
  });

  void it('writes block numbers modulo 65536', () => {
    assert.deepEqual(encodeTftp({ kind: 'ack', block: 65536 }), hex('0004 0000'));
    const buf = Buffer.alloc(6);
    writeDataHeader(buf, 65537, 2);
    assert.deepEqual(buf, hex('0000 0003 0001'));
  });

  void it('names error codes, unknown ones included', () => {
    assert.equal(tftpErrorName(5), 'UNKNOWN_TID');
    assert.equal(tftpErrorName(42), 'ERROR_42');
  });
});

describe('the hot-path peeks', () => {
  it('peekAck reads an ACK block (padded too) and nothing else', () => {
    assert.equal(peekAck(Buffer.from([0, 4, 0x12, 0x34])), 0x1234);
    assert.equal(peekAck(Buffer.from([0, 4, 0, 7, 0, 0])), 7);
    assert.equal(peekAck(Buffer.from([0, 3, 0, 1])), -1);
    assert.equal(peekAck(Buffer.from([0, 4, 0])), -1);
  });

  it('isTftpError tells ERROR packets, which are never answered', () => {
    assert.equal(isTftpError(encodeTftp({ kind: 'error', code: 5, message: 'x' })), true);
    assert.equal(isTftpError(Buffer.from([0, 4, 0, 1])), false);
    assert.equal(isTftpError(Buffer.from([0])), false);
  });
});
