import type { Socket } from 'node:dgram';
import { closeUdp, connectUdp, openUdp, setSocketOption, type UdpOptions } from '../net/udp.js';

const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SOL_UDP = 17;
/** Linux ≥ 4.18, udp(7): the kernel cuts one send into datagrams of this size (UDP GSO). */
const UDP_SEGMENT = 103;
/** Kernel limits on one segmented send: UDP_MAX_SEGMENTS (64 before Linux 6.x) and the UDP length. */
const MAX_SEGMENTS = 64;
const MAX_UDP_PAYLOAD = 65507;

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
  /**
   * Let one send to the peer carry several datagrams of `size` bytes laid end to end (the last may
   * be shorter). Returns how many fit in one send, 1 when the kernel cannot segment. Should a
   * segmented send fail later (a device without checksum offload), the transport resends its
   * datagrams one by one and calls `onFallback`: from then on the caller sends one per call.
   */
  segment?(size: number, onFallback: () => void): number;
}

export interface TransportOptions extends UdpOptions {
  /** A transfer socket's client (its TID): the socket is connected to it, see `connectedTransport`. */
  peer?: Peer;
}

export type OpenTransport = (o: TransportOptions) => Promise<Transport>;

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

/** Bind a real UDP socket (connected when `peer` is given). @throws UserError when it cannot be bound */
export function udpTransport(onError: (err: Error) => void): OpenTransport {
  return async (o) => (o.peer ? connectedTransport(o, o.peer, onError) : socketTransport(await openUdp(o), onError));
}

/**
 * A transfer socket connected to the client's TID. Node resolves the address of every datagram an
 * unconnected socket sends (a lookup and a deferred send) and the kernel routes each one; a
 * connected socket skips both, which made lockstep transfers 1.7 times as fast in `make bench-tftp`.
 * A connected socket no longer receives other senders' packets, but RFC 1350 §4 has them answered
 * with ERROR 5, so a sibling socket shares the port and gets everything not from the client (the
 * kernel prefers the connected socket for the client's own packets). SO_REUSEADDR is set only
 * after the port was allocated exclusively, so no other transfer is ever handed the same port.
 * If any of this fails the plain unconnected socket serves the transfer.
 */
async function connectedTransport(o: UdpOptions, peer: Peer, onError: (err: Error) => void): Promise<Transport> {
  const main = await openUdp({ ...o, reuseAddr: false });
  let sibling: Socket | null = null;
  try {
    setSocketOption(main, SOL_SOCKET, SO_REUSEADDR, 1);
    sibling = await openUdp({ ...o, port: main.address().port, reuseAddr: true });
    await connectUdp(main, peer);
  } catch (err) {
    onError(err as Error);
    if (sibling) await closeUdp(sibling);
    return socketTransport(main, onError);
  }
  const other = sibling;
  main.on('error', onError);
  other.on('error', onError);
  /** Segment size while UDP GSO is on (0: off), and whether a segmented send has been seen to work. */
  let gso = 0;
  /** Watched sends done: the first one after GSO is on, and the first one it segments. */
  let checkedAny = false;
  let checkedSegmented = false;
  let fallback = (): void => undefined;
  /**
   * A watched send: if it fails (a path through IPsec refuses every send on a GSO socket, an old
   * kernel refuses devices without checksum offload), turn GSO off and resend one datagram at a time.
   */
  const checkedSend = (buf: Buffer, offset: number, length: number): void => {
    const size = gso;
    main.send(buf, offset, length, (err) => {
      if (!err) return;
      gso = 0;
      try {
        setSocketOption(main, SOL_UDP, UDP_SEGMENT, 0);
      } catch {
        // the socket closed meanwhile
      }
      onError(err);
      fallback();
      for (let at = offset; at < offset + length; at += size) main.send(buf, at, Math.min(size, offset + length - at));
    });
  };
  return {
    port: main.address().port,
    send: (buf, offset, length, port, address) => {
      if (port !== peer.port || address !== peer.address) other.send(buf, offset, length, port, address);
      else if (gso === 0 || (checkedAny && (checkedSegmented || length <= gso))) main.send(buf, offset, length);
      else {
        checkedAny = true;
        if (length > gso) checkedSegmented = true;
        checkedSend(buf, offset, length);
      }
    },
    segment: (size, onFallback) => {
      try {
        setSocketOption(main, SOL_UDP, UDP_SEGMENT, size);
      } catch {
        return 1; // a kernel without UDP GSO
      }
      gso = size;
      fallback = onFallback;
      return Math.max(1, Math.min(MAX_SEGMENTS, Math.floor(MAX_UDP_PAYLOAD / size)));
    },
    onMessage: (handler) => {
      main.on('message', handler);
      other.on('message', handler);
    },
    close: async () => {
      await Promise.all([closeUdp(main), closeUdp(other)]);
    },
  };
}
