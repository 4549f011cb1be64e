import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { OpenFile } from '../files/root.js';
import type { DatagramTrouble } from '../net/datagram.js';
import type { TransferRunner } from './context.js';
import type { RunEvents, RunHandle, RunSettings, RunSpec } from './run.js';
import type { TftpCounter } from './types.js';
import type { FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

/**
 * Transfer workers: threads that run transfers, so that with many clients TFTP uses more than one
 * core while the main thread keeps the port-69 listeners, the transfer table and DHCP. The server
 * decides and owns (admission, the open file, the end's accounting); a worker only moves packets.
 * A file that is still arriving from upstream has no finished descriptor to share and runs on the
 * main thread, as every transfer does when there are no workers.
 */

export interface TransferWorkersOptions {
  workers: number;
  settings: RunSettings;
  /** Answers to strangers on transfer ports, for all workers together. */
  strangerReplies: { perSecond: number; burst: number };
  /** Where a transfer runs when no worker can take it. */
  local: TransferRunner;
  count(key: TftpCounter, n: number): void;
  internalError(err: unknown): void;
  trouble(kind: DatagramTrouble, detail: string): void;
  /** A worker stopped (a bug of ours); its transfers ended as failed; `replaced` unless it stopped too often. */
  workerLost(detail: string, replaced: boolean): void;
}

/** A worker found dead this many times within `RESPAWN_WINDOW_MS` is not started again. */
const MAX_RESPAWNS = 5;
const RESPAWN_WINDOW_MS = 60_000;

/**
 * A worker thread on the entry next to this file: the compiled `.js`; or, when the tests run this
 * file from `src/` through tsx, the `.ts` source, with tsx's loader registered in the new thread
 * first (loader hooks are per thread).
 */
function newWorker(options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker-main.js', import.meta.url), options);
  const entry = new URL('./worker-main.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

class Lane {
  readonly runs = new Map<number, RunEvents>();
  readonly worker: Worker;
  alive = true;

  constructor(worker: Worker) {
    this.worker = worker;
  }

  post(m: ToWorker): void {
    if (this.alive) this.worker.postMessage(m);
  }
}

export class TransferWorkers implements TransferRunner {
  readonly #o: TransferWorkersOptions;
  readonly #lanes: Lane[] = [];
  readonly #deaths: number[] = [];
  #nextId = 1;
  #closing = false;

  constructor(o: TransferWorkersOptions) {
    this.#o = o;
    for (let i = 0; i < o.workers; i++) this.#lanes.push(this.#spawn());
  }

  /** Workers running now. */
  get size(): number {
    return this.#lanes.filter((l) => l.alive).length;
  }

  run(file: OpenFile, spec: Omit<RunSpec, 'file'>, events: RunEvents): RunHandle {
    const fd = file.arriving ? undefined : file.fd;
    const lane = fd === undefined ? undefined : this.#leastBusy();
    if (fd === undefined || !lane) return this.#o.local.run(file, spec, events);
    const id = this.#nextId++;
    lane.runs.set(id, events);
    lane.post({
      t: 'run',
      id,
      fd,
      size: file.size,
      peer: spec.peer,
      mode: spec.mode,
      options: spec.options,
      listen: { transferAddress: spec.listen.transferAddress, mtu: spec.listen.mtu },
      ...(spec.chunkBytes !== undefined ? { chunkBytes: spec.chunkBytes } : {}),
    });
    return {
      duplicateRequest: () => lane.post({ t: 'duplicate', id }),
      stop: (outcome) => lane.post({ t: 'stop', id, outcome }),
    };
  }

  /** End worker `i` as a crash would: its transfers fail and another takes its place (tests). */
  async kill(i: number): Promise<void> {
    const lane = this.#lanes[i];
    if (lane) await lane.worker.terminate();
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#lanes.map((l) => l.worker.terminate()));
  }

  #leastBusy(): Lane | undefined {
    let best: Lane | undefined;
    for (const l of this.#lanes) if (l.alive && (!best || l.runs.size < best.runs.size)) best = l;
    return best;
  }

  #spawn(): Lane {
    const o = this.#o;
    const setup: WorkerSetup = {
      settings: o.settings,
      strangerReplies: {
        perSecond: o.strangerReplies.perSecond / o.workers,
        burst: Math.max(1, Math.floor(o.strangerReplies.burst / o.workers)),
      },
    };
    const lane = new Lane(newWorker({ workerData: setup }));
    lane.worker.unref();
    lane.worker.on('message', (m: FromWorker) => {
      try {
        this.#onMessage(lane, m);
      } catch (err) {
        o.internalError(err);
      }
    });
    // An 'error' is followed by 'exit'; the runs end on 'exit', once the thread (and its reads) is gone.
    let error: string | undefined;
    lane.worker.on('error', (err) => (error = String(err)));
    lane.worker.on('exit', (code) => {
      try {
        this.#lost(lane, error ?? `exit code ${code}`);
      } catch (err) {
        o.internalError(err);
      }
    });
    return lane;
  }

  #onMessage(lane: Lane, m: FromWorker): void {
    switch (m.t) {
      case 'started':
        return lane.runs.get(m.id)?.started(m.negotiated, m.size);
      case 'confirmed':
        return lane.runs.get(m.id)?.confirmed();
      case 'end': {
        const events = lane.runs.get(m.id);
        lane.runs.delete(m.id);
        return events?.end(m.end);
      }
      case 'counts':
        for (const [key, n] of m.counts) this.#o.count(key, n);
        return;
      case 'internal-error':
        return this.#o.internalError(m.error);
      case 'trouble':
        return this.#o.trouble(m.kind, m.detail);
    }
  }

  /**
   * A worker is gone: its transfers end as aborted (their sockets died with it; the clients time
   * out and ask again), and another worker takes its place.
   */
  #lost(lane: Lane, detail: string): void {
    if (!lane.alive) return;
    lane.alive = false;
    const runs = [...lane.runs.values()];
    lane.runs.clear();
    for (const events of runs) {
      try {
        events.end({ kind: 'stopped', outcome: 'aborted' });
      } catch (err) {
        this.#o.internalError(err);
      }
    }
    if (this.#closing) return;
    const now = Date.now();
    this.#deaths.push(now);
    while (this.#deaths.length > 0 && now - this.#deaths[0]! > RESPAWN_WINDOW_MS) this.#deaths.shift();
    const replaced = this.#deaths.length <= MAX_RESPAWNS;
    this.#o.workerLost(detail, replaced);
    if (replaced) this.#lanes[this.#lanes.indexOf(lane)] = this.#spawn();
  }
}
