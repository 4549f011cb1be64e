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

/** Positional reads on a descriptor the server opened. */
function descriptorSource(fd: number, size: number): BlockSource {
  return {
    size,
    readv: (buffers, position) =>
      new Promise((resolve, reject) => readv(fd, buffers, position, (err, n) => (err ? reject(err) : resolve(n)))),
  };
}

const runs = new Map<number, RunHandle>();

port.on('message', (m: ToWorker) => {
  try {
    switch (m.t) {
      case 'run': {
        const { id } = m;
        const spec = { ...m, file: descriptorSource(m.fd, m.size) };
        runs.set(
          id,
          startRun(spec, env, {
            started: (negotiated, size) => post({ t: 'started', id, negotiated, size }),
            confirmed: () => post({ t: 'confirmed', id }),
            end: (end) => {
              runs.delete(id);
              flushCounts();
              post({ t: 'end', id, end });
            },
          }),
        );
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
