import type { Socket } from 'node:dgram';
import { closeUdp, connectUdp, openSibling, openUdp, setSocketOption, type UdpOptions } from './udp.js';

/** Where a datagram came from, or goes. */
export interface Peer {
  address: string;
  port: number;
}

/**
 * What a datagram socket reports besides datagrams, counted and logged through the cap: a datagram
 * from port 0 (dropped), a send refused, a socket error, or `peer-gone`: ECONNREFUSED, the ICMP
 * "port unreachable" of a peer that has closed its port (on a transfer socket, most often a client
 * that finished or gave up).
 */
export type DatagramTrouble = 'port-zero' | 'send-error' | 'socket-error' | 'peer-gone';

/** Troubles that are routine on a busy LAN: counted, logged at debug rather than warn. */
export function isRoutineTrouble(kind: DatagramTrouble): boolean {
  return kind === 'port-zero' || kind === 'peer-gone';
}

/** A socket's 'error' event as a trouble report. */
function onSocketError(report: TroubleReport): (err: NodeJS.ErrnoException) => void {
  return (err) => report(err.code === 'ECONNREFUSED' ? 'peer-gone' : 'socket-error', err.message);
}

/**
 * The one datagram-socket seam: the DHCP responder, the TFTP server and the tests' lossy network all
 * speak it. It holds two promises the rest of the code relies on: `send` never throws (a refused
 * send, say to port 0 or an unroutable relay, is reported and dropped), and a datagram from source
 * port 0 never reaches a handler (no reply could be addressed to it; Node throws when one is tried).
 */
export interface Datagrams {
  readonly port: number;
  send(buf: Buffer, offset: number, length: number, to: Peer): void;
  onMessage(handler: (msg: Buffer, from: Peer) => void): void;
  close(): Promise<void>;
  /**
   * Let one send to the connected peer carry several datagrams of `size` bytes laid end to end (the
   * last may be shorter: UDP GSO). Returns how many fit in one send, 1 when the kernel cannot
   * segment. Should a segmented send fail later, the datagrams are resent one by one and
   * `onFallback` called: from then on the caller sends one per call.
   */
  segment?(size: number, onFallback: () => void): number;
}

/** How a socket reports trouble (the owner counts it and logs it through the peer-line cap). */
export type TroubleReport = (kind: DatagramTrouble, detail: string) => void;

export interface OpenDatagramsOptions extends UdpOptions {
  /** A transfer socket's client: the socket is connected to it (see `connectedDatagrams`). */
  peer?: Peer;
}

export type OpenDatagrams = (o: OpenDatagramsOptions) => Promise<Datagrams>;

/**
 * Send without ever throwing: synchronous refusals (a bad port, a closed socket) become reports.
 * No completion callback: Node then tracks nothing per datagram (a callback per send cost the
 * 20-client TFTP bench a fifth more CPU per MB), and an asynchronous failure arrives as the
 * socket's 'error' event, which every socket here reports.
 */
function guardedSend(
  socket: Socket,
  report: TroubleReport,
  buf: Buffer,
  offset: number,
  length: number,
  to?: Peer,
): void {
  try {
    if (to) socket.send(buf, offset, length, to.port, to.address);
    else socket.send(buf, offset, length);
  } catch (err) {
    report('send-error', (err as Error).message);
  }
}

function listen(sockets: readonly Socket[], report: TroubleReport, handler: (msg: Buffer, from: Peer) => void): void {
  for (const s of sockets) {
    s.on('message', (msg, rinfo) => {
      if (rinfo.port === 0) return report('port-zero', rinfo.address);
      handler(msg, rinfo);
    });
  }
}

/** Datagrams over a bound dgram socket (and, for broadcasts, an optional connected sibling). */
export function socketDatagrams(
  socket: Socket,
  report: TroubleReport,
  broadcast?: { socket: Socket; to: Peer },
): Datagrams {
  socket.on('error', onSocketError(report));
  broadcast?.socket.on('error', onSocketError(report));
  return {
    port: socket.address().port,
    send: (buf, offset, length, to) => {
      if (broadcast && to.port === broadcast.to.port && to.address === broadcast.to.address) {
        guardedSend(broadcast.socket, report, buf, offset, length);
      } else guardedSend(socket, report, buf, offset, length, to);
    },
    // The sibling receives only what comes from its peer, which no client is; if one were, it is served alike.
    onMessage: (handler) => listen(broadcast ? [socket, broadcast.socket] : [socket], report, handler),
    close: async () => {
      await Promise.all([closeUdp(socket), ...(broadcast ? [closeUdp(broadcast.socket)] : [])]);
    },
  };
}

/** Bind real UDP sockets (connected when `peer` is given). @throws UserError when one cannot be bound */
export function udpDatagrams(report: TroubleReport): OpenDatagrams {
  return async (o) => (o.peer ? connectedDatagrams(o, o.peer, report) : socketDatagrams(await openUdp(o), report));
}

const SOL_UDP = 17;
/** Linux ≥ 4.18, udp(7): the kernel cuts one send into datagrams of this size (UDP GSO). */
const UDP_SEGMENT = 103;
/** Kernel limits on one segmented send: UDP_MAX_SEGMENTS (64 before Linux 6.x) and the UDP length. */
const MAX_SEGMENTS = 64;
const MAX_UDP_PAYLOAD = 65507;

/** `main` connected to `peer`, and its sibling for everyone else; null when the platform cannot. */
async function connectedPair(o: UdpOptions, peer: Peer): Promise<{ main: Socket; sibling: Socket } | null> {
  const main = await openUdp({ ...o, reuseAddr: false });
  let sibling: Socket | null = null;
  try {
    sibling = await openSibling(main, o);
    await connectUdp(main, peer);
    return { main, sibling };
  } catch {
    if (sibling) await closeUdp(sibling);
    await closeUdp(main);
    return null;
  }
}

/**
 * A transfer socket connected to the client's TID. Node resolves the address of every datagram an
 * unconnected socket sends (a lookup and a deferred send) and the kernel routes each one; a
 * connected socket skips both, which made lockstep transfers 1.7 times as fast in `make bench-tftp`.
 * A connected socket no longer receives other senders' packets, but RFC 1350 §4 has them answered
 * with ERROR 5, so the sibling shares the port and gets everything not from the client (the kernel
 * prefers the connected socket for the client's own packets). If any of this fails, a plain
 * unconnected socket serves the transfer.
 */
async function connectedDatagrams(o: UdpOptions, peer: Peer, report: TroubleReport): Promise<Datagrams> {
  const pair = await connectedPair(o, peer);
  if (!pair) return socketDatagrams(await openUdp(o), report);
  const { main, sibling } = pair;
  main.on('error', onSocketError(report));
  sibling.on('error', onSocketError(report));
  const gso = new GsoState(main, report);
  return {
    port: main.address().port,
    send: (buf, offset, length, to) => {
      if (to.port !== peer.port || to.address !== peer.address) guardedSend(sibling, report, buf, offset, length, to);
      else gso.send(buf, offset, length);
    },
    segment: (size, onFallback) => gso.enable(size, onFallback),
    onMessage: (handler) => listen([main, sibling], report, handler),
    close: async () => {
      await Promise.all([closeUdp(main), closeUdp(sibling)]);
    },
  };
}

/**
 * UDP GSO on a connected socket, with a watched first send: a path through IPsec refuses every send
 * on a GSO socket, an old kernel refuses devices without checksum offload. On failure GSO goes off
 * and the datagrams of the failed send are resent one at a time.
 */
class GsoState {
  /** Segment size while GSO is on (0: off). */
  #size = 0;
  #checkedAny = false;
  #checkedSegmented = false;
  #fallback: () => void = () => undefined;

  constructor(
    private readonly socket: Socket,
    private readonly report: TroubleReport,
  ) {}

  enable(size: number, onFallback: () => void): number {
    try {
      setSocketOption(this.socket, SOL_UDP, UDP_SEGMENT, size);
    } catch {
      return 1; // a kernel without UDP GSO, or no native module
    }
    this.#size = size;
    this.#fallback = onFallback;
    return Math.max(1, Math.min(MAX_SEGMENTS, Math.floor(MAX_UDP_PAYLOAD / size)));
  }

  send(buf: Buffer, offset: number, length: number): void {
    const size = this.#size;
    if (size === 0 || (this.#checkedAny && (this.#checkedSegmented || length <= size))) {
      return guardedSend(this.socket, this.report, buf, offset, length);
    }
    this.#checkedAny = true;
    if (length > size) this.#checkedSegmented = true;
    try {
      this.socket.send(buf, offset, length, (err) => {
        if (err) this.#fail(err, buf, offset, length, size);
      });
    } catch (err) {
      this.report('send-error', (err as Error).message);
    }
  }

  #fail(err: Error, buf: Buffer, offset: number, length: number, size: number): void {
    this.#size = 0;
    try {
      setSocketOption(this.socket, SOL_UDP, UDP_SEGMENT, 0);
    } catch {
      // the socket closed meanwhile
    }
    this.report('send-error', `UDP GSO refused, sending datagrams one by one: ${err.message}`);
    this.#fallback();
    for (let at = offset; at < offset + length; at += size) {
      guardedSend(this.socket, this.report, buf, at, Math.min(size, offset + length - at));
    }
  }
}
