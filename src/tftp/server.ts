/*
 * Over 300 lines on purpose: this is the whole request path of port 69 (decode, refuse, admit) and
 * the one place where a transfer's end is counted, logged and answered; the parts it hands work to
 * are table.ts (slots), transfer.ts (one transfer and its file), run.ts (its socket and session,
 * here or in a worker: workers.ts) and session.ts (the protocol).
 */
import { Counters, RateLimiter, type CounterSink } from '../core/counters.js';
import { PeerLog, type Logger } from '../core/logger.js';
import { printable } from '../core/text.js';
import type { NameContext } from '../files/remap.js';
import type { FileRoot } from '../files/root.js';
import {
  isRoutineTrouble,
  udpDatagrams,
  type Datagrams,
  type DatagramTrouble,
  type OpenDatagrams,
  type Peer,
} from '../net/datagram.js';
import { DecodeError } from '../wire/reader.js';
import { decodeTftp, encodeTftp, TftpErrorCode, type TftpRequest } from '../wire/tftp-packet.js';
import type { TftpContext, TftpCounter, TftpListen, TransferRunner } from './context.js';
import { readAheadChunk } from './chunks.js';
import type { Negotiated } from './negotiate.js';
import { startRun, type RunEnv, type RunSettings } from './run.js';
import { TransferTable, type TableLimits } from './table.js';
import { refusalError, Transfer, type TransferEnd } from './transfer.js';
import { TransferWorkers } from './workers.js';

export type { TftpListen } from './context.js';

/** What the server tells its owner about each transfer (events, metrics). */
export interface TransferReport {
  client: Peer;
  file: string;
  /** The name as the client asked for it, before `--remap`. */
  requested: string;
  end: TransferEnd;
}

export interface TftpServerOptions {
  root: FileRoot;
  listen: readonly TftpListen[];
  limits: TableLimits;
  idleTimeoutMs: number;
  /** Largest window granted (RFC 7440), and its byte bound. */
  maxWindow?: number;
  maxWindowBytes?: number;
  /** Packets an unconfirmed transfer may send, and how long it may wait for its first ACK. */
  unconfirmedMaxSends?: number;
  unconfirmedLifeMs?: number;
  log: Logger;
  /** The daemon-wide cap for peer-caused lines; a private one by default. */
  lines?: PeerLog;
  counters?: CounterSink<TftpCounter>;
  /** Socket factory; tests pass a lossy one. */
  openDatagrams?: OpenDatagrams;
  /** Called when a transfer starts and when it ends (events and metrics). */
  onTransferStart?: (client: Peer, file: string, size: number, requested: string, cache?: 'hit' | 'miss') => void;
  /** What is known about the client at this address (`--remap`'s `${mac}`, `${arch}`). */
  nameContext?: (client: Peer) => NameContext;
  onTransferEnd?: (r: TransferReport) => void;
  /**
   * Threads that run transfers (src/tftp/workers.ts), started by `serve()`; 0 runs every transfer
   * on the main thread. Default 0.
   */
  workers?: number;
}

/** Defaults, chosen so that a rack switched on at once is served and a flood of liars is not. */
export const TFTP_DEFAULTS = {
  /** Enough for a 500-machine storm with room to spare (`make storm`); memory is bounded by `readAheadBytes`. */
  maxTransfers: 1024,
  /**
   * As many as the table: in a boot storm hundreds of real RRQs arrive before the first ACKs are
   * read, and a smaller budget evicts real clients (test/storm). Liars still get 4 packets each, and
   * a new request takes the oldest unconfirmed slot when the table is full, once that slot is older
   * than `unconfirmedGraceMs`.
   */
  maxUnconfirmed: 1024,
  /** A real client's first ACK can queue for a while in a storm: no eviction before this age. */
  unconfirmedGraceMs: 1000,
  /**
   * The read-ahead budget: a transfer reads chunks of this / (4 × transfers when it starts), from
   * 16 KiB to 256 KiB, and keeps that size; so N transfers started together hold about this ×
   * (1 + ln(N / 64)) at most (about 195 MiB at 500; `make storm` N=500 peaked at 159 MiB RSS).
   */
  readAheadBytes: 64 * 1024 * 1024,
  maxPerAddress: 64,
  maxUnconfirmedPerAddress: 32,
  /** The first packet, then retransmissions at the adaptive timeout (1 s, 2 s, 2 s) within the life. */
  unconfirmedMaxSends: 4,
  unconfirmedLifeMs: 6000,
  /** Three transfers that never heard an ACK, and the address is left alone for 30 s. */
  suspectStrikes: 3,
  suspectMs: 30_000,
  maxWindow: 64,
  /** Bytes in flight per transfer: also what one ACK, forged or not, can release. */
  maxWindowBytes: 64 * 1024,
  /** netascii is for text; larger files are refused rather than converted. */
  netasciiMaxBytes: 64 * 1024 * 1024,
  /**
   * ERROR 5 answers to strangers on transfer ports, per second and in a burst, for the main thread's
   * transfers; transfer workers, when there are any, share as much again.
   */
  strangerRepliesPerSecond: 20,
  strangerRepliesBurst: 50,
  /** At most one "TFTP saturated" warn line (with counts) this often. */
  saturationLogMs: 10_000,
} as const;

/**
 * The read-only TFTP server: owns its listeners (port 69, one per interface) and the transfer table.
 * A request is decoded and admitted here; everything after that belongs to its `Transfer`.
 */
export class TftpServer {
  readonly counters: CounterSink<TftpCounter>;
  readonly #o: TftpServerOptions;
  readonly #lines: PeerLog;
  readonly #table: TransferTable<Transfer>;
  readonly #listeners: Datagrams[] = [];
  readonly #openDatagrams: OpenDatagrams;
  readonly #strangerReplies = new RateLimiter(
    TFTP_DEFAULTS.strangerRepliesPerSecond,
    TFTP_DEFAULTS.strangerRepliesBurst,
  );
  #closing = false;
  #workers: TransferWorkers | null = null;
  /** Where transfers run: the workers when there are any, else `#local`. */
  #runner: TransferRunner;
  readonly #local: TransferRunner;
  /** Refusals and evictions since the last saturation line (see `#saturated`). */
  readonly #saturation: { refused: number; evicted: number; lastLine: number; timer?: NodeJS.Timeout } = {
    refused: 0,
    evicted: 0,
    lastLine: 0,
  };

  private constructor(o: TftpServerOptions) {
    this.#o = o;
    this.counters = o.counters ?? new Counters<TftpCounter>();
    this.#lines = o.lines ?? new PeerLog(o.log);
    this.#table = new TransferTable<Transfer>(o.limits, () => performance.now());
    this.#openDatagrams = o.openDatagrams ?? udpDatagrams((kind, detail) => this.#trouble(kind, detail));
    const env: RunEnv = {
      settings: this.#settings(),
      openDatagrams: this.#openDatagrams,
      strangerReplies: this.#strangerReplies,
      count: (key) => this.counters.count(key),
      internalError: (err) => this.#internalError(err),
    };
    this.#local = { run: (file, spec, events) => startRun({ ...spec, file }, env, events) };
    this.#runner = this.#local;
  }

  #settings(): RunSettings {
    const o = this.#o;
    return {
      negotiation: {
        maxWindow: o.maxWindow ?? TFTP_DEFAULTS.maxWindow,
        maxWindowBytes: o.maxWindowBytes ?? TFTP_DEFAULTS.maxWindowBytes,
      },
      idleTimeoutMs: o.idleTimeoutMs,
      unconfirmedMaxSends: o.unconfirmedMaxSends ?? TFTP_DEFAULTS.unconfirmedMaxSends,
      unconfirmedLifeMs: o.unconfirmedLifeMs ?? TFTP_DEFAULTS.unconfirmedLifeMs,
      netasciiMaxBytes: TFTP_DEFAULTS.netasciiMaxBytes,
    };
  }

  /**
   * Bind every listener; nothing is answered until `serve()`, so a daemon can bind as root, drop
   * privileges, and only then let requests in. @throws UserError when a listener cannot be bound
   * (nothing stays open then)
   */
  static async bind(o: TftpServerOptions): Promise<TftpServer> {
    const server = new TftpServer(o);
    await server.#bind();
    return server;
  }

  /** Bind and serve at once (tests, tools). */
  static async start(o: TftpServerOptions): Promise<TftpServer> {
    const server = await TftpServer.bind(o);
    server.serve();
    return server;
  }

  /** Start the transfer workers, if any, and answer requests. */
  serve(): void {
    if ((this.#o.workers ?? 0) > 0 && !this.#workers) this.#startWorkers(this.#o.workers!);
    for (const [i, socket] of this.#listeners.entries()) {
      const ctx = this.#context(this.#o.listen[i]!);
      socket.onMessage((msg, from) => {
        try {
          this.#onRequest(ctx, socket, msg, from);
        } catch (err) {
          this.#internalError(err);
        }
      });
    }
  }

  /** Bound listener ports, in `listen` order. */
  get ports(): number[] {
    return this.#listeners.map((t) => t.port);
  }

  /** Transfers in progress (opening ones included). */
  get active(): number {
    return this.#table.size;
  }

  /** Of those, the ones whose peer has not ACKed yet. */
  get unconfirmed(): number {
    return this.#table.unconfirmed;
  }

  /** Transfer workers running (0 when transfers run on the main thread). */
  get workers(): number {
    return this.#workers?.size ?? 0;
  }

  /** End transfer worker `i` as a crash would (tests of what follows a crash). */
  async stopWorkerForTest(i: number): Promise<void> {
    await this.#workers?.kill(i);
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#saturation.timer);
    for (const t of [...this.#table.values()]) t.abort();
    await Promise.all([...this.#listeners.map((l) => l.close()), this.#workers?.close()]);
  }

  #startWorkers(n: number): void {
    this.#workers = new TransferWorkers({
      workers: n,
      settings: this.#settings(),
      strangerReplies: {
        perSecond: TFTP_DEFAULTS.strangerRepliesPerSecond,
        burst: TFTP_DEFAULTS.strangerRepliesBurst,
      },
      local: this.#local,
      count: (key, k) => this.counters.count(key, k),
      internalError: (err) => this.#internalError(err),
      trouble: (kind, detail) => this.#trouble(kind, detail),
      workerLost: (detail, replaced) => {
        this.counters.count('tftp-internal-error');
        const next = replaced
          ? 'another takes its place'
          : 'it stopped too often: the others, or the main thread, serve';
        this.#o.log.error(`TFTP transfer worker stopped; its transfers failed, ${next}`, {
          detail: printable(detail),
        });
      },
    });
    this.#runner = this.#workers;
  }

  async #bind(): Promise<void> {
    const shared = this.#o.listen.length > 1;
    try {
      for (const l of this.#o.listen) {
        const socket = await this.#openDatagrams({
          address: l.address,
          port: l.port,
          reuseAddr: shared,
          purpose: 'TFTP',
          ...(l.device ? { device: l.device } : {}),
        });
        this.#listeners.push(socket);
      }
    } catch (err) {
      await Promise.all(this.#listeners.map((t) => t.close()));
      throw err;
    }
  }

  #context(listen: TftpListen): TftpContext {
    return {
      root: this.#o.root,
      listen,
      runner: { run: (file, spec, events) => this.#runner.run(file, spec, events) },
      chunkBytes: () => readAheadChunk(TFTP_DEFAULTS.readAheadBytes, this.#table.size),
      onStarted: (t, n, size) => this.#started(t, n, size),
      onConfirmed: (t) => this.#table.confirm(t),
      nameContext: this.#o.nameContext,
    };
  }

  #onRequest(ctx: TftpContext, via: Datagrams, msg: Buffer, from: Peer): void {
    let p;
    try {
      p = decodeTftp(msg);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.counters.count(`tftp-${err.code}`);
      this.#lines.line('debug', 'malformed TFTP request dropped', { client: clientOf(from), reason: err.code });
      return;
    }
    // Only requests are answered on port 69; an ERROR or a stray DATA/ACK gets nothing back.
    if (p.kind === 'wrq') return this.#refuseWrite(via, from, p);
    if (p.kind !== 'rrq') return this.counters.count('tftp-not-a-request');
    const existing = this.#table.get(clientOf(from));
    if (existing) {
      // A repeated RRQ from the same TID is a retransmission, not a second transfer.
      this.counters.count('tftp-duplicate-request');
      return existing.onDuplicateRequest();
    }
    if (p.mode !== 'octet' && p.mode !== 'netascii') {
      this.counters.count('tftp-bad-mode');
      return this.#sendError(via, from, TftpErrorCode.ILLEGAL_OPERATION, 'Unsupported mode');
    }
    this.#admit(ctx, via, from, p);
  }

  #admit(ctx: TftpContext, via: Datagrams, from: Peer, req: TftpRequest): void {
    const admission = this.#closing ? ({ ok: false, why: 'busy' } as const) : this.#table.admit(from.address);
    if (!admission.ok && admission.why === 'suspect') {
      // Its earlier transfers never heard an ACK: likely a forged source. Not a word back to it.
      return this.counters.count('tftp-suspect');
    }
    if (!admission.ok) {
      this.counters.count(`tftp-${admission.why}`);
      this.#lines.line('debug', 'TFTP request refused: too many transfers', {
        client: clientOf(from),
        active: this.#table.size,
        why: admission.why,
      });
      if (!this.#closing) this.#saturated('refused');
      return this.#sendError(via, from, TftpErrorCode.NOT_DEFINED, 'Server busy, try again');
    }
    if (admission.evicted) this.#saturated('evicted');
    const t = new Transfer(ctx, from, req, (done, end) => this.#ended(via, done, end));
    this.#table.add(t);
    void t.start();
  }

  /**
   * The server is at a limit: say so at warn, at most once per `saturationLogMs`, with the counts
   * since the previous line, so an operator sees a storm or a flood and not only slow boots.
   */
  #saturated(kind: 'refused' | 'evicted'): void {
    const s = this.#saturation;
    s[kind]++;
    const wait = s.lastLine + TFTP_DEFAULTS.saturationLogMs - Date.now();
    if (wait <= 0) return this.#saturationLine();
    // Within the quiet period: the counts go out in one line when it ends.
    s.timer ??= setTimeout(() => {
      s.timer = undefined;
      this.#saturationLine();
    }, wait).unref();
  }

  #saturationLine(): void {
    const s = this.#saturation;
    const now = Date.now();
    this.#o.log.warn('TFTP saturated: requests refused (Server busy) or unconfirmed transfers evicted', {
      active: this.#table.size,
      unconfirmed: this.#table.unconfirmed,
      'max-transfers': this.#table.limits.maxTransfers,
      'max-unconfirmed': this.#table.limits.maxUnconfirmed,
      refused: s.refused,
      evicted: s.evicted,
      seconds: s.lastLine === 0 ? 0 : Math.round((now - s.lastLine) / 1000),
    });
    s.lastLine = now;
    s.refused = 0;
    s.evicted = 0;
  }

  #refuseWrite(via: Datagrams, from: Peer, p: TftpRequest): void {
    this.counters.count('tftp-write-refused');
    this.#lines.line('info', 'TFTP write refused (read-only server)', {
      client: clientOf(from),
      file: printable(p.filename),
    });
    this.#sendError(via, from, TftpErrorCode.ACCESS_VIOLATION, 'Server is read-only');
  }

  #started(t: Transfer, negotiated: Negotiated, size: number): void {
    this.counters.count('tftp-transfer-started');
    this.#lines.line('debug', 'TFTP transfer starting', {
      client: t.key,
      file: t.name,
      oack: Object.fromEntries(negotiated.oack),
    });
    this.#o.onTransferStart?.(t.peer, t.name, size, t.request.filename, t.cache);
  }

  /** Every transfer's one end: free the slot, count, log through the cap, answer a refusal. */
  #ended(via: Datagrams, t: Transfer, end: TransferEnd): void {
    this.#table.remove(t);
    const unconfirmed =
      (end.kind === 'ended' && (end.summary.outcome === 'unconfirmed' || end.summary.outcome === 'evicted')) ||
      (end.kind === 'stopped' && end.outcome === 'evicted');
    if (unconfirmed) this.#table.strike(t.address);
    this.#o.onTransferEnd?.({ client: t.peer, file: t.name, requested: t.request.filename, end });
    const client = t.key;
    switch (end.kind) {
      case 'refused': {
        this.counters.count(`tftp-${end.reason}`);
        const level = end.reason === 'not-found' ? 'debug' : 'info';
        this.#lines.line(level, 'TFTP request refused', { client, file: printable(t.name), reason: end.reason });
        const e = refusalError(end.reason);
        if (!this.#closing) this.#sendError(via, t.peer, e.code, e.message);
        return;
      }
      case 'failed':
        this.counters.count(end.reason === 'no-socket' ? 'tftp-no-socket' : 'tftp-read-failed');
        this.#lines.line('warn', 'TFTP transfer could not start', {
          client,
          file: printable(t.name),
          reason: end.reason,
        });
        if (!this.#closing) this.#sendError(via, t.peer, TftpErrorCode.NOT_DEFINED, 'Server error');
        return;
      case 'stopped':
        this.counters.count(`tftp-${end.outcome}`);
        return;
      case 'ended':
        return this.#logEnd(t, end.summary);
    }
  }

  #logEnd(t: Transfer, s: Extract<TransferEnd, { kind: 'ended' }>['summary']): void {
    this.counters.count(`tftp-${s.outcome}`);
    const fields = {
      client: t.key,
      file: t.name,
      bytes: s.bytes,
      seconds: Number((s.ms / 1000).toFixed(3)),
      blksize: s.blockSize,
      windowsize: s.windowSize,
      retransmits: s.retransmits,
    };
    if (s.outcome === 'client-error' && s.duringNegotiation) {
      this.#lines.line('debug', 'TFTP size probe ended by client', fields);
    } else if (s.outcome === 'done') {
      this.#lines.line('info', 'TFTP transfer complete', fields);
    } else if (s.outcome === 'unconfirmed' || s.outcome === 'evicted') {
      this.#lines.line('debug', 'TFTP transfer never acknowledged', {
        ...fields,
        outcome: s.outcome,
        sent: s.packetsSent,
      });
    } else {
      const clientError = s.clientError ? { 'client-error': printable(s.clientError.message) } : {};
      this.#lines.line('info', 'TFTP transfer ended', { ...fields, outcome: s.outcome, ...clientError });
    }
  }

  /** A bug of ours met while handling one packet: that packet is dropped, the server serves on. */
  #internalError(err: unknown): void {
    this.counters.count('tftp-internal-error');
    this.#lines.line('error', 'TFTP handler failed', { error: printable(String(err)) });
  }

  #sendError(via: Datagrams, to: Peer, code: number, message: string): void {
    const b = encodeTftp({ kind: 'error', code, message });
    via.send(b, 0, b.length, to);
  }

  #trouble(kind: DatagramTrouble, detail: string): void {
    this.counters.count(`tftp-${kind}`);
    this.#lines.line(isRoutineTrouble(kind) ? 'debug' : 'warn', `TFTP ${kind}`, { detail: printable(detail) });
  }
}

function clientOf(p: Peer): string {
  return `${p.address}:${p.port}`;
}
