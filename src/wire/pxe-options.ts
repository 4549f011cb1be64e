import { DISCOVERY_USE_BOOT_FILE, PxeSubOption } from './dhcp-constants.js';
import { decodeOptions, encodeOptions, type OptionMap } from './dhcp-options.js';
import { EncodeError } from './reader.js';

/** One entry of the PXE boot menu (sub-option 9): a boot server type and its description. */
export interface BootMenuItem {
  type: number;
  description: string;
}

/** The option 43 sub-options this daemon writes (PXE 2.1 §2.2.5). */
export interface PxeVendorOptions {
  discoveryControl?: number;
  bootMenu?: BootMenuItem[];
  menuPrompt?: { timeout: number; text: string };
  /** Sub-option 71: boot server type and layer, echoed from a boot-server request. */
  bootItem?: { type: number; layer: number };
}

/** Decode the sub-options inside an option 43 value. @throws DecodeError */
export function decodePxeOptions(value: Buffer): OptionMap {
  return decodeOptions(value);
}

/**
 * Sub-option 9, the boot menu: entries of (type: 2 bytes, length: 1, description). Lenient like
 * the firmware: a last entry cut short keeps what is there; nothing is read past the value.
 */
export function decodeBootMenu(value: Buffer | undefined): BootMenuItem[] {
  const items: BootMenuItem[] = [];
  for (let i = 0; value && i + 3 <= value.length;) {
    const len = value[i + 2]!;
    items.push({
      type: value.readUInt16BE(i),
      description: value.toString('latin1', i + 3, Math.min(value.length, i + 3 + len)),
    });
    i += 3 + len;
  }
  return items;
}

/** Sub-option 8, boot servers: entries of (type: 2 bytes, count: 1, count IPv4 addresses). */
export function decodeBootServers(value: Buffer | undefined): { type: number; addresses: string[] }[] {
  const out: { type: number; addresses: string[] }[] = [];
  for (let i = 0; value && i + 3 <= value.length;) {
    const count = value[i + 2]!;
    const addresses: string[] = [];
    for (let k = 0; k < count && i + 3 + 4 * k + 4 <= value.length; k++) {
      const at = i + 3 + 4 * k;
      addresses.push(`${value[at]}.${value[at + 1]}.${value[at + 2]}.${value[at + 3]}`);
    }
    out.push({ type: value.readUInt16BE(i), addresses });
    i += 3 + 4 * count;
  }
  return out;
}

/** Sub-option 71 (type, layer) of a decoded option 43, or undefined when absent or malformed. */
export function bootItemOf(sub: OptionMap): { type: number; layer: number } | undefined {
  const v = sub.get(PxeSubOption.BOOT_ITEM);
  return v?.length === 4 ? { type: v.readUInt16BE(0), layer: v.readUInt16BE(2) } : undefined;
}

/**
 * Encode option 43 data: sub-options in the order 6, 10, 9, 71, then END, no PAD bytes.
 * @throws EncodeError when a description is longer than 255 bytes
 */
export function encodePxeOptions(o: PxeVendorOptions): Buffer {
  const list: [number, Buffer][] = [];
  if (o.discoveryControl !== undefined) list.push([PxeSubOption.DISCOVERY_CONTROL, Buffer.of(o.discoveryControl)]);
  if (o.menuPrompt) {
    list.push([
      PxeSubOption.MENU_PROMPT,
      Buffer.concat([Buffer.of(o.menuPrompt.timeout), Buffer.from(o.menuPrompt.text, 'latin1')]),
    ]);
  }
  if (o.bootMenu) {
    const items = o.bootMenu.map((item) => {
      const desc = Buffer.from(item.description, 'latin1');
      if (desc.length > 255) throw new EncodeError('menu description over 255 bytes');
      const head = Buffer.alloc(3);
      head.writeUInt16BE(item.type, 0);
      head[2] = desc.length;
      return Buffer.concat([head, desc]);
    });
    list.push([PxeSubOption.BOOT_MENU, Buffer.concat(items)]);
  }
  if (o.bootItem) {
    const v = Buffer.alloc(4);
    v.writeUInt16BE(o.bootItem.type, 0);
    v.writeUInt16BE(o.bootItem.layer, 2);
    list.push([PxeSubOption.BOOT_ITEM, v]);
  }
  return encodeOptions(list);
}

/** `06 01 08 FF`: boot the offered file at once, no menu, prompt or discovery (docs/dhcp-options.md#bypass-bytes). */
export const BYPASS_VENDOR_OPTIONS: Buffer = encodePxeOptions({ discoveryControl: DISCOVERY_USE_BOOT_FILE });
