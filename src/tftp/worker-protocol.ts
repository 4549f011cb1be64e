import type { DatagramTrouble, Peer } from '../net/datagram.js';
import type { TftpOptions } from '../wire/tftp-packet.js';
import type { Negotiated } from './negotiate.js';
import type { RunEnd, RunSettings } from './run.js';
import type { TftpCounter, TftpListen } from './types.js';

/**
 * The messages between the server and its transfer workers (src/tftp/workers.ts, worker-main.ts).
 * They cross a thread boundary by structured clone: plain data, Maps included, no functions.
 */

/** What a worker is started with. */
export interface WorkerSetup {
  settings: RunSettings;
  /** This worker's share of the answers to strangers on transfer ports. */
  strangerReplies: { perSecond: number; burst: number };
}

/** Server to worker. */
export type ToWorker =
  | {
      t: 'run';
      id: number;
      /** The open file's descriptor: the server owns it and closes it after this run's `end`. */
      fd: number;
      size: number;
      peer: Peer;
      mode: 'octet' | 'netascii';
      options: TftpOptions;
      listen: Pick<TftpListen, 'transferAddress' | 'mtu'>;
      chunkBytes?: number;
    }
  | { t: 'duplicate'; id: number }
  | { t: 'stop'; id: number; outcome: 'evicted' | 'aborted' };

/** Worker to server. */
export type FromWorker =
  | { t: 'started'; id: number; negotiated: Negotiated; size: number }
  | { t: 'confirmed'; id: number }
  | { t: 'end'; id: number; end: RunEnd }
  | { t: 'counts'; counts: [TftpCounter, number][] }
  | { t: 'internal-error'; error: string }
  | { t: 'trouble'; kind: DatagramTrouble; detail: string };
