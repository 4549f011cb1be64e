import { BOOTP_HEADER_LEN, BootpOp, DhcpOption, MAGIC_COOKIE } from './dhcp-constants.js';
import { collectOptions, encodeOptions, joinOptions, type OptionMap } from './dhcp-options.js';
import { ipFromBytes, writeIp } from './ip.js';
import { DecodeError, EncodeError, Reader } from './reader.js';

/** A BOOTP/DHCP message (RFC 2131 §2, figure 1). Addresses are dotted quads. */
export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  /** `xid`: chosen by the client, echoed by servers. */
  transactionId: number;
  secs: number;
  flags: number;
  /** `ciaddr`: the client's own address, when it has one. */
  clientIp: string;
  /** `yiaddr`: the address a server offers ("your" address). Always 0.0.0.0 from a proxy. */
  yourIp: string;
  /** `siaddr`: the next server (TFTP) the client should boot from. */
  nextServer: string;
  /** `giaddr`: the relay agent's address, 0.0.0.0 when not relayed. */
  relayIp: string;
  /** `chaddr`: 16 bytes; the first `hlen` are the hardware address. */
  clientHardware: Buffer;
  /** `sname` text up to its NUL; empty when the field carries options (overload). */
  serverName: string;
  /** `file` text up to its NUL; empty when the field carries options (overload). */
  bootFile: string;
  options: OptionMap;
}

/** Smallest datagram that can hold a DHCP message: header + cookie. */
export const DHCP_MIN_LEN = BOOTP_HEADER_LEN + 4;
/**
 * Largest request decoded. Firmware sends 300 to 600 bytes and nothing PXE needs comes near one
 * Ethernet frame; 4 KiB leaves room for relays' additions and long vendor options, while bounding
 * what one datagram can make us parse and copy (a 64 KiB one could carry 21,000 option pieces).
 */
export const DHCP_MAX_LEN = 4096;
/** Replies are padded to this length (RFC 1542 §3.3 practice; dnsmasq's minimum). */
export const DHCP_MIN_REPLY_LEN = 300;

const SNAME_LEN = 64;
const FILE_LEN = 128;

function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul === -1 ? field.length : nul);
}

/**
 * Decode a DHCP datagram (starting at `op`). Option overload (52) is honoured: `file` (bit 0)
 * and `sname` (bit 1) are then parsed as further option areas, in that order (RFC 2131 §4.1).
 * @throws DecodeError
 */
export function decodeDhcp(buf: Buffer): DhcpPacket {
  if (buf.length > DHCP_MAX_LEN) {
    throw new DecodeError(
      'too-long',
      `${buf.length} bytes, more than the ${DHCP_MAX_LEN} a DHCP request may have here`,
    );
  }
  if (buf.length < DHCP_MIN_LEN) {
    throw new DecodeError('truncated', `${buf.length} bytes, a DHCP message needs ${DHCP_MIN_LEN}`);
  }
  const r = new Reader(buf);
  const op = r.u8();
  if (op !== BootpOp.REQUEST && op !== BootpOp.REPLY) throw new DecodeError('bad-op', `op ${op}`);
  const htype = r.u8();
  const hlen = r.u8();
  if (hlen < 1 || hlen > 16 || htype === 0) {
    throw new DecodeError('bad-hlen', `htype ${htype} hlen ${hlen}`);
  }
  const hops = r.u8();
  const transactionId = r.u32();
  const secs = r.u16();
  const flags = r.u16();
  const addrs = r.take(16);
  const clientHardware = r.take(16);
  const snameField = r.take(SNAME_LEN);
  const fileField = r.take(FILE_LEN);
  const cookie = r.u32();
  if (cookie !== MAGIC_COOKIE) throw new DecodeError('bad-magic', `cookie 0x${cookie.toString(16)}`);
  const pieces = collectOptions(r.rest());
  const ov = pieces.get(DhcpOption.OVERLOAD);
  const overload = ov?.length === 1 && ov[0]!.length === 1 ? ov[0]![0]! : 0;
  if (overload & 1) collectOptions(fileField, pieces);
  if (overload & 2) collectOptions(snameField, pieces);
  const options = joinOptions(pieces);
  return {
    op,
    htype,
    hlen,
    hops,
    transactionId,
    secs,
    flags,
    clientIp: ipFromBytes(addrs, 0),
    yourIp: ipFromBytes(addrs, 4),
    nextServer: ipFromBytes(addrs, 8),
    relayIp: ipFromBytes(addrs, 12),
    clientHardware,
    serverName: overload & 2 ? '' : cString(snameField),
    bootFile: overload & 1 ? '' : cString(fileField),
    options,
  };
}

function writeText(out: Buffer, offset: number, size: number, text: string, field: string): void {
  // latin1 is one byte per character, so the length is known without encoding first.
  // Always NUL-terminated: old PXE stacks copy bytes past the name (docs/addressing.md#boot-file-name).
  if (text.length > size - 1) throw new EncodeError(`${field} is ${text.length} bytes, at most ${size - 1} fit`);
  out.write(text, offset, 'latin1');
}

/**
 * Encode a DHCP message. Never uses option overload: `sname` and `file` are plain text fields,
 * NUL-terminated and zero-filled. The result is padded with zeros to 300 bytes.
 * @throws EncodeError when `serverName` or `bootFile` does not fit its field (a caller bug)
 */
export function encodeDhcp(p: DhcpPacket): Buffer {
  const opts = encodeOptions(p.options);
  const out = Buffer.alloc(Math.max(DHCP_MIN_REPLY_LEN, DHCP_MIN_LEN + opts.length));
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.transactionId >>> 0, 4);
  out.writeUInt16BE(p.secs, 8);
  out.writeUInt16BE(p.flags, 10);
  writeIp(out, 12, p.clientIp);
  writeIp(out, 16, p.yourIp);
  writeIp(out, 20, p.nextServer);
  writeIp(out, 24, p.relayIp);
  p.clientHardware.copy(out, 28, 0, 16);
  writeText(out, 44, SNAME_LEN, p.serverName, 'sname');
  writeText(out, 108, FILE_LEN, p.bootFile, 'file');
  out.writeUInt32BE(MAGIC_COOKIE, BOOTP_HEADER_LEN);
  opts.copy(out, DHCP_MIN_LEN);
  return out;
}

/** Longest boot file name that fits the `file` field with its NUL. */
export const MAX_FILE_FIELD = FILE_LEN - 1;
