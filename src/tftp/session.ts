import { DATA_HEADER_LEN, encodeTftp, TftpErrorCode, writeDataHeader, type TftpPacket } from '../wire/tftp-packet.js';
import type { OpenFile } from '../files/root.js';
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
  file: OpenFile;
  negotiated: Negotiated;
  /** End the transfer after this long without hearing from the client. */
  idleTimeoutMs: number;
  /** Consecutive timeouts without progress before giving up. */
  maxRetries?: number;
}

/** How a transfer ended; `client-error` includes the size probe's deliberate abort (§8.3). */
export type SessionOutcome = 'done' | 'client-error' | 'timeout' | 'read-error' | 'illegal-packet' | 'aborted';

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
}

/** Target bytes per file read: few syscalls, bounded memory per transfer. */
const CHUNK_BYTES = 256 * 1024;
/** Linux IOV_MAX: a readv with more buffers would be cut short. */
const MAX_CHUNK_BLOCKS = 1024;
const DEFAULT_MAX_RETRIES = 12;

interface Chunk {
  index: number;
  /** Packets laid out back to back: [DATA header | block] × blocks, stride = 4 + blockSize. */
  buf: Buffer;
  ready: boolean;
}

/**
 * One read transfer (RFC 1350 with RFC 2347 OACK and RFC 7440 windows). Blocks are numbered from 1
 * on the absolute scale and sent modulo 65536, so files past 65535 blocks roll over to block 0
 * (pxe-protocol.md §8.4). A duplicate ACK never triggers a send in lockstep, which is what stops the
 * Sorcerer's Apprentice doubling (RFC 1123 §4.2.3.1); with windows it may trigger at most one resend
 * per retransmission timeout, as RFC 7440 §4 has the client repeat its last in-order ACK on loss.
 */
export class TftpSession {
  readonly #io: SessionIo;
  readonly #file: OpenFile;
  readonly #blockSize: number;
  readonly #window: number;
  readonly #stride: number;
  readonly #totalBlocks: number;
  readonly #blocksPerChunk: number;
  readonly #idleMs: number;
  readonly #maxRetries: number;
  readonly #oack: Buffer | null;
  readonly #rto: RetransmitTimer;
  readonly #onEnd: (s: SessionSummary) => void;
  readonly #chunks = new Map<number, Chunk>();
  readonly #spare: Buffer[] = [];
  readonly #started: number;
  #phase: 'oack' | 'data' | 'ended' = 'oack';
  #acked = 0;
  #sentUpTo = 0;
  /** First block of a send that waits for its chunk to be read. */
  #pendingFrom = 0;
  /** The next ACK at or past this block frees a chunk. */
  #dropAt: number;
  /** Last block of the window the pending send belongs to: the rest of that window, no more. */
  #pendingTo = 0;
  #pendingRetransmit = false;
  #retries = 0;
  #retransmits = 0;
  #lastHeard: number;
  #lastDupResend = -Infinity;
  #deadline = 0;
  #timer: unknown = null;
  #timerAt = 0;

  constructor(opts: SessionOptions, io: SessionIo, onEnd: (s: SessionSummary) => void) {
    this.#io = io;
    this.#file = opts.file;
    this.#blockSize = opts.negotiated.blockSize;
    this.#window = opts.negotiated.windowSize;
    this.#stride = DATA_HEADER_LEN + this.#blockSize;
    // RFC 1350 §6: a block shorter than blksize ends the file, so an exact multiple ends with an empty one.
    this.#totalBlocks = Math.floor(opts.file.size / this.#blockSize) + 1;
    const byBytes = Math.ceil(CHUNK_BYTES / this.#blockSize);
    this.#blocksPerChunk = Math.min(MAX_CHUNK_BLOCKS, Math.max(byBytes, 2 * this.#window));
    this.#dropAt = this.#blocksPerChunk;
    this.#idleMs = opts.idleTimeoutMs;
    this.#maxRetries = opts.maxRetries ?? DEFAULT_MAX_RETRIES;
    const oack = opts.negotiated.oack;
    this.#oack = oack.size > 0 ? encodeTftp({ kind: 'oack', options: oack }) : null;
    this.#rto = new RetransmitTimer(opts.negotiated.timeoutMs);
    this.#onEnd = onEnd;
    this.#started = io.now();
    this.#lastHeard = this.#started;
  }

  get ended(): boolean {
    return this.#phase === 'ended';
  }

  /** Send the OACK, or DATA 1 straight away when no option was accepted (RFC 2347). */
  start(): void {
    this.#loadChunk(0);
    if (this.#oack) {
      this.#io.send(this.#oack, 0, this.#oack.length);
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
    const now = this.#io.now();
    this.#lastHeard = now;
    switch (p.kind) {
      case 'ack':
        return this.#onAck(p.block, now);
      case 'error':
        // §8.3: any client ERROR is a clean end (EDK2's size probe sends 8, ROMs 0): no retransmits.
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

  /** The client repeated its RRQ (§8.4): resend the first packet if nothing has moved yet. */
  onDuplicateRequest(): void {
    if (this.#phase === 'ended' || this.#acked > 0) return;
    const now = this.#io.now();
    this.#lastHeard = now;
    if (now - this.#rto.lastSendAt < this.#rto.minMs) return; // the same burst: one transfer, one answer
    this.#retransmit();
  }

  /** Stop at once (daemon shutdown, idle sweep). */
  abort(): void {
    this.#end('aborted');
  }

  #onAck(block: number, now: number): void {
    if (this.#phase === 'oack') {
      if (block !== 0) return;
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
    this.#acked = abs;
    this.#retries = 0;
    this.#rto.progressed();
    this.#rto.acked(now, abs);
    if (abs === this.#totalBlocks) return this.#end('done');
    if (abs >= this.#dropAt) this.#dropChunksBefore(abs);
    this.#sendFrom(abs + 1, abs < this.#sentUpTo, now);
  }

  /** Send one window starting at `from`; a retransmission does not give an RTT sample (Karn). */
  #sendFrom(from: number, isRetransmit: boolean, now = this.#io.now()): void {
    this.#sendRange(from, Math.min(this.#totalBlocks, from + this.#window - 1), isRetransmit, now);
  }

  /**
   * Send blocks `from`..`to`. When a chunk is still being read, the send stops there and resumes
   * with the rest of the same window once it is in: resuming with a whole new window would run
   * ahead of the client's window, and every ACK would then land mid-flight and resend blocks.
   */
  #sendRange(from: number, to: number, isRetransmit: boolean, now = this.#io.now()): void {
    const batch = this.#io.maxBatch ?? 1;
    for (let b = from; b <= to;) {
      const chunk = this.#chunkOf(b);
      if (!chunk.ready) {
        this.#pendingFrom = b;
        this.#pendingTo = to;
        this.#pendingRetransmit = isRetransmit;
        this.#arm(now);
        return;
      }
      // Packets of one chunk lie end to end (stride apart), so a run of them is one send; only the
      // file's last block is short, and it can only end a run, as GSO requires of a short segment.
      const first = chunk.index * this.#blocksPerChunk;
      const last = Math.min(to, first + this.#blocksPerChunk, b + batch - 1);
      const at = (b - 1 - first) * this.#stride;
      this.#io.send(chunk.buf, at, (last - b) * this.#stride + DATA_HEADER_LEN + this.#dataLength(last));
      if (last > this.#sentUpTo) this.#sentUpTo = last;
      b = last + 1;
    }
    this.#pendingFrom = 0;
    this.#rto.sent(now, isRetransmit ? -1 : to);
    this.#arm(now);
    this.#prefetch(to);
  }

  #dataLength(block: number): number {
    return Math.max(0, Math.min(this.#blockSize, this.#file.size - (block - 1) * this.#blockSize));
  }

  #chunkOf(block: number): Chunk {
    const index = Math.floor((block - 1) / this.#blocksPerChunk);
    return this.#chunks.get(index) ?? this.#loadChunk(index);
  }

  /** Read the next chunk while the current one is being sent, so lockstep never waits for the disk. */
  #prefetch(lastSent: number): void {
    const index = Math.floor((lastSent - 1) / this.#blocksPerChunk) + 1;
    if (index * this.#blocksPerChunk < this.#totalBlocks && !this.#chunks.has(index)) this.#loadChunk(index);
  }

  #loadChunk(index: number): Chunk {
    const first = index * this.#blocksPerChunk + 1;
    const count = Math.min(this.#blocksPerChunk, this.#totalBlocks - first + 1);
    const bytes = count * this.#stride;
    const reuse = this.#spare.pop();
    const buf = reuse && reuse.length >= bytes ? reuse : Buffer.allocUnsafeSlow(this.#blocksPerChunk * this.#stride);
    const chunk: Chunk = { index, buf, ready: false };
    this.#chunks.set(index, chunk);
    const views: Buffer[] = [];
    let expected = 0;
    for (let i = 0; i < count; i++) {
      const at = i * this.#stride;
      writeDataHeader(buf, first + i, at);
      const len = this.#dataLength(first + i);
      expected += len;
      if (len > 0) views.push(buf.subarray(at + DATA_HEADER_LEN, at + DATA_HEADER_LEN + len));
    }
    const done = (n: number): void => {
      if (this.#phase === 'ended' || this.#chunks.get(index) !== chunk) return;
      if (n !== expected) return this.#readFailed();
      chunk.ready = true;
      if (this.#pendingFrom >= first && this.#pendingFrom < first + count && this.#phase === 'data') {
        this.#sendRange(this.#pendingFrom, this.#pendingTo, this.#pendingRetransmit);
      }
    };
    if (views.length === 0) chunk.ready = true;
    else this.#file.readv(views, (first - 1) * this.#blockSize).then(done, () => this.#readFailed());
    return chunk;
  }

  #readFailed(): void {
    // The file shrank or became unreadable under us: never send stale bytes.
    this.#sendError(TftpErrorCode.NOT_DEFINED, 'Read error');
    this.#end('read-error');
  }

  /** Free the chunks wholly acknowledged once `acked` reaches the end of one (not on every ACK). */
  #dropChunksBefore(acked: number): void {
    for (const [index, chunk] of this.#chunks) {
      if ((index + 1) * this.#blocksPerChunk <= acked) {
        this.#chunks.delete(index);
        if (chunk.ready && this.#spare.length < 2) this.#spare.push(chunk.buf);
      }
    }
    this.#dropAt = (Math.floor(acked / this.#blocksPerChunk) + 1) * this.#blocksPerChunk;
  }

  /** Lazy timer: each send only moves the deadline; the timer re-arms itself when it fires early. */
  #arm(now = this.#io.now()): void {
    this.#deadline = now + this.#rto.currentMs;
    if (this.#timer !== null && this.#timerAt <= this.#deadline) return;
    // No timer yet, or it fires later than needed because the timeout just shrank: (re)schedule.
    if (this.#timer !== null) this.#io.clearTimer(this.#timer);
    this.#timerAt = this.#deadline;
    this.#timer = this.#io.setTimer(() => this.#onTimer(), this.#rto.currentMs);
  }

  #onTimer(): void {
    this.#timer = null;
    if (this.#phase === 'ended') return;
    const now = this.#io.now();
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
      this.#io.send(this.#oack, 0, this.#oack.length);
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
    this.#chunks.clear();
    this.#spare.length = 0;
    void this.#file.close().catch(() => undefined);
    const ackedBytes = Math.min(this.#file.size, this.#acked * this.#blockSize);
    this.#onEnd({
      outcome,
      bytes: ackedBytes,
      ms: this.#io.now() - this.#started,
      blockSize: this.#blockSize,
      windowSize: this.#window,
      retransmits: this.#retransmits,
      duringNegotiation,
      ...(clientError ? { clientError } : {}),
    });
  }
}
