/**
 * A transfer worker's thread: it runs the transfers the server hands it (src/tftp/run.ts), each with
 * its own socket, and reports back their start, confirmation and end. Files stay the server's: the
 * worker reads them through the descriptor it is given and never closes one.
 */
import { readv } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { RateLimiter } from '../core/counters.js';
import { udpDatagrams } from '../net/datagram.js';
import type { BlockSource } from './chunks.js';
import { startRun, type RunEnv, type RunHandle } from './run.js';
import type { TftpCounter } from './types.js';
import type { FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

const port = parentPort!;
const setup = workerData as WorkerSetup;
const post = (m: FromWorker): void => port.postMessage(m);

/** Counters go back in batches; a batch always precedes the `end` that follows its counts. */
const pendingCounts = new Map<TftpCounter, number>();
let flushTimer: NodeJS.Timeout | undefined;

function flushCounts(): void {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  if (pendingCounts.size === 0) return;
  post({ t: 'counts', counts: [...pendingCounts] });
  pendingCounts.clear();
}

const env: RunEnv = {
  settings: setup.settings,
  openDatagrams: udpDatagrams((kind, detail) => post({ t: 'trouble', kind, detail })),
  strangerReplies: new RateLimiter(setup.strangerReplies.perSecond, setup.strangerReplies.burst),
  count: (key) => {
    pendingCounts.set(key, (pendingCounts.get(key) ?? 0) + 1);
    flushTimer ??= setTimeout(flushCounts, 100);
  },
  internalError: (err) => post({ t: 'internal-error', error: String(err) }),
};

/**
 * Positional reads on a descriptor the server opened. The server closes it once told the run has
 * ended, and the number may then name another file: so after `close()` no read starts, and
 * `drained` resolves only when the reads already in flight have landed.
 */
class DescriptorSource implements BlockSource {
  readonly size: number;
  readonly #fd: number;
  #inFlight = 0;
  #closed = false;
  #drain: (() => void) | null = null;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
  }

  readv(buffers: Buffer[], position: number): Promise<number> {
    if (this.#closed) return Promise.reject(new Error('transfer ended'));
    this.#inFlight++;
    return new Promise((resolve, reject) =>
      readv(this.#fd, buffers, position, (err, n) => {
        if (--this.#inFlight === 0) this.#drain?.();
        if (err) reject(err);
        else resolve(n);
      }),
    );
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drain = resolve));
  }
}

const runs = new Map<number, RunHandle>();

port.on('message', (m: ToWorker) => {
  try {
    switch (m.t) {
      case 'run': {
        const { id } = m;
        const file = new DescriptorSource(m.fd, m.size);
        let ended = false;
        const handle = startRun({ ...m, file }, env, {
          started: (negotiated, size) => post({ t: 'started', id, negotiated, size }),
          confirmed: () => post({ t: 'confirmed', id }),
          end: (end) => {
            ended = true;
            runs.delete(id);
            // The server closes the descriptor on `end`: not before our reads of it have landed.
            void file.close().then(() => {
              flushCounts();
              post({ t: 'end', id, end });
            });
          },
        });
        if (!ended) runs.set(id, handle);
        return;
      }
      case 'duplicate':
        return runs.get(m.id)?.duplicateRequest();
      case 'stop':
        return runs.get(m.id)?.stop(m.outcome);
    }
  } catch (err) {
    env.internalError(err);
  }
});
