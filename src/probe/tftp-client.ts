import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { closeUdp } from '../net/udp.js';
import { DecodeError } from '../wire/reader.js';
import {
  decodeTftp,
  DEFAULT_BLOCK_SIZE,
  encodeTftp,
  TFTP_PORT,
  TftpErrorCode,
  tftpErrorName,
  type TftpPacket,
} from '../wire/tftp-packet.js';

export interface TftpGetOptions {
  server: string;
  port?: number;
  file: string;
  /** RFC 2348; left out when undefined. */
  blksize?: number;
  /** RFC 7440; left out when undefined. */
  windowsize?: number;
  /** Ask the size with `tsize 0` (RFC 2349). */
  tsize?: boolean;
  /** Per-packet wait before a retransmission. */
  timeoutMs?: number;
  /** Retransmissions before giving up. */
  retries?: number;
  /** Refuse files larger than this (bytes). */
  maxBytes?: number;
}

/** Why a transfer failed: an ERROR from the server, silence, or our own refusal. */
export type TftpFailure =
  | { kind: 'error'; code: number; name: string; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'protocol'; message: string };

export type TftpResult =
  | { ok: true; data: Buffer; ms: number; blksize: number; windowsize: number; tsize?: number }
  | { ok: false; failure: TftpFailure; ms: number };

/** A TFTP ERROR we send: code and text (RFC 1350 §5). */
function errorPacket(code: number, message: string): Buffer {
  return encodeTftp({ kind: 'error', code, message });
}

function requestOptions(o: TftpGetOptions): Map<string, string> {
  const opts = new Map<string, string>();
  if (o.tsize) opts.set('tsize', '0');
  if (o.blksize !== undefined) opts.set('blksize', String(o.blksize));
  if (o.windowsize !== undefined) opts.set('windowsize', String(o.windowsize));
  return opts;
}

/** Check an OACK against what we asked (RFC 2347: never more than requested). */
function acceptOack(
  options: ReadonlyMap<string, string>,
  o: TftpGetOptions,
): { blksize: number; windowsize: number; tsize?: number } | string {
  const blk = options.get('blksize');
  const win = options.get('windowsize');
  const ts = options.get('tsize');
  const blksize = blk === undefined ? DEFAULT_BLOCK_SIZE : Number(blk);
  const windowsize = win === undefined ? 1 : Number(win);
  if (
    !Number.isInteger(blksize) ||
    blksize < 8 ||
    (o.blksize !== undefined && blksize > o.blksize) ||
    (blk !== undefined && o.blksize === undefined)
  ) {
    return `the server answered blksize ${blk}, we asked ${o.blksize ?? 'none'}`;
  }
  if (
    !Number.isInteger(windowsize) ||
    windowsize < 1 ||
    (o.windowsize !== undefined && windowsize > o.windowsize) ||
    (win !== undefined && o.windowsize === undefined)
  ) {
    return `the server answered windowsize ${win}, we asked ${o.windowsize ?? 'none'}`;
  }
  const tsize = ts === undefined ? undefined : Number(ts);
  return { blksize, windowsize, ...(tsize !== undefined && Number.isFinite(tsize) ? { tsize } : {}) };
}

/**
 * Read one file (RFC 1350 with the RFC 2347/2348/2349/7440 options). The server's first answer
 * fixes its transfer ID; packets from other ports get ERROR 5 (RFC 1350 §4). With a window, we ACK
 * the last block of each window, or the last in-order block on a gap (RFC 7440 §4).
 */
export async function tftpGet(o: TftpGetOptions): Promise<TftpResult> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => undefined);
  const start = Date.now();
  try {
    return await transfer(socket, o, start);
  } finally {
    await closeUdp(socket);
  }
}

function transfer(socket: Socket, o: TftpGetOptions, start: number): Promise<TftpResult> {
  const port = o.port ?? TFTP_PORT;
  const timeoutMs = o.timeoutMs ?? 1000;
  const retries = o.retries ?? 5;
  const maxBytes = o.maxBytes ?? 512 * 1024 * 1024;
  const rrq = encodeTftp({ kind: 'rrq', filename: o.file, mode: 'octet', options: requestOptions(o) });
  return new Promise((resolve) => {
    let tid: number | undefined;
    let last: Buffer = rrq;
    let lastTo = port;
    let tries = 0;
    let blksize = DEFAULT_BLOCK_SIZE;
    let windowsize = 1;
    let tsize: number | undefined;
    let received = 0; // blocks in order so far
    let inWindow = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout;
    const send = (buf: Buffer, to: number): void => {
      last = buf;
      lastTo = to;
      socket.send(buf, to, o.server);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (++tries > retries)
          return finish({
            ok: false,
            failure: { kind: 'timeout', message: `no answer from ${o.server}:${lastTo} after ${retries + 1} tries` },
            ms: Date.now() - start,
          });
        socket.send(last, lastTo, o.server);
        arm();
      }, timeoutMs);
    };
    const finish = (r: TftpResult): void => {
      clearTimeout(timer);
      socket.removeAllListeners('message');
      resolve(r);
    };
    const fail = (message: string): void => {
      if (tid !== undefined) socket.send(errorPacket(TftpErrorCode.NOT_DEFINED, message), tid, o.server);
      finish({ ok: false, failure: { kind: 'protocol', message }, ms: Date.now() - start });
    };
    const ack = (block: number): void => send(encodeTftp({ kind: 'ack', block }), tid!);
    const onData = (block: number, data: Buffer): void => {
      const expected = (received + 1) & 0xffff;
      if (block !== expected) {
        // A gap or a duplicate: ACK the last block we hold, so the server resumes after it (RFC 7440 §4).
        inWindow = 0;
        return ack(received & 0xffff);
      }
      tries = 0;
      received++;
      size += data.length;
      if (size > maxBytes) return fail(`file larger than ${maxBytes} bytes`);
      chunks.push(Buffer.from(data));
      const lastBlock = data.length < blksize;
      if (lastBlock || ++inWindow >= windowsize) {
        inWindow = 0;
        ack(block);
      }
      if (lastBlock)
        finish({
          ok: true,
          data: Buffer.concat(chunks),
          ms: Date.now() - start,
          blksize,
          windowsize,
          ...(tsize !== undefined ? { tsize } : {}),
        });
      else arm();
    };
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (rinfo.address !== o.server) return;
      if (tid === undefined) tid = rinfo.port;
      else if (rinfo.port !== tid) {
        socket.send(errorPacket(TftpErrorCode.UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address);
        return;
      }
      let p: TftpPacket;
      try {
        p = decodeTftp(msg);
      } catch (err) {
        if (err instanceof DecodeError) return fail(`malformed packet from the server: ${err.message}`);
        throw err;
      }
      switch (p.kind) {
        case 'error':
          return finish({
            ok: false,
            failure: { kind: 'error', code: p.code, name: tftpErrorName(p.code), message: p.message },
            ms: Date.now() - start,
          });
        case 'oack': {
          if (received > 0) return;
          const accepted = acceptOack(p.options, o);
          if (typeof accepted === 'string') {
            socket.send(errorPacket(TftpErrorCode.OPTION_REFUSED, accepted), tid, o.server);
            return finish({ ok: false, failure: { kind: 'protocol', message: accepted }, ms: Date.now() - start });
          }
          ({ blksize, windowsize } = accepted);
          tsize = accepted.tsize;
          ack(0);
          return arm();
        }
        case 'data':
          return onData(p.block, p.data);
        default:
          return fail(`unexpected ${p.kind} packet from the server`);
      }
    });
    send(rrq, port);
    arm();
  });
}
