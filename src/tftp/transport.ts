import type { Socket } from 'node:dgram';
import { closeUdp, openUdp, type UdpOptions } from '../net/udp.js';

/** Where a datagram came from. */
export interface Peer {
  address: string;
  port: number;
}

/**
 * The few socket operations the TFTP server uses. Production wraps a dgram socket directly; tests
 * substitute a lossy, duplicating or reordering one without touching the server.
 */
export interface Transport {
  readonly port: number;
  send(buf: Buffer, offset: number, length: number, port: number, address: string): void;
  onMessage(handler: (msg: Buffer, from: Peer) => void): void;
  close(): Promise<void>;
}

export type OpenTransport = (o: UdpOptions) => Promise<Transport>;

/** A Transport over a bound dgram socket. Send errors (e.g. ENOBUFS) surface as lost packets. */
export function socketTransport(socket: Socket, onError: (err: Error) => void): Transport {
  socket.on('error', onError);
  return {
    port: socket.address().port,
    send: (buf, offset, length, port, address) => socket.send(buf, offset, length, port, address),
    onMessage: (handler) => socket.on('message', handler),
    close: () => closeUdp(socket),
  };
}

/** Bind a real UDP socket. @throws UserError when it cannot be bound */
export function udpTransport(onError: (err: Error) => void): OpenTransport {
  return async (o) => socketTransport(await openUdp(o), onError);
}
