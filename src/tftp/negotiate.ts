import { DEFAULT_BLOCK_SIZE, type TftpOptions } from '../wire/tftp-packet.js';

/** RFC 2348 §2: the valid range of `blksize`. */
export const BLKSIZE_MIN = 8;
export const BLKSIZE_MAX = 65464;
/** 20 bytes IPv4 + 8 UDP + 4 TFTP header: a DATA packet of MTU − 32 bytes of data never fragments. */
export const TFTP_OVERHEAD = 32;
/** RFC 7440 §3: the valid range of `windowsize`. */
const WINDOW_MIN = 1;
const WINDOW_MAX = 65535;
/** RFC 2349 §3: the valid range of `timeout`, in seconds. */
const TIMEOUT_MIN = 1;
const TIMEOUT_MAX = 255;

/** What the server will grant, whatever the client asks. */
export interface NegotiationLimits {
  /** MTU of the interface the transfer leaves by; blksize is clamped to MTU − 32. */
  mtu: number;
  /** Largest window we send (in blocks); also bounded by `maxWindowBytes`. */
  maxWindow: number;
  /** Bytes in flight at most, so a window never overflows the socket's send buffer. */
  maxWindowBytes: number;
  /** File size in bytes, when known (octet mode); `tsize` is answered only then. */
  fileSize?: number;
}

/** The settings a transfer runs with, and the OACK that announces them. */
export interface Negotiated {
  blockSize: number;
  windowSize: number;
  /** Retransmission timeout the client asked for (RFC 2349), in ms. */
  timeoutMs?: number;
  /** Accepted options with the values we grant, in the client's order; empty → no OACK (RFC 2347). */
  oack: Map<string, string>;
}

/** A decimal integer within [min, max], or undefined (junk and out-of-range values are ignored). */
function integer(value: string, min: number, max: number): number | undefined {
  if (!/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

/** Largest block that fits the MTU unfragmented, within RFC 2348's range. */
export function maxBlockSize(mtu: number): number {
  return Math.max(BLKSIZE_MIN, Math.min(BLKSIZE_MAX, mtu - TFTP_OVERHEAD));
}

/**
 * Decide the transfer options of an RRQ (RFC 2347 negotiation). Unknown or malformed options are
 * left out of the OACK; granted values never exceed the requested ones, since EDK2 rejects an OACK
 * whose blksize or windowsize is larger than it asked.
 */
export function negotiate(requested: TftpOptions, limits: NegotiationLimits): Negotiated {
  const out: Negotiated = { blockSize: DEFAULT_BLOCK_SIZE, windowSize: 1, oack: new Map() };
  for (const [name, value] of requested) {
    switch (name) {
      case 'blksize': {
        // RFC 2348: values below 8 are invalid; above 65464 we may answer smaller, so clamp.
        if (!/^\d{1,10}$/.test(value) || Number(value) < BLKSIZE_MIN) break;
        out.blockSize = Math.min(Number(value), maxBlockSize(limits.mtu));
        out.oack.set(name, String(out.blockSize));
        break;
      }
      case 'tsize':
        // RFC 2349 §4: in an RRQ the client sends 0 and the server answers the size. An empty file's
        // size is left out: curl (7.88) rejects an OACK with tsize 0 as invalid and aborts, which
        // tftpd-hpa users hit; without tsize the same transfer succeeds.
        if (limits.fileSize && integer(value, 0, Number.MAX_SAFE_INTEGER) !== undefined) {
          out.oack.set(name, String(limits.fileSize));
        }
        break;
      case 'timeout': {
        const s = integer(value, TIMEOUT_MIN, TIMEOUT_MAX);
        if (s === undefined) break;
        out.timeoutMs = s * 1000;
        out.oack.set(name, String(s));
        break;
      }
      case 'windowsize': {
        const w = integer(value, WINDOW_MIN, WINDOW_MAX);
        if (w !== undefined) out.windowSize = w;
        break;
      }
    }
  }
  // The window depends on the final block size, so it is settled after the loop.
  if (
    requested.has('windowsize') &&
    out.windowSize > 0 &&
    integer(requested.get('windowsize')!, WINDOW_MIN, WINDOW_MAX)
  ) {
    const byBytes = Math.max(1, Math.floor(limits.maxWindowBytes / out.blockSize));
    out.windowSize = Math.min(out.windowSize, limits.maxWindow, byBytes);
    out.oack.set('windowsize', String(out.windowSize));
  }
  return out;
}
