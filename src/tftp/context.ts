import type { RateLimiter } from '../core/counters.js';
import type { NameContext } from '../files/remap.js';
import type { Refusal, FileRoot } from '../files/root.js';
import type { Datagrams, DatagramTrouble, OpenDatagrams, Peer } from '../net/datagram.js';
import type { DecodeErrorCode } from '../wire/reader.js';
import type { Negotiated, NegotiationLimits } from './negotiate.js';
import type { SessionOutcome } from './session.js';
import type { Transfer } from './transfer.js';

/** Every TFTP counter, by name: a typo or a name built from client data does not compile. */
export type TftpCounter =
  | 'tftp-transfer-started'
  | `tftp-${SessionOutcome}`
  | `tftp-${Refusal}`
  | `tftp-${DecodeErrorCode}`
  | `tftp-${DatagramTrouble}`
  | 'tftp-busy'
  | 'tftp-address-busy'
  | 'tftp-suspect'
  | 'tftp-write-refused'
  | 'tftp-not-a-request'
  | 'tftp-bad-mode'
  | 'tftp-duplicate-request'
  | 'tftp-unknown-tid'
  | 'tftp-netascii-too-big'
  | 'tftp-no-socket'
  | 'tftp-read-failed'
  | 'tftp-internal-error';

/** One port-69 socket: an interface (with -i) or the bind address. */
export interface TftpListen {
  /** Address the listener binds (0.0.0.0 in the daemon). */
  address: string;
  port: number;
  device?: { name: string; index: number };
  /** Local address transfer sockets bind to, so replies leave from the address the client knows. */
  transferAddress: string;
  /** Egress MTU: blksize is clamped to MTU − 32. */
  mtu: number;
}

/** What a transfer needs from its server: settings, shared limiters and the server's bookkeeping. */
export interface TftpContext {
  readonly root: FileRoot;
  readonly listen: TftpListen;
  readonly openDatagrams: OpenDatagrams;
  readonly negotiation: Omit<NegotiationLimits, 'mtu' | 'fileSize'>;
  readonly idleTimeoutMs: number;
  readonly unconfirmedMaxSends: number;
  readonly unconfirmedLifeMs: number;
  readonly netasciiMaxBytes: number;
  /** Shared by every transfer: answers to strangers on transfer ports. */
  readonly strangerReplies: RateLimiter;
  count(key: TftpCounter): void;
  /** Our own bug met while handling one packet: counted and logged once, never thrown. */
  internalError(err: unknown): void;
  sendError(via: Datagrams, to: Peer, code: number, message: string): void;
  onStarted(t: Transfer, negotiated: Negotiated, size: number): void;
  onConfirmed(t: Transfer): void;
  /** What is known about a client (for `--remap`); only its address when absent. */
  readonly nameContext?: ((client: Peer) => NameContext) | undefined;
}
