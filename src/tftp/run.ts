import { performance } from 'node:perf_hooks';
import type { RateLimiter } from '../core/counters.js';
import type { Datagrams, OpenDatagrams, Peer } from '../net/datagram.js';
import { DecodeError } from '../wire/reader.js';
import {
  DATA_HEADER_LEN,
  decodeTftp,
  encodeTftp,
  isTftpError,
  peekAck,
  TftpErrorCode,
  type TftpOptions,
} from '../wire/tftp-packet.js';
import type { BlockSource } from './chunks.js';
import type { TftpCounter, TftpListen } from './types.js';
import { NetasciiSource } from './netascii.js';
import { negotiate, type Negotiated, type NegotiationLimits } from './negotiate.js';
import { TftpSession, type SessionIo, type SessionSummary } from './session.js';

/**
 * The part of a transfer that runs once its file is open: option negotiation, the transfer socket
 * (the server's TID) and the protocol session. It needs nothing from the server but the settings
 * below and a few callbacks, so it runs the same on the main thread and in a transfer worker
 * (src/tftp/workers.ts).
 */

/** Settings every run of one server shares. */
export interface RunSettings {
  readonly negotiation: Omit<NegotiationLimits, 'mtu' | 'fileSize'>;
  readonly idleTimeoutMs: number;
  readonly unconfirmedMaxSends: number;
  readonly unconfirmedLifeMs: number;
  readonly netasciiMaxBytes: number;
}

/** One transfer to run: its open file, its client and what the client asked. */
export interface RunSpec {
  readonly file: BlockSource;
  readonly peer: Peer;
  readonly mode: 'octet' | 'netascii';
  readonly options: TftpOptions;
  readonly listen: Pick<TftpListen, 'transferAddress' | 'mtu'>;
  /** Bytes per file read, from the server's read-ahead budget. */
  readonly chunkBytes?: number;
}

/** What a run needs from where it runs (the server, or a worker's message port). */
export interface RunEnv {
  readonly settings: RunSettings;
  readonly openDatagrams: OpenDatagrams;
  /** Shared by the runs of one thread: answers to strangers on transfer ports. */
  readonly strangerReplies: RateLimiter;
  count(key: TftpCounter): void;
  /** Our own bug met while handling one packet: counted and logged once, never thrown. */
  internalError(err: unknown): void;
}

/** How a run ended: its session's summary, stopped before it began, or unable to begin. */
export type RunEnd =
  | { kind: 'ended'; summary: SessionSummary }
  | { kind: 'stopped'; outcome: 'evicted' | 'aborted' }
  | { kind: 'failed'; reason: 'no-socket' | 'read-error' };

/** What a run reports, each at most once, `end` last. */
export interface RunEvents {
  started(negotiated: Negotiated, size: number): void;
  confirmed(): void;
  end(end: RunEnd): void;
}

/** A run in progress, as its owner sees it. */
export interface RunHandle {
  /** The client repeated its RRQ from the same TID. */
  duplicateRequest(): void;
  /** End now, without a word to the peer; `end` follows. */
  stop(outcome: 'evicted' | 'aborted'): void;
}

const clock = {
  now: () => performance.now(),
  setTimer: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimer: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * Run one transfer: it owns its socket and session and frees both however it ends, a bug of ours
 * included (counted through `internalError`, never thrown). The file stays its owner's (the owner
 * closes it after `end`).
 */
export function startRun(spec: RunSpec, env: RunEnv, events: RunEvents): RunHandle {
  const run = new Run(spec, env, events);
  void run.start();
  return run;
}

class Run implements RunHandle {
  readonly #spec: RunSpec;
  readonly #env: RunEnv;
  readonly #events: RunEvents;
  #state: 'opening' | 'running' | 'ended' = 'opening';
  #socket: Datagrams | null = null;
  #session: TftpSession | null = null;

  constructor(spec: RunSpec, env: RunEnv, events: RunEvents) {
    this.#spec = spec;
    this.#env = env;
    this.#events = events;
  }

  /** Never rejects: a bug of ours (or of a hook called from `started`) ends this transfer only. */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (err) {
      this.#env.internalError(err);
      try {
        if (this.#session) this.#session.abort('aborted');
        else this.#fail('read-error');
      } catch (again) {
        this.#env.internalError(again);
      }
    }
  }

  async #start(): Promise<void> {
    const { settings } = this.#env;
    let source: BlockSource;
    try {
      if (this.#spec.mode === 'netascii') {
        if (this.#spec.file.size > settings.netasciiMaxBytes) {
          this.#env.count('tftp-netascii-too-big');
          return this.#fail('read-error');
        }
        source = await NetasciiSource.open(this.#spec.file);
      } else source = this.#spec.file;
    } catch {
      return this.#fail('read-error');
    }
    if (this.#stopped) return;
    const negotiated = negotiate(this.#spec.options, {
      ...settings.negotiation,
      mtu: this.#spec.listen.mtu,
      fileSize: source.size,
    });
    try {
      this.#socket = await this.#env.openDatagrams({
        address: this.#spec.listen.transferAddress,
        port: 0,
        purpose: 'TFTP transfer',
        peer: this.#spec.peer,
      });
    } catch {
      return this.#fail('no-socket');
    }
    if (this.#stopped) return this.#release();
    this.#run(source, negotiated);
  }

  /** Read after an await: `stop` may have ended the run meanwhile. */
  get #stopped(): boolean {
    return this.#state === 'ended';
  }

  duplicateRequest(): void {
    this.#session?.onDuplicateRequest();
  }

  stop(outcome: 'evicted' | 'aborted'): void {
    if (this.#session) return this.#session.abort(outcome);
    if (this.#state === 'opening') {
      // The open in flight sees the state when it lands and releases what it opened.
      this.#state = 'ended';
      this.#events.end({ kind: 'stopped', outcome });
    }
  }

  #run(source: BlockSource, negotiated: Negotiated): void {
    const socket = this.#socket!;
    const peer = this.#spec.peer;
    const io: SessionIo = { ...clock, send: (b, off, len) => socket.send(b, off, len, peer) };
    // A window goes out in one send where the kernel can segment it (UDP GSO): one syscall, not 16.
    if (negotiated.windowSize > 1 && socket.segment) {
      io.maxBatch = socket.segment(DATA_HEADER_LEN + negotiated.blockSize, () => {
        io.maxBatch = 1;
      });
    }
    const s = this.#env.settings;
    const session = new TftpSession(
      {
        file: source,
        negotiated,
        idleTimeoutMs: s.idleTimeoutMs,
        unconfirmedMaxSends: s.unconfirmedMaxSends,
        unconfirmedLifeMs: s.unconfirmedLifeMs,
        onConfirmed: () => this.#events.confirmed(),
        ...(this.#spec.chunkBytes !== undefined ? { chunkBytes: this.#spec.chunkBytes } : {}),
      },
      io,
      (summary) => this.#end(summary),
    );
    this.#session = session;
    this.#state = 'running';
    socket.onMessage((msg, from) => this.#onMessage(msg, from));
    this.#events.started(negotiated, source.size);
    session.start();
  }

  /** A datagram on this transfer's socket. Never throws: our own bug ends this transfer only. */
  #onMessage(msg: Buffer, from: Peer): void {
    try {
      const session = this.#session!;
      const peer = this.#spec.peer;
      if (from.port !== peer.port || from.address !== peer.address) return this.#stranger(msg, from);
      const block = peekAck(msg);
      if (block >= 0) return session.ack(block);
      session.onPacket(decodeTftp(msg));
    } catch (err) {
      if (err instanceof DecodeError) return this.#env.count(`tftp-${err.code}`);
      this.#env.internalError(err);
      this.stop('aborted');
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
    this.#env.count('tftp-unknown-tid');
    if (isTftpError(msg) || from.address !== this.#spec.peer.address || !this.#env.strangerReplies.take()) return;
    const b = encodeTftp({ kind: 'error', code: TftpErrorCode.UNKNOWN_TID, message: 'Unknown transfer ID' });
    this.#socket!.send(b, 0, b.length, from);
  }

  #fail(reason: 'no-socket' | 'read-error'): void {
    if (this.#state === 'ended') return this.#release();
    this.#state = 'ended';
    this.#release();
    this.#events.end({ kind: 'failed', reason });
  }

  #end(summary: SessionSummary): void {
    if (this.#state === 'ended') return this.#release();
    this.#state = 'ended';
    this.#release();
    this.#events.end({ kind: 'ended', summary });
  }

  /** Free the socket (idempotent). */
  #release(): void {
    const socket = this.#socket;
    this.#socket = null;
    if (socket) void socket.close();
  }
}
