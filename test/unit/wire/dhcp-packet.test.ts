import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DhcpOption, MessageType } from '../../../src/wire/dhcp-constants.js';
import {
  collectOptions,
  decodeOptions,
  encodeOptions,
  stringOption,
  u16Option,
  u8Option,
  joinOptions,
} from '../../../src/wire/dhcp-options.js';
import { DHCP_MAX_LEN, decodeDhcp, encodeDhcp } from '../../../src/wire/dhcp-packet.js';
import { DecodeError, EncodeError } from '../../../src/wire/reader.js';
import { fixture, request } from '../../helpers/packets.js';

const FIXTURES = [
  'ipxe-bios-rom-discover',
  'ipxe-bios-rom-request-4011-bootserver',
  'ipxe-bios-rom-request-67',
  'ipxe-efi-discover',
  'ipxe-efi-request-4011',
  'ovmf-edk2-discover',
  'ovmf-edk2-request-4011-binl',
  'ovmf-edk2-request-67',
  'syslinux-efi-discover-no-vendor-class',
];

function assertDecodeError(fn: () => unknown, code: string, label = ''): void {
  assert.throws(fn, (e: unknown) => e instanceof DecodeError && e.code === code, `${label} expected ${code}`);
}

describe('decodeDhcp on packets captured from real firmware', () => {
  it('reads the iPXE BIOS ROM DISCOVER', () => {
    const p = decodeDhcp(fixture('ipxe-bios-rom-discover'));
    assert.equal(p.op, 1);
    assert.equal(p.hlen, 6);
    assert.equal(p.clientHardware.subarray(0, 6).toString('hex'), '525400770001');
    assert.equal(u8Option(p.options, DhcpOption.MESSAGE_TYPE), MessageType.DISCOVER);
    assert.equal(stringOption(p.options, DhcpOption.VENDOR_CLASS_ID), 'PXEClient:Arch:00000:UNDI:002001');
    assert.equal(u16Option(p.options, DhcpOption.CLIENT_ARCH), 0);
    assert.deepEqual([...p.options.get(DhcpOption.CLIENT_NDI)!], [1, 2, 1]);
    assert.equal(stringOption(p.options, DhcpOption.USER_CLASS), 'iPXE');
    assert.ok(p.options.has(DhcpOption.IPXE_ENCAP));
    assert.equal(p.options.get(DhcpOption.CLIENT_UUID)?.length, 17);
  });

  it('reads the OVMF DISCOVER and its BINL request from port 4011', () => {
    const d = decodeDhcp(fixture('ovmf-edk2-discover'));
    assert.equal(u16Option(d.options, DhcpOption.CLIENT_ARCH), 7);
    assert.equal(d.flags & 0x8000, 0x8000);
    assert.equal(d.options.has(DhcpOption.USER_CLASS), false);
    const r = decodeDhcp(fixture('ovmf-edk2-request-4011-binl'));
    assert.equal(u8Option(r.options, DhcpOption.MESSAGE_TYPE), MessageType.REQUEST);
    assert.notEqual(r.clientIp, '0.0.0.0');
    assert.equal(r.options.has(DhcpOption.VENDOR_SPECIFIC), false);
  });

  it('reads the syslinux DISCOVER that has no vendor class', () => {
    const p = decodeDhcp(fixture('syslinux-efi-discover-no-vendor-class'));
    assert.equal(p.options.has(DhcpOption.VENDOR_CLASS_ID), false);
  });

  for (const name of FIXTURES) {
    it(`${name}: encode(decode(b)) keeps header and options`, () => {
      const p = decodeDhcp(fixture(name));
      const again = decodeDhcp(encodeDhcp(p));
      assert.deepEqual(again, p);
    });

    it(`${name}: every truncation decodes or throws DecodeError`, () => {
      const b = fixture(name);
      for (let n = 0; n < b.length; n++) {
        try {
          decodeDhcp(b.subarray(0, n));
        } catch (e) {
          assert.ok(e instanceof DecodeError, `length ${n}: ${String(e)}`);
        }
      }
    });
  }
});

describe('decodeDhcp rejects malformed input with a typed error (docs/vectors.md#vector-13)', () => {
  const good = () => Buffer.from(encodeDhcp(request()));
  it('a 200-byte datagram is truncated', () => assertDecodeError(() => decodeDhcp(Buffer.alloc(200)), 'truncated'));
  it('a 240-byte datagram with a wrong cookie', () => {
    const b = good().subarray(0, 240);
    b.writeUInt32BE(0xdeadbeef, 236);
    assertDecodeError(() => decodeDhcp(b), 'bad-magic');
  });
  it('an option length running past the end', () => {
    const b = Buffer.concat([good().subarray(0, 240), Buffer.from([53, 1, 1, 60, 40, 0x50])]);
    assertDecodeError(() => decodeDhcp(b), 'truncated');
  });
  it('an option code with no length byte', () => {
    const b = Buffer.concat([good().subarray(0, 240), Buffer.from([53])]);
    assertDecodeError(() => decodeDhcp(b), 'truncated');
  });
  it('op 3 is not BOOTP', () => {
    const b = good();
    b[0] = 3;
    assertDecodeError(() => decodeDhcp(b), 'bad-op');
  });
  it('hlen 17 and hlen 0', () => {
    const b = good();
    b[2] = 17;
    assertDecodeError(() => decodeDhcp(b), 'bad-hlen');
    b[2] = 0;
    assertDecodeError(() => decodeDhcp(b), 'bad-hlen');
  });
  it('htype 0 with an hlen', () => {
    const b = good();
    b[1] = 0;
    assertDecodeError(() => decodeDhcp(b), 'bad-hlen');
  });
});

describe('options', () => {
  it('PAD is skipped, END stops, the end of the buffer counts as END', () => {
    const m = decodeOptions(Buffer.from([0, 0, 53, 1, 1, 255, 60, 1, 65]));
    assert.deepEqual([...m.keys()], [53]);
    assert.deepEqual([...decodeOptions(Buffer.from([53, 1, 1])).keys()], [53]);
  });
  it('a repeated code continues the value (RFC 3396)', () => {
    const m = decodeOptions(Buffer.from([60, 2, 0x50, 0x58, 60, 1, 0x45]));
    assert.equal(m.get(60)?.toString(), 'PXE');
  });
  it('values over 255 bytes are split on output and joined on input', () => {
    const long = Buffer.alloc(300, 7);
    const enc = encodeOptions([[67, long]]);
    assert.equal(enc.length, 2 + 255 + 2 + 45 + 1);
    assert.deepEqual(decodeOptions(enc).get(67), long);
  });
  it('encodeOptions never writes PAD between options', () => {
    const enc = encodeOptions([
      [53, Buffer.of(2)],
      [60, Buffer.from('PXEClient')],
    ]);
    assert.deepEqual([...enc], [53, 1, 2, 60, 9, ...Buffer.from('PXEClient'), 255]);
  });
  it('typed getters refuse wrong lengths', () => {
    const m = decodeOptions(Buffer.from([93, 1, 7, 53, 2, 1, 1]));
    assert.equal(u16Option(m, 93), undefined);
    assert.equal(u8Option(m, 53), undefined);
  });
});

describe('option overload (52)', () => {
  it('docs/vectors.md#vector-14: option 60 inside `file` is found when 52 = 1', () => {
    const p = request({ vendor: null });
    p.options.set(DhcpOption.OVERLOAD, Buffer.of(1));
    const b = encodeDhcp(p);
    const inFile = encodeOptions([[DhcpOption.VENDOR_CLASS_ID, Buffer.from('PXEClient:Arch:00000:UNDI:002001')]]);
    inFile.copy(b, 108);
    const d = decodeDhcp(b);
    assert.equal(stringOption(d.options, DhcpOption.VENDOR_CLASS_ID), 'PXEClient:Arch:00000:UNDI:002001');
    assert.equal(d.bootFile, '');
  });
  it('52 = 2 reads sname, 52 = 3 reads both, file before sname', () => {
    const p = request({ vendor: null });
    p.options.set(DhcpOption.OVERLOAD, Buffer.of(3));
    const b = encodeDhcp(p);
    encodeOptions([[77, Buffer.from('a')]]).copy(b, 108);
    encodeOptions([[77, Buffer.from('b')]]).copy(b, 44);
    const d = decodeDhcp(b);
    assert.equal(d.options.get(77)?.toString(), 'ab');
    assert.equal(d.serverName, '');
  });
});

describe('encodeDhcp', () => {
  it('pads to 300 bytes, NUL-terminates and zero-fills `file`', () => {
    const p = request();
    p.bootFile = 'pxelinux.0';
    const b = encodeDhcp(p);
    assert.ok(b.length >= 300);
    assert.equal(b.toString('latin1', 108, 118), 'pxelinux.0');
    assert.ok(b.subarray(118, 236).every((x) => x === 0));
  });
  it('refuses a `file` that cannot keep its NUL', () => {
    const p = request();
    p.bootFile = 'x'.repeat(128);
    assert.throws(() => encodeDhcp(p), EncodeError);
  });
});

describe('bounded decoding: work linear in the datagram, size capped', () => {
  it('a datagram over DHCP_MAX_LEN is refused before any parsing', () => {
    assertDecodeError(() => decodeDhcp(Buffer.alloc(DHCP_MAX_LEN + 1)), 'too-long');
  });

  it('thousands of one-byte pieces of one option join into one value, in order', () => {
    const pieces = 1200; // 3 bytes each: fits DHCP_MAX_LEN with the header
    const area = Buffer.alloc(pieces * 3);
    for (let i = 0; i < pieces; i++) area.set([43, 1, i & 0xff], i * 3);
    const joined = decodeOptions(area).get(43)!;
    assert.equal(joined.length, pieces);
    assert.ok([...joined].every((b, i) => b === (i & 0xff)));
  });

  it('collectOptions keeps the pieces, joinOptions copies each code once', () => {
    const pieces = collectOptions(Buffer.from([60, 1, 0x41, 60, 1, 0x42, 53, 1, 1]));
    assert.equal(pieces.get(60)!.length, 2);
    assert.deepEqual(joinOptions(pieces).get(60), Buffer.from('AB'));
  });
});
