import type { Refusal, OpenFile } from '../files/root.js';
import type { Peer } from '../net/datagram.js';
import { TftpErrorCode, type TftpRequest } from '../wire/tftp-packet.js';
import type { TftpContext } from './context.js';
import type { RunEnd, RunHandle } from './run.js';
import type { Slot } from './table.js';

/** The end of a transfer, reported once: its run's end, or the file was refused. */
export type TransferEnd = RunEnd | { kind: 'refused'; reason: Refusal };

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

/**
 * One read transfer and what it owns: the open file, and the run that serves it (src/tftp/run.ts:
 * its socket, session and timers), on this thread or in a transfer worker. Every way it can end
 * (done, client error, timeout, eviction, shutdown, a failure while opening) goes through `#finish`,
 * which closes the file once the run has let go of it and reports once; so a failing transfer cannot
 * leak a slot, a descriptor or a timer.
 */
export class Transfer implements Slot {
  readonly key: string;
  readonly address: string;
  readonly peer: Peer;
  readonly request: TftpRequest;
  /** Name as resolved in the root (set once open), else as requested. */
  name: string;
  /** Whether the file came from the upstream cache (`hit`) or the mirror (`miss`); unset when local. */
  cache: 'hit' | 'miss' | undefined = undefined;
  readonly #ctx: TftpContext;
  readonly #onEnd: (t: Transfer, end: TransferEnd) => void;
  #state: 'opening' | 'running' | 'ended' = 'opening';
  #file: OpenFile | null = null;
  #run: RunHandle | null = null;

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

  /** Open the file and hand it to a run. Never rejects. */
  async start(): Promise<void> {
    try {
      const client = this.#ctx.nameContext?.(this.peer) ?? { ip: this.peer.address };
      const opened = await this.#ctx.root.open(this.request.filename, client);
      if (!opened.ok) return this.#finish({ kind: 'refused', reason: opened.reason });
      this.#file = opened.file;
      this.name = opened.file.name;
      this.cache = opened.file.cache;
      if (this.#state === 'ended') return this.#release();
      this.#state = 'running';
      const spec = {
        peer: this.peer,
        mode: this.request.mode === 'netascii' ? ('netascii' as const) : ('octet' as const),
        options: this.request.options,
        listen: this.#ctx.listen,
        chunkBytes: this.#ctx.chunkBytes(),
      };
      this.#run = this.#ctx.runner.run(opened.file, spec, {
        started: (negotiated, size) => this.#ctx.onStarted(this, negotiated, size),
        confirmed: () => this.#ctx.onConfirmed(this),
        end: (end) => this.#finish(end),
      });
    } catch {
      this.#finish({ kind: 'failed', reason: 'read-error' });
    }
  }

  /** The client repeated its RRQ from the same TID. */
  onDuplicateRequest(): void {
    this.#run?.duplicateRequest();
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
    // A run ends through its own `end`, which closes the file once the run no longer reads it.
    if (this.#run) return this.#run.stop(outcome);
    if (this.#state === 'opening') {
      // The open in flight releases what it opened when it lands and sees the state.
      this.#state = 'ended';
      this.#onEnd(this, { kind: 'stopped', outcome });
    }
  }

  #finish(end: TransferEnd): void {
    if (this.#state === 'ended') return this.#release();
    this.#state = 'ended';
    this.#release();
    this.#onEnd(this, end);
  }

  /** Close the file (idempotent); called once the run has ended, when it reads the file no more. */
  #release(): void {
    const file = this.#file;
    this.#file = null;
    this.#run = null;
    if (file) void file.close();
  }
}
