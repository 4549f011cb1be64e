import { DecodeError } from './reader.js';

/** Dotted quad of 4 bytes at `offset`. */
export function ipFromBytes(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** True for a dotted-quad IPv4 address with every part 0..255. */
export function isIPv4(text: string): boolean {
  const m = QUAD.exec(text);
  return m !== null && m.slice(1).every((p) => Number(p) <= 255);
}

/** The 4 bytes of a dotted quad. @throws DecodeError('bad-string') for anything else. */
export function ipToBytes(text: string): Buffer {
  if (!isIPv4(text)) throw new DecodeError('bad-string', `not an IPv4 address: ${text}`);
  return Buffer.from(text.split('.').map(Number));
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
