import { createSocket, type Socket } from 'node:dgram';
import { createRequire } from 'node:module';
import { UserError } from '../core/errors.js';

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
/** Linux ≥ 5.0: bind a socket to an interface by index (socket(7)). */
const SO_BINDTOIFINDEX = 62;

export interface UdpOptions {
  port: number;
  /** Local address; 0.0.0.0 receives broadcasts too. */
  address: string;
  /** Bind to this interface (name for messages, index for the kernel). */
  device?: { name: string; index: number };
  broadcast?: boolean;
  reuseAddr?: boolean;
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** What the port is for, in error messages ("proxyDHCP", "TFTP"). */
  purpose: string;
}

/** A bound UDP socket's failure to bind, in words a user can act on. */
export function bindErrorMessage(err: NodeJS.ErrnoException, o: UdpOptions): string {
  const where = `UDP ${o.address}:${o.port}${o.device ? ` on ${o.device.name}` : ''} (${o.purpose})`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the port is already in use by another program`;
    case 'EACCES':
    case 'EPERM':
      return `cannot listen on ${where}: permission denied (run as root or with CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${o.address} is not an address of this host`;
    case 'ENODEV':
      return `cannot listen on ${where}: no such interface`;
    default:
      return `cannot listen on ${where}: ${err.message}`;
  }
}

type Sockopt = typeof import('sockopt');
let sockopt: Sockopt | Error | undefined;

/**
 * The native `sockopt` module, loaded on first use: a machine where it cannot load (no prebuild for
 * this platform and no compiler at install time) still runs, without device binding and UDP GSO.
 */
function loadSockopt(): Sockopt {
  if (sockopt === undefined) {
    try {
      sockopt = createRequire(import.meta.url)('sockopt') as Sockopt;
    } catch (err) {
      sockopt = new Error(
        `the native module sockopt did not load (${(err as Error).message.split('\n')[0]}); run 'npm rebuild sockopt' where pxe-pdhcp is installed (it needs make and g++)`,
      );
    }
  }
  if (sockopt instanceof Error) throw sockopt;
  return sockopt;
}

/** setsockopt with an integer value. @throws Error when the native module is missing */
export function setSocketOption(socket: Socket, level: number, name: number, value: number): void {
  const { setsockopt } = loadSockopt();
  // sockopt reads the fd through the deprecated Socket#_handle; silence that one warning.
  const quiet = process.noDeprecation;
  process.noDeprecation = true;
  try {
    setsockopt(socket, level, name, value);
  } finally {
    process.noDeprecation = quiet;
  }
}

function bindToDevice(socket: Socket, index: number): void {
  setSocketOption(socket, SOL_SOCKET, SO_BINDTOIFINDEX, index);
}

/**
 * Open and bind a UDP socket. With `device`, the socket is bound to that interface, so it sees only
 * that interface's packets and its broadcasts leave through it.
 * @throws UserError when the socket cannot be bound
 */
export function openUdp(o: UdpOptions): Promise<Socket> {
  const socket = createSocket({
    type: 'udp4',
    reuseAddr: o.reuseAddr ?? false,
    ...(o.recvBufferSize ? { recvBufferSize: o.recvBufferSize } : {}),
    ...(o.sendBufferSize ? { sendBufferSize: o.sendBufferSize } : {}),
  });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.close();
      reject(new UserError(bindErrorMessage(err, o)));
    };
    socket.once('error', onError);
    socket.bind({ port: o.port, address: o.address, exclusive: true }, () => {
      socket.off('error', onError);
      try {
        if (o.broadcast) socket.setBroadcast(true);
        if (o.device) bindToDevice(socket, o.device.index);
      } catch (err) {
        socket.close();
        reject(new UserError(bindErrorMessage(err as NodeJS.ErrnoException, o)));
        return;
      }
      resolve(socket);
    });
  });
}

/** Close a socket, ignoring one already closed. */
export function closeUdp(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

/** Connect a bound socket to one peer: its sends then skip Node's per-send address handling. */
export function connectUdp(socket: Socket, peer: { address: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(peer.port, peer.address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/**
 * A second socket on the port of the bound `socket` (same local address and device), for the two
 * sibling tricks: port 67's send-only broadcaster and a TFTP transfer's catch-all for strangers.
 * SO_REUSEADDR is set on `socket` only now, after its port was allocated exclusively, so no
 * unrelated socket is ever handed the same port. @throws when the platform cannot do it
 */
export async function openSibling(socket: Socket, o: UdpOptions): Promise<Socket> {
  setSocketOption(socket, SOL_SOCKET, SO_REUSEADDR, 1);
  return openUdp({ ...o, port: socket.address().port, reuseAddr: true });
}

/**
 * A send-only sibling of a bound `listener`: the same local address and port (so replies keep
 * their source port), connected to `to`. The kernel never hands it a received datagram, since none
 * comes from `to`. Resolves to null when the platform cannot do it; the listener then sends itself.
 */
export async function openConnectedSibling(
  listener: Socket,
  o: UdpOptions,
  to: { address: string; port: number },
): Promise<Socket | null> {
  let sibling: Socket | null = null;
  try {
    sibling = await openSibling(listener, o);
    await connectUdp(sibling, to);
    return sibling;
  } catch {
    if (sibling) await closeUdp(sibling);
    return null;
  }
}
