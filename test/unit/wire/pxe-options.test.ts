import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DhcpOption, PxeSubOption } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp } from '../../../src/wire/dhcp-packet.js';
import {
  BYPASS_VENDOR_OPTIONS,
  bootItemOf,
  decodePxeOptions,
  encodePxeOptions,
} from '../../../src/wire/pxe-options.js';
import { DecodeError, EncodeError } from '../../../src/wire/reader.js';
import { fixture } from '../../helpers/packets.js';

const hex = (b: Buffer): string => b.toString('hex').toUpperCase();
const bytes = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

describe('encodePxeOptions: vectors', () => {
  it('bypass: discovery control 8 alone is 06 01 08 FF (docs/dhcp-options.md#bypass-bytes)', () => {
    assert.equal(hex(encodePxeOptions({ discoveryControl: 8 })), '060108FF');
    assert.equal(hex(BYPASS_VENDOR_OPTIONS), '060108FF');
  });

  it('the Raspberry Pi option 43, byte for byte (docs/dhcp-options.md#raspberry-pi-option-43)', () => {
    const got = encodePxeOptions({
      discoveryControl: 3,
      menuPrompt: { timeout: 0, text: 'PXE' },
      bootMenu: [{ type: 0, description: 'Raspberry Pi Boot' }],
    });
    const want = bytes(`
      06 01 03
      0A 04 00 50 58 45
      09 14 00 00 11 52 61 73 70 62 65 72 72 79 20 50 69 20 42 6F 6F 74
      FF`);
    assert.equal(hex(got), hex(want));
    assert.equal(got.length, 32);
  });

  it('a boot-server answer: discovery control 8 then 71 = type 0x8000, layer 0', () => {
    assert.equal(
      hex(encodePxeOptions({ discoveryControl: 8, bootItem: { type: 0x8000, layer: 0 } })),
      '06010847048000' + '0000FF',
    );
  });

  it('writes sub-options in the order 6, 10, 9, 71 whatever the object order', () => {
    const o = encodePxeOptions({
      bootItem: { type: 1, layer: 2 },
      bootMenu: [{ type: 1, description: 'a' }],
      menuPrompt: { timeout: 255, text: '' },
      discoveryControl: 0,
    });
    assert.deepEqual([...decodePxeOptions(o).keys()], [6, 10, 9, 71]);
    assert.equal(hex(o), '060100' + '0A01FF' + '0904000101' + '61' + '470400010002' + 'FF');
  });

  it('a menu of several items, each type, length, text; 16-bit types big-endian', () => {
    const o = encodePxeOptions({
      bootMenu: [
        { type: 0, description: 'Local' },
        { type: 0x8001, description: 'Install' },
      ],
    });
    assert.equal(hex(o), '0912' + '000005' + hex(Buffer.from('Local')) + '800107' + hex(Buffer.from('Install')) + 'FF');
  });

  it('descriptions and prompts are latin1, one byte per character', () => {
    const o = encodePxeOptions({ menuPrompt: { timeout: 10, text: 'Démarrer' } });
    assert.equal(hex(o), '0A09' + '0A' + hex(Buffer.from('Démarrer', 'latin1')) + 'FF');
  });

  it('empty options are just END; no PAD byte anywhere', () => {
    assert.equal(hex(encodePxeOptions({})), 'FF');
    const o = encodePxeOptions({ discoveryControl: 0, bootMenu: [{ type: 0, description: '' }] });
    assert.equal(hex(o), '060100' + '0903000000' + 'FF');
  });

  it('a description of 255 bytes fits; a menu over 255 bytes is split into repeated 9s (RFC 3396)', () => {
    const long = 'x'.repeat(255);
    const o = encodePxeOptions({ bootMenu: [{ type: 7, description: long }] });
    // 3 + 255 = 258 bytes of menu: 255 in the first 9, 3 in the second.
    assert.equal(o[0], PxeSubOption.BOOT_MENU);
    assert.equal(o[1], 255);
    assert.equal(o[2 + 255], PxeSubOption.BOOT_MENU);
    assert.equal(o[3 + 255], 3);
    assert.equal(o.length, 2 + 255 + 2 + 3 + 1);
    const menu = decodePxeOptions(o).get(PxeSubOption.BOOT_MENU)!;
    assert.equal(menu.length, 258);
    assert.equal(menu.readUInt16BE(0), 7);
    assert.equal(menu[2], 255);
    assert.equal(menu.toString('latin1', 3), long);
  });

  it('a description over 255 bytes is our own error: EncodeError, not DecodeError', () => {
    const err = (() => {
      try {
        encodePxeOptions({ bootMenu: [{ type: 0, description: 'y'.repeat(256) }] });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof EncodeError, String(err));
    assert.ok(!(err instanceof DecodeError));
    assert.match(err.message, /over 255 bytes/);
  });
});

describe('decodePxeOptions and bootItemOf', () => {
  it('decodes what the encoder writes', () => {
    const sub = decodePxeOptions(bytes('06 01 08 47 04 80 00 00 01 FF'));
    assert.equal(hex(sub.get(PxeSubOption.DISCOVERY_CONTROL)!), '08');
    assert.deepEqual(bootItemOf(sub), { type: 0x8000, layer: 1 });
  });

  it('reads sub-option 71 from a real boot-server request (iPXE BIOS ROM capture)', () => {
    const req = decodeDhcp(fixture('ipxe-bios-rom-request-4011-bootserver'));
    const raw = req.options.get(DhcpOption.VENDOR_SPECIFIC);
    assert.ok(raw, 'the capture carries option 43');
    assert.deepEqual(bootItemOf(decodePxeOptions(raw)), { type: 0x8000, layer: 0 });
  });

  it('skips PAD, stops at END, and treats the end of the buffer as END', () => {
    const sub = decodePxeOptions(bytes('00 00 06 01 08 FF 09 03 00 00 00'));
    assert.deepEqual([...sub.keys()], [6]);
    assert.deepEqual([...decodePxeOptions(bytes('06 01 03')).keys()], [6]);
  });

  it('a sub-option running past the end is a DecodeError (truncated)', () => {
    assert.throws(
      () => decodePxeOptions(bytes('06 05 08')),
      (e: unknown) => e instanceof DecodeError && e.code === 'truncated',
    );
    assert.throws(
      () => decodePxeOptions(bytes('06')),
      (e: unknown) => e instanceof DecodeError && e.code === 'truncated',
    );
  });

  it('bootItemOf is undefined when 71 is absent or not 4 bytes', () => {
    assert.equal(bootItemOf(decodePxeOptions(bytes('06 01 08 FF'))), undefined);
    assert.equal(bootItemOf(decodePxeOptions(bytes('47 03 80 00 00 FF'))), undefined);
    assert.equal(bootItemOf(decodePxeOptions(bytes('47 05 80 00 00 00 00 FF'))), undefined);
  });
});
