import { performance } from 'node:perf_hooks';
import type { Refusal, OpenFile } from '../files/root.js';
import type { Datagrams, Peer } from '../net/datagram.js';
import { DecodeError } from '../wire/reader.js';
import {
  DATA_HEADER_LEN,
  decodeTftp,
  isTftpError,
  peekAck,
  TftpErrorCode,
  type TftpRequest,
} from '../wire/tftp-packet.js';
import type { BlockSource } from './chunks.js';
import type { TftpContext } from './context.js';
import { NetasciiSource } from './netascii.js';
import { negotiate } from './negotiate.js';
import { TftpSession, type SessionIo, type SessionSummary } from './session.js';
import type { Slot } from './table.js';

/** How a transfer that never started ended: the file was refused, or the server could not serve it. */
export type StartFailure =
  { kind: 'refused'; reason: Refusal } | { kind: 'failed'; reason: 'no-socket' | 'read-error' };

/** The end of a transfer, reported once. */
export type TransferEnd =
  { kind: 'ended'; summary: SessionSummary } | { kind: 'stopped'; outcome: 'evicted' | 'aborted' } | StartFailure;

/**
 * The ERROR a client gets for a refusal. Outside the root reads as missing: nothing outside can be
 * probed. An upstream failure is not "not found": the file may well exist (error 0, RFC 1350).
 */
export function refusalError(reason: Refusal): { code: number; message: string } {
  if (reason === 'upstream-error') return { code: TftpErrorCode.NOT_DEFINED, message: 'Upstream error' };
  return reason === 'no-permission'
    ? { code: TftpErrorCode.ACCESS_VIOLATION, message: 'Access violation' }
    : { code: TftpErrorCode.FILE_NOT_FOUND, message: 'File not found' };
}

const clock = {
  now: () => performance.now(),
  setTimer: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimer: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * One read transfer and everything it owns: the open file, its socket (the server's TID), the
 * protocol session with its timers and buffers. Every way it can end (done, client error, timeout,
 * eviction, shutdown, a failure while opening) goes through `#finish`, which frees all of them and
 * reports once; so a failing transfer cannot leak a slot, a descriptor or a timer.
 */
export class Transfer implements Slot {
  readonly key: string;
  readonly address: string;
  readonly peer: Peer;
  readonly request: TftpRequest;
  /** Name as resolved in the root (set once open), else as requested. */
  name: string;
  readonly #ctx: TftpContext;
  readonly #onEnd: (t: Transfer, end: TransferEnd) => void;
  #state: 'opening' | 'running' | 'ended' = 'opening';
  #file: OpenFile | null = null;
  #socket: Datagrams | null = null;
  #session: TftpSession | null = null;

  constructor(ctx: TftpContext, peer: Peer, request: TftpRequest, onEnd: (t: Transfer, end: TransferEnd) => void) {
    this.#ctx = ctx;
    this.peer = peer;
    this.key = `${peer.address}:${peer.port}`;
    this.address = peer.address;
    this.request = request;
    this.name = request.filename;
    this.#onEnd = onEnd;
  }

  get ended(): boolean {
    return this.#state === 'ended';
  }

  /** Open the file and a socket, negotiate, send the first packet. Never rejects. */
  async start(): Promise<void> {
    try {
      const client = this.#ctx.nameContext?.(this.peer) ?? { ip: this.peer.address };
      const opened = await this.#ctx.root.open(this.request.filename, client);
      if (!opened.ok) return this.#finish({ kind: 'refused', reason: opened.reason });
      this.#file = opened.file;
      this.name = opened.file.name;
      if (this.#state === 'ended') return this.#release();
      const source = await this.#source(opened.file);
      if (!source) return this.#finish({ kind: 'failed', reason: 'read-error' });
      const negotiated = negotiate(this.request.options, {
        ...this.#ctx.negotiation,
        mtu: this.#ctx.listen.mtu,
        fileSize: source.size,
      });
      this.#socket = await this.#ctx.openDatagrams({
        address: this.#ctx.listen.transferAddress,
        port: 0,
        purpose: 'TFTP transfer',
        peer: this.peer,
      });
      if (this.ended) return this.#release();
      this.#run(source, negotiated);
    } catch {
      this.#finish({ kind: 'failed', reason: this.#file ? 'no-socket' : 'read-error' });
    }
  }

  /** The client repeated its RRQ from the same TID. */
  onDuplicateRequest(): void {
    this.#session?.onDuplicateRequest();
  }

  /** Evicted from the unconfirmed budget: stop without a word to the (probably forged) peer. */
  evict(): void {
    this.#stop('evicted');
  }

  /** Daemon shutdown. */
  abort(): void {
    this.#stop('aborted');
  }

  #stop(outcome: 'evicted' | 'aborted'): void {
    if (this.#session) return this.#session.abort(outcome);
    if (this.#state === 'opening') {
      // The open in flight releases what it opened when it lands and sees the state.
      this.#state = 'ended';
      this.#onEnd(this, { kind: 'stopped', outcome });
    }
  }

  async #source(file: OpenFile): Promise<BlockSource | null> {
    if (this.request.mode !== 'netascii') return file;
    if (file.size > this.#ctx.netasciiMaxBytes) return null;
    return NetasciiSource.open(file);
  }

  #run(source: BlockSource, negotiated: ReturnType<typeof negotiate>): void {
    const socket = this.#socket!;
    const io: SessionIo = { ...clock, send: (b, off, len) => socket.send(b, off, len, this.peer) };
    // A window goes out in one send where the kernel can segment it (UDP GSO): one syscall, not 16.
    if (negotiated.windowSize > 1 && socket.segment) {
      io.maxBatch = socket.segment(DATA_HEADER_LEN + negotiated.blockSize, () => {
        io.maxBatch = 1;
      });
    }
    const session = new TftpSession(
      {
        file: source,
        negotiated,
        idleTimeoutMs: this.#ctx.idleTimeoutMs,
        unconfirmedMaxSends: this.#ctx.unconfirmedMaxSends,
        unconfirmedLifeMs: this.#ctx.unconfirmedLifeMs,
        onConfirmed: () => this.#ctx.onConfirmed(this),
      },
      io,
      (summary) => this.#finish({ kind: 'ended', summary }),
    );
    this.#session = session;
    this.#state = 'running';
    socket.onMessage((msg, from) => this.#onMessage(msg, from));
    this.#ctx.onStarted(this, negotiated, source.size);
    session.start();
  }

  /** A datagram on this transfer's socket. Never throws: our own bug ends this transfer only. */
  #onMessage(msg: Buffer, from: Peer): void {
    try {
      const session = this.#session!;
      if (from.port !== this.peer.port || from.address !== this.peer.address) return this.#stranger(msg, from);
      const block = peekAck(msg);
      if (block >= 0) return session.ack(block);
      session.onPacket(decodeTftp(msg));
    } catch (err) {
      if (err instanceof DecodeError) return this.#ctx.count(`tftp-${err.code}`);
      this.#ctx.internalError(err);
      this.#stop('aborted');
    }
  }

  /**
   * RFC 1350 §4: a packet from a foreign TID gets ERROR 5 and the transfer goes on. Only for a
   * stranger at the peer's own address (the same machine, another port: a restarted client), never
   * for an ERROR (two servers would bounce errors forever), and through a global rate limit. Another
   * address gets nothing: an answer would tell a scanner which port carries a transfer, and forged
   * ACKs sent there could then pull the file toward a victim.
   */
  #stranger(msg: Buffer, from: Peer): void {
    this.#ctx.count('tftp-unknown-tid');
    if (isTftpError(msg) || from.address !== this.peer.address || !this.#ctx.strangerReplies.take()) return;
    this.#ctx.sendError(this.#socket!, from, TftpErrorCode.UNKNOWN_TID, 'Unknown transfer ID');
  }

  #finish(end: TransferEnd): void {
    if (this.#state === 'ended') return this.#release();
    this.#state = 'ended';
    this.#release();
    this.#onEnd(this, end);
  }

  /** Free everything this transfer owns (idempotent). */
  #release(): void {
    const file = this.#file;
    const socket = this.#socket;
    this.#file = null;
    this.#socket = null;
    if (file) void file.close();
    if (socket) void socket.close();
  }
}
