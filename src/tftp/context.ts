import type { NameContext } from '../files/remap.js';
import type { FileRoot, OpenFile } from '../files/root.js';
import type { Peer } from '../net/datagram.js';
import type { Negotiated } from './negotiate.js';
import type { RunEvents, RunHandle, RunSpec } from './run.js';
import type { Transfer } from './transfer.js';
import type { TftpListen } from './types.js';

export type { TftpCounter, TftpListen } from './types.js';

/** Where a transfer's run goes once its file is open: this thread, or a transfer worker. */
export interface TransferRunner {
  run(file: OpenFile, spec: Omit<RunSpec, 'file'>, events: RunEvents): RunHandle;
}

/** What a transfer needs from its server: its root, its listener, a runner and the server's bookkeeping. */
export interface TftpContext {
  readonly root: FileRoot;
  readonly listen: TftpListen;
  readonly runner: TransferRunner;
  /** Bytes per file read for a transfer starting now (the read-ahead budget's share). */
  chunkBytes(): number;
  onStarted(t: Transfer, negotiated: Negotiated, size: number): void;
  onConfirmed(t: Transfer): void;
  /** What is known about a client (for `--remap`); only its address when absent. */
  readonly nameContext?: ((client: Peer) => NameContext) | undefined;
}
