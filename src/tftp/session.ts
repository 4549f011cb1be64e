/*
 * Over 300 lines on purpose: one transfer's window protocol is a single state machine (OACK, data,
 * ended; acknowledged, sent and pending blocks; one lazy timer), and its transitions read best
 * together. Reading ahead lives in chunks.ts, the socket and timers' owner in run.ts, the file's in
 * transfer.ts.
 */
import { DATA_HEADER_LEN, encodeTftp, TftpErrorCode, type TftpPacket } from '../wire/tftp-packet.js';
import { ChunkReader, type BlockSource, type Chunk } from './chunks.js';
import type { Negotiated } from './negotiate.js';
import { RetransmitTimer } from './rto.js';

/** What a session needs from the outside world; tests pass a fake clock and a recording send. */
export interface SessionIo {
  /** Send `length` bytes of `buf` from `offset` to the client's transfer ID. */
  send(buf: Buffer, offset: number, length: number): void;
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /**
   * Most DATA packets one `send` may carry, laid end to end in the buffer (UDP GSO: the kernel
   * cuts them apart). Read before every window, so it may drop to 1 during a transfer. Default 1.
   */
  maxBatch?: number;
}

export interface SessionOptions {
  file: BlockSource;
  negotiated: Negotiated;
  /** End the transfer after this long without hearing from the client. */
  idleTimeoutMs: number;
  /** Consecutive timeouts without progress before giving up. */
  maxRetries?: number;
  /**
   * Until the peer's first ACK the transfer is unconfirmed (its source may be spoofed): it ends
   * after this many packets sent (first one included) however often the request is repeated…
   */
  unconfirmedMaxSends?: number;
  /** …and this long after it started, whatever the peer sends meanwhile. */
  unconfirmedLifeMs?: number;
  /** Called once, at the peer's first ACK. */
  onConfirmed?: () => void;
  /** Bytes per file read (src/tftp/chunks.ts `readAheadChunk`); 256 KiB when absent. */
  chunkBytes?: number;
}

/** How a transfer ended; `client-error` includes the size probe's deliberate abort (docs/tftp.md#the-size-probe). */
export type SessionOutcome =
  'done' | 'client-error' | 'timeout' | 'unconfirmed' | 'read-error' | 'illegal-packet' | 'evicted' | 'aborted';

export interface SessionSummary {
  outcome: SessionOutcome;
  /** Bytes the client acknowledged. */
  bytes: number;
  ms: number;
  blockSize: number;
  windowSize: number;
  retransmits: number;
  /** True when the client ended it during option negotiation (the size-probe pattern). */
  duringNegotiation: boolean;
  /** The client's ERROR, when it sent one. */
  clientError?: { code: number; message: string };
  /** Packets sent, retransmissions and GSO batches counted as their datagrams. */
  packetsSent: number;
}

/**
 * One read transfer (RFC 1350 with RFC 2347 OACK and RFC 7440 windows). Blocks are numbered from 1
 * on the absolute scale and sent modulo 65536, so files past 65535 blocks roll over to block 0
 * (docs/tftp.md#block-number-rollover). A duplicate ACK never triggers a send in lockstep, which is what stops the
 * Sorcerer's Apprentice doubling (RFC 1123 §4.2.3.1); with windows it may trigger at most one resend
 * per retransmission timeout, as RFC 7440 §4 has the client repeat its last in-order ACK on loss.
 */
const DEFAULT_MAX_RETRIES = 12;

export class TftpSession {
  readonly #io: SessionIo;
  readonly #chunks: ChunkReader;
  readonly #window: number;
  readonly #idleMs: number;
  readonly #maxRetries: number;
  readonly #unconfirmedMaxSends: number;
  readonly #unconfirmedUntil: number;
  readonly #onConfirmed: () => void;
  readonly #oack: Buffer | null;
  readonly #rto: RetransmitTimer;
  readonly #onEnd: (s: SessionSummary) => void;
  readonly #started: number;
  #phase: 'oack' | 'data' | 'ended' = 'oack';
  #confirmed = false;
  #acked = 0;
  #sentUpTo = 0;
  #packetsSent = 0;
  /** First block of a send that waits for its chunk to be read (0: none waits). */
  #pendingFrom = 0;
  /** Last block of the window the pending send belongs to: the rest of that window, no more. */
  #pendingTo = 0;
  #pendingRetransmit = false;
  /** The next ACK at or past this block frees a chunk. */
  #dropAt: number;
  #retries = 0;
  #retransmits = 0;
  #lastHeard: number;
  #lastDupResend = -Infinity;
  #deadline = 0;
  #timer: unknown = null;
  #timerAt = 0;

  constructor(opts: SessionOptions, io: SessionIo, onEnd: (s: SessionSummary) => void) {
    this.#io = io;
    this.#window = opts.negotiated.windowSize;
    this.#chunks = new ChunkReader(
      opts.file,
      opts.negotiated.blockSize,
      this.#window,
      (c) => this.#chunkReady(c),
      () => this.#readFailed(),
      opts.chunkBytes,
    );
    this.#dropAt = this.#chunks.blocksPerChunk;
    this.#idleMs = opts.idleTimeoutMs;
    this.#maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.#unconfirmedMaxSends = opts.unconfirmedMaxSends ?? Infinity;
    this.#onConfirmed = opts.onConfirmed ?? (() => undefined);
    const oack = opts.negotiated.oack;
    this.#oack = oack.size > 0 ? encodeTftp({ kind: 'oack', options: oack }) : null;
    this.#rto = new RetransmitTimer(opts.negotiated.timeoutMs);
    this.#onEnd = onEnd;
    this.#started = io.now();
    this.#unconfirmedUntil = this.#started + (opts.unconfirmedLifeMs ?? Infinity);
    this.#lastHeard = this.#started;
  }

  get ended(): boolean {
    return this.#phase === 'ended';
  }

  /** True once the peer has acknowledged anything: it receives what we send. */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /** Send the OACK, or DATA 1 straight away when no option was accepted (RFC 2347). */
  start(): void {
    this.#chunks.chunkOf(1);
    if (this.#oack) {
      this.#send(this.#oack, 0, this.#oack.length, 1);
      this.#rto.sent(this.#io.now(), 0);
      this.#arm();
    } else {
      this.#phase = 'data';
      this.#sendFrom(1, false);
    }
  }

  /** A packet from the client's transfer ID. */
  onPacket(p: TftpPacket): void {
    if (this.#phase === 'ended') return;
    switch (p.kind) {
      case 'ack':
        return this.ack(p.block);
      case 'error':
        // Any client ERROR is a clean end (EDK2's size probe sends 8, ROMs 0): no retransmits, no reply.
        return this.#end('client-error', { code: p.code, message: p.message });
      case 'rrq':
      case 'wrq':
        return; // a request sent to our TID is stray; the listener handles retransmitted RRQs
      default:
        this.#sendError(TftpErrorCode.ILLEGAL_OPERATION, 'Illegal TFTP operation');
        return this.#end('illegal-packet');
    }
  }

  /** An ACK from the client's TID: the hot path, without decoding a packet object. */
  ack(block: number): void {
    if (this.#phase === 'ended') return;
    const now = this.#io.now();
    this.#lastHeard = now;
    this.#onAck(block, now);
  }

  /**
   * The client repeated its RRQ: resend the first packet if nothing has moved yet. It neither
   * refreshes the idle timer nor extends an unconfirmed transfer's life, and it costs one of the
   * unconfirmed transfer's few sends: a repeated request cannot hold a slot or pump packets.
   */
  onDuplicateRequest(): void {
    if (this.#phase === 'ended' || this.#confirmed) return;
    if (this.#io.now() - this.#rto.lastSendAt < this.#rto.minMs) return; // the same burst: one answer
    this.#retransmit();
  }

  /** Stop at once: daemon shutdown (`aborted`) or a newer unconfirmed request took the slot (`evicted`). */
  abort(outcome: 'aborted' | 'evicted' = 'aborted'): void {
    this.#end(outcome);
  }

  #onAck(block: number, now: number): void {
    if (this.#phase === 'oack') {
      if (block !== 0) return;
      this.#confirm();
      this.#phase = 'data';
      this.#rto.acked(now, 0);
      this.#sendFrom(1, false, now);
      return;
    }
    // Forward distance from the last acknowledged block, modulo 2^16: stale ACKs land far ahead.
    const abs = this.#acked + ((block - this.#acked) & 0xffff);
    if (abs > this.#sentUpTo) return;
    if (abs === this.#acked) {
      if (this.#window === 1 || now - this.#lastDupResend < this.#rto.currentMs) return;
      this.#lastDupResend = now;
      this.#retransmits++;
      this.#sendFrom(abs + 1, true, now);
      return;
    }
    this.#confirm();
    this.#acked = abs;
    this.#retries = 0;
    this.#rto.progressed();
    this.#rto.acked(now, abs);
    if (abs === this.#chunks.totalBlocks) return this.#end('done');
    if (abs >= this.#dropAt) this.#dropAt = this.#chunks.dropThrough(abs);
    this.#sendFrom(abs + 1, abs < this.#sentUpTo, now);
  }

  #confirm(): void {
    if (this.#confirmed) return;
    this.#confirmed = true;
    this.#onConfirmed();
  }

  /**
   * Send one window starting at `from`; a retransmission does not give an RTT sample (Karn). Until
   * the peer has acknowledged something, the window is one block: an unconfirmed peer gets no burst.
   */
  #sendFrom(from: number, isRetransmit: boolean, now = this.#io.now()): void {
    const window = this.#confirmed ? this.#window : 1;
    this.#sendRange(from, Math.min(this.#chunks.totalBlocks, from + window - 1), isRetransmit, now);
  }

  /**
   * Send blocks `from`..`to`. When a chunk is still being read, the send stops there and resumes
   * with the rest of the same window once it is in: resuming with a whole new window would run
   * ahead of the client's window, and every ACK would then land mid-flight and resend blocks.
   */
  #sendRange(from: number, to: number, isRetransmit: boolean, now = this.#io.now()): void {
    const batch = this.#io.maxBatch ?? 1;
    const chunks = this.#chunks;
    for (let b = from; b <= to;) {
      const chunk = chunks.chunkOf(b);
      if (!chunk.ready) {
        this.#pendingFrom = b;
        this.#pendingTo = to;
        this.#pendingRetransmit = isRetransmit;
        this.#arm(now);
        return;
      }
      // Packets of one chunk lie end to end (stride apart), so a run of them is one send; only the
      // file's last block is short, and it can only end a run, as GSO requires of a short segment.
      const first = chunks.firstOf(chunk);
      const last = Math.min(to, first + chunks.blocksPerChunk - 1, b + batch - 1);
      const at = (b - first) * chunks.stride;
      const length = (last - b) * chunks.stride + DATA_HEADER_LEN + chunks.dataLength(last);
      if (!this.#send(chunk.buf, at, length, last - b + 1)) return;
      if (last > this.#sentUpTo) this.#sentUpTo = last;
      b = last + 1;
    }
    this.#pendingFrom = 0;
    this.#rto.sent(now, isRetransmit ? -1 : to);
    this.#arm(now);
    chunks.prefetch(to);
  }

  #chunkReady(chunk: Chunk): void {
    const first = this.#chunks.firstOf(chunk);
    const inChunk = this.#pendingFrom >= first && this.#pendingFrom < first + this.#chunks.blocksPerChunk;
    if (inChunk && this.#phase === 'data') {
      this.#sendRange(this.#pendingFrom, this.#pendingTo, this.#pendingRetransmit);
    }
  }

  /** Every packet leaves through here, so the unconfirmed budget counts them all. False: ended. */
  #send(buf: Buffer, offset: number, length: number, packets: number): boolean {
    if (!this.#confirmed && this.#packetsSent + packets > this.#unconfirmedMaxSends) {
      this.#end('unconfirmed');
      return false;
    }
    this.#packetsSent += packets;
    this.#io.send(buf, offset, length);
    return true;
  }

  #readFailed(): void {
    // The file shrank or became unreadable under us: never send stale bytes.
    this.#sendError(TftpErrorCode.NOT_DEFINED, 'Read error');
    this.#end('read-error');
  }

  /** Lazy timer: each send only moves the deadline; the timer re-arms itself when it fires early. */
  #arm(now = this.#io.now()): void {
    this.#deadline = now + this.#rto.currentMs;
    if (!this.#confirmed) this.#deadline = Math.min(this.#deadline, this.#unconfirmedUntil);
    if (this.#timer !== null && this.#timerAt <= this.#deadline) return;
    // No timer yet, or it fires later than needed because the timeout just shrank: (re)schedule.
    if (this.#timer !== null) this.#io.clearTimer(this.#timer);
    this.#timerAt = this.#deadline;
    this.#timer = this.#io.setTimer(() => this.#onTimer(), Math.max(0, this.#deadline - now));
  }

  #onTimer(): void {
    this.#timer = null;
    if (this.#phase === 'ended') return;
    const now = this.#io.now();
    if (!this.#confirmed && now >= this.#unconfirmedUntil) return this.#end('unconfirmed');
    if (now - this.#lastHeard >= this.#idleMs) return this.#end('timeout');
    if (now < this.#deadline) {
      this.#timerAt = this.#deadline;
      this.#timer = this.#io.setTimer(() => this.#onTimer(), this.#deadline - now);
      return;
    }
    if (++this.#retries > this.#maxRetries) return this.#end('timeout');
    this.#rto.backoff();
    this.#retransmit();
  }

  #retransmit(): void {
    this.#retransmits++;
    if (this.#phase === 'oack' && this.#oack) {
      if (!this.#send(this.#oack, 0, this.#oack.length, 1)) return;
      this.#rto.sent(this.#io.now(), -1);
      this.#arm();
    } else if (this.#pendingFrom === 0) {
      this.#sendFrom(this.#acked + 1, true);
    } else {
      this.#arm(); // still waiting for the disk; keep the timer going
    }
  }

  #sendError(code: number, message: string): void {
    const b = encodeTftp({ kind: 'error', code, message });
    this.#io.send(b, 0, b.length);
  }

  #end(outcome: SessionOutcome, clientError?: { code: number; message: string }): void {
    if (this.#phase === 'ended') return;
    const duringNegotiation = this.#phase === 'oack';
    this.#phase = 'ended';
    if (this.#timer !== null) this.#io.clearTimer(this.#timer);
    this.#timer = null;
    this.#chunks.close();
    this.#onEnd({
      outcome,
      bytes: Math.min(this.#chunks.size, this.#acked * this.#chunks.blockSize),
      ms: this.#io.now() - this.#started,
      blockSize: this.#chunks.blockSize,
      windowSize: this.#window,
      retransmits: this.#retransmits,
      duringNegotiation,
      packetsSent: this.#packetsSent,
      ...(clientError ? { clientError } : {}),
    });
  }
}
