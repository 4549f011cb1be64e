import { EncodeError } from './reader.js';

/** Dotted quad of 4 bytes at `offset`. */
export function ipFromBytes(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/**
 * Scan a dotted quad (four parts of 1-3 ASCII digits, each 0..255) and, when `out` is given, write
 * its bytes at `offset`. A scanner rather than a regex and split: every reply encodes four or five
 * addresses, and the regex version cost more than the rest of the encoder.
 */
function scanQuad(text: string, out: Buffer | undefined, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 0x30);
    } else if (c === 0x2e && digits > 0 && part < 3 && value <= 255) {
      if (out) out[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (part !== 3 || digits === 0 || value > 255) return false;
  if (out) out[offset + 3] = value;
  return true;
}

/** True for a dotted-quad IPv4 address with every part 0..255. */
export function isIPv4(text: string): boolean {
  return scanQuad(text, undefined, 0);
}

/** Write the 4 bytes of a dotted quad at `offset`. @throws EncodeError for anything else. */
export function writeIp(out: Buffer, offset: number, text: string): void {
  if (!scanQuad(text, out, offset)) throw new EncodeError(`not an IPv4 address: ${text}`);
}

/** The 4 bytes of a dotted quad. @throws EncodeError for anything else. */
export function ipToBytes(text: string): Buffer {
  const out = Buffer.alloc(4);
  writeIp(out, 0, text);
  return out;
}

/** An IPv4 address as an unsigned 32-bit number. */
export function ipToNumber(text: string): number {
  return ipToBytes(text).readUInt32BE(0);
}

/** An unsigned 32-bit number as a dotted quad. */
export function numberToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** MAC address text (lowercase, colon-separated) of the first `len` bytes. */
export function macToString(bytes: Buffer, len = 6): string {
  const parts: string[] = [];
  for (let i = 0; i < Math.min(len, bytes.length); i++) parts.push(bytes[i]!.toString(16).padStart(2, '0'));
  return parts.join(':');
}
