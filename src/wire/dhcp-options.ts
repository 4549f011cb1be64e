import { DhcpOption } from './dhcp-constants.js';
import { DecodeError, Reader } from './reader.js';

/** Decoded options: code → value. Insertion order is wire order, which encoders keep. */
export type OptionMap = Map<number, Buffer>;

/** Option values as they arrive: each code's pieces, in wire order, not yet joined. */
export type OptionPieces = Map<number, Buffer[]>;

/**
 * Read an RFC 2132 §2 TLV list (also the layout of the PXE sub-options inside option 43) into
 * `into`, keeping each piece of a repeated code (RFC 3396) without copying it. The end of the
 * buffer counts as END, as in dnsmasq; an option running past the end is an error.
 * @throws DecodeError
 */
export function collectOptions(buf: Buffer, into: OptionPieces = new Map()): OptionPieces {
  const r = new Reader(buf);
  while (r.remaining > 0) {
    const code = r.u8();
    if (code === DhcpOption.PAD) continue;
    if (code === DhcpOption.END) break;
    if (r.remaining < 1) throw new DecodeError('truncated', `option ${code} has no length byte`);
    const len = r.u8();
    if (len > r.remaining) {
      throw new DecodeError('truncated', `option ${code} length ${len} runs past the end`);
    }
    const value = r.take(len);
    const seen = into.get(code);
    if (seen) seen.push(value);
    else into.set(code, [value]);
  }
  return into;
}

/**
 * Join each code's pieces into one value (RFC 3396): one copy per repeated code, so the work is
 * linear in the datagram's size however many pieces it holds.
 */
export function joinOptions(pieces: OptionPieces): OptionMap {
  const out: OptionMap = new Map();
  for (const [code, parts] of pieces) out.set(code, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  return out;
}

/**
 * Decode a TLV list into code → value, repeated codes joined (RFC 3396).
 * @throws DecodeError
 */
export function decodeOptions(buf: Buffer): OptionMap {
  return joinOptions(collectOptions(buf));
}

/** Byte length of `encodeOptions(options)` without the END byte. */
function encodedLength(options: Iterable<[number, Buffer]>): number {
  let n = 0;
  for (const [, value] of options) n += 2 * Math.max(1, Math.ceil(value.length / 255)) + value.length;
  return n;
}

/**
 * Encode a TLV list, ending with END. No PAD bytes are ever written (Raspberry Pi EEPROMs before
 * 2020-01 reject them). Values over 255 bytes are split into consecutive instances (RFC 3396).
 */
export function encodeOptions(options: Iterable<[number, Buffer]>): Buffer {
  const list = [...options];
  const out = Buffer.alloc(encodedLength(list) + 1);
  let pos = 0;
  for (const [code, value] of list) {
    let start = 0;
    do {
      const chunk = value.subarray(start, start + 255);
      out[pos++] = code;
      out[pos++] = chunk.length;
      chunk.copy(out, pos);
      pos += chunk.length;
      start += 255;
    } while (start < value.length);
  }
  out[pos] = DhcpOption.END;
  return out;
}

/** A 1-byte option, or undefined when absent or not exactly 1 byte. */
export function u8Option(options: OptionMap, code: number): number | undefined {
  const v = options.get(code);
  return v?.length === 1 ? v[0] : undefined;
}

/** A big-endian 2-byte option, or undefined when absent or not exactly 2 bytes. */
export function u16Option(options: OptionMap, code: number): number | undefined {
  const v = options.get(code);
  return v?.length === 2 ? v.readUInt16BE(0) : undefined;
}

/** An IPv4 address option (first 4 bytes), or undefined when shorter. */
export function ipOption(options: OptionMap, code: number): string | undefined {
  const v = options.get(code);
  return v && v.length >= 4 ? `${v[0]}.${v[1]}.${v[2]}.${v[3]}` : undefined;
}

/** A text option as latin1 (bytes kept one for one), without a trailing NUL. */
export function stringOption(options: OptionMap, code: number): string | undefined {
  const v = options.get(code);
  if (!v) return undefined;
  const nul = v.indexOf(0);
  return v.toString('latin1', 0, nul === -1 ? v.length : nul);
}
