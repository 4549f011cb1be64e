import { DecodeError, Reader } from './reader.js';

/** Well-known TFTP server port (RFC 1350 §4). */
export const TFTP_PORT = 69;

/** TFTP opcodes (RFC 1350 §5; OACK from RFC 2347). */
export const TftpOpcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;
export type TftpOpcode = (typeof TftpOpcode)[keyof typeof TftpOpcode];

/** ERROR packet codes (RFC 1350 appendix; 8 from RFC 2347). */
export const TftpErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

const errorNames = new Map<number, string>(Object.entries(TftpErrorCode).map(([k, v]) => [v, k]));

/** `FILE_NOT_FOUND`, …, or `ERROR_<n>` for a code outside the table, so nothing is lost in logs. */
export function tftpErrorName(code: number): string {
  return errorNames.get(code) ?? `ERROR_${code}`;
}

/** Size of the DATA header (opcode + block number), RFC 1350 §5. */
export const DATA_HEADER_LEN = 4;
/** Block size without the `blksize` option (RFC 1350 §2). */
export const DEFAULT_BLOCK_SIZE = 512;
/** ERROR text is capped, as netboot and dnsmasq do, so one packet never grows without bound. */
export const MAX_ERROR_TEXT = 500;

/**
 * Option names and values, in the order sent. Names are lower-cased by the decoder (RFC 2347:
 * names are case-insensitive); a repeated name keeps its first value.
 */
export type TftpOptions = ReadonlyMap<string, string>;

/** A read or write request: RFC 1350 §5 figure 5-1, with RFC 2347 options appended. */
export interface TftpRequest {
  kind: 'rrq' | 'wrq';
  filename: string;
  /** Lower-cased: `octet`, `netascii` or `mail` (anything else is refused by the server). */
  mode: string;
  options: TftpOptions;
}

export interface TftpData {
  kind: 'data';
  /** 16-bit block number; wraps 65535 → 0 on long transfers. */
  block: number;
  /** A view into the datagram (decode) or the bytes to send (encode). */
  data: Buffer;
}

export interface TftpAck {
  kind: 'ack';
  block: number;
}

export interface TftpError {
  kind: 'error';
  code: number;
  message: string;
}

/** Option acknowledgment (RFC 2347): the options the server accepted, with their values. */
export interface TftpOack {
  kind: 'oack';
  options: TftpOptions;
}

export type TftpPacket = TftpRequest | TftpData | TftpAck | TftpError | TftpOack;

/**
 * Split a NUL-separated string list (RFC 1350 request fields, RFC 2347 options). `complete` is
 * false when the last string had no terminating NUL.
 */
function cStrings(body: Buffer): { fields: string[]; complete: boolean } {
  const fields: string[] = [];
  let start = 0;
  while (start < body.length) {
    const nul = body.indexOf(0, start);
    if (nul === -1) {
      fields.push(body.toString('utf8', start));
      return { fields, complete: false };
    }
    fields.push(body.toString('utf8', start, nul));
    start = nul + 1;
  }
  return { fields, complete: true };
}

/**
 * Name/value pairs. Lenient on input: an empty name ends the list (some ROMs pad requests with
 * NULs), and a trailing name without a value is ignored, as tftp-hpa does.
 */
function decodeOptionPairs(fields: string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    if (name === '') break;
    if (!options.has(name)) options.set(name, fields[i + 1]!);
  }
  return options;
}

function decodeRequest(kind: 'rrq' | 'wrq', body: Buffer): TftpRequest {
  const { fields, complete } = cStrings(body);
  if (fields.length < 1 || (fields.length === 1 && !complete)) {
    throw new DecodeError('bad-string', 'request lacks a NUL-terminated file name');
  }
  if (fields.length < 2 || (fields.length === 2 && !complete)) {
    throw new DecodeError('bad-string', 'request lacks a NUL-terminated mode');
  }
  const options = decodeOptionPairs(complete ? fields.slice(2) : fields.slice(2, -1));
  return { kind, filename: fields[0]!, mode: fields[1]!.toLowerCase(), options };
}

function decodeOack(body: Buffer): TftpOack {
  const { fields, complete } = cStrings(body);
  if (!complete) throw new DecodeError('bad-string', 'OACK value is not NUL-terminated');
  if (fields.length % 2 === 1) throw new DecodeError('bad-option', 'OACK option without a value');
  return { kind: 'oack', options: decodeOptionPairs(fields) };
}

/**
 * Decode a TFTP datagram.
 * @throws DecodeError for a short datagram, an unknown opcode or a malformed string list
 */
export function decodeTftp(msg: Buffer): TftpPacket {
  const r = new Reader(msg);
  const opcode = r.u16();
  switch (opcode) {
    case TftpOpcode.RRQ:
      return decodeRequest('rrq', r.rest());
    case TftpOpcode.WRQ:
      return decodeRequest('wrq', r.rest());
    case TftpOpcode.DATA:
      return { kind: 'data', block: r.u16(), data: r.rest() };
    case TftpOpcode.ACK:
      // RFC 1350 ACK is exactly 4 bytes; some ROMs pad it, so trailing bytes are ignored.
      return { kind: 'ack', block: r.u16() };
    case TftpOpcode.ERROR: {
      const code = r.u16();
      // Lenient: several clients omit the final NUL of the message.
      const text = r.rest();
      const nul = text.indexOf(0);
      return { kind: 'error', code, message: text.toString('utf8', 0, nul === -1 ? text.length : nul) };
    }
    case TftpOpcode.OACK:
      return decodeOack(r.rest());
    default:
      throw new DecodeError('bad-opcode', `unknown TFTP opcode ${opcode}`);
  }
}

/**
 * The block number of an ACK, or −1 when `msg` is not one: the hot path of a transfer reads the
 * packet that dominates it (a 4-byte ACK) without building an object. Same leniency as decodeTftp.
 */
export function peekAck(msg: Buffer): number {
  return msg.length >= 4 && msg[0] === 0 && msg[1] === TftpOpcode.ACK ? msg.readUInt16BE(2) : -1;
}

/** True for an ERROR packet: never answered, so two peers cannot bounce errors forever. */
export function isTftpError(msg: Buffer): boolean {
  return msg.length >= 2 && msg[0] === 0 && msg[1] === TftpOpcode.ERROR;
}

const OPCODE_OF = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

function header(kind: TftpPacket['kind'], second: number, bodyLen: number): Buffer {
  const buf = Buffer.allocUnsafe(4 + bodyLen);
  buf.writeUInt16BE(OPCODE_OF[kind], 0);
  buf.writeUInt16BE(second, 2);
  return buf;
}

function stringList(strings: string[]): Buffer {
  return Buffer.concat(strings.map((s) => Buffer.from(`${s}\0`, 'utf8')));
}

function optionStrings(options: TftpOptions): string[] {
  const out: string[] = [];
  for (const [k, v] of options) out.push(k, v);
  return out;
}

/** Write a DATA header (opcode 3, block) at `offset` of a buffer the caller reuses. */
export function writeDataHeader(target: Buffer, block: number, offset = 0): void {
  target.writeUInt16BE(TftpOpcode.DATA, offset);
  target.writeUInt16BE(block & 0xffff, offset + 2);
}

/** Encode a TFTP packet into a fresh Buffer. ERROR text is cut at {@link MAX_ERROR_TEXT} bytes. */
export function encodeTftp(p: TftpPacket): Buffer {
  switch (p.kind) {
    case 'rrq':
    case 'wrq': {
      const body = stringList([p.filename, p.mode, ...optionStrings(p.options)]);
      const buf = Buffer.allocUnsafe(2 + body.length);
      buf.writeUInt16BE(OPCODE_OF[p.kind], 0);
      body.copy(buf, 2);
      return buf;
    }
    case 'data': {
      const buf = header('data', p.block & 0xffff, p.data.length);
      p.data.copy(buf, 4);
      return buf;
    }
    case 'ack':
      return header('ack', p.block & 0xffff, 0);
    case 'error': {
      let text = Buffer.from(p.message, 'utf8');
      if (text.length > MAX_ERROR_TEXT) text = text.subarray(0, MAX_ERROR_TEXT);
      const buf = header('error', p.code, text.length + 1);
      text.copy(buf, 4);
      buf[buf.length - 1] = 0;
      return buf;
    }
    case 'oack': {
      const body = stringList(optionStrings(p.options));
      const buf = Buffer.allocUnsafe(2 + body.length);
      buf.writeUInt16BE(TftpOpcode.OACK, 0);
      body.copy(buf, 2);
      return buf;
    }
  }
}
