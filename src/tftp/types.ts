import type { Refusal } from '../files/root.js';
import type { DatagramTrouble } from '../net/datagram.js';
import type { DecodeErrorCode } from '../wire/reader.js';
import type { SessionOutcome } from './session.js';

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
