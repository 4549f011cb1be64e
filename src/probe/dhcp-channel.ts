import type { Socket } from 'node:dgram';
import { closeUdp, openUdp } from '../net/udp.js';
import { BootpOp, DhcpPort } from '../wire/dhcp-constants.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../wire/dhcp-packet.js';
import { DecodeError } from '../wire/reader.js';

/** A decoded server reply and where it came from. */
export interface Received {
  packet: DhcpPacket;
  from: { address: string; port: number };
  /** Milliseconds since the channel opened. */
  at: number;
}

/**
 * The probe's one DHCP socket: 0.0.0.0:68 bound to the interface (SO_BINDTOIFINDEX), broadcast on.
 * Offers, ACKs and the port 4011 answers all arrive here, since the 4011 request leaves from 68.
 */
export interface DhcpChannel {
  send(p: DhcpPacket, address: string, port: number): Promise<void>;
  /** Every reply accepted by `match` until `ms` have passed. */
  collect(match: (r: Received) => boolean, ms: number): Promise<Received[]>;
  /** The first reply accepted by `match`, or undefined after `ms`. */
  first(match: (r: Received) => boolean, ms: number): Promise<Received | undefined>;
  /** Datagrams that were not well-formed BOOTREPLYs (dropped, counted). */
  readonly malformed: number;
  close(): Promise<void>;
}

type Waiter = (r: Received) => void;

/** Open the channel on an interface. @throws UserError when port 68 cannot be bound */
export async function openDhcpChannel(
  device: { name: string; index: number },
  port: number = DhcpPort.CLIENT,
): Promise<DhcpChannel> {
  const socket: Socket = await openUdp({
    port,
    address: '0.0.0.0',
    device,
    broadcast: true,
    reuseAddr: true,
    purpose: 'DHCP client',
  });
  const start = Date.now();
  const waiters = new Set<Waiter>();
  let malformed = 0;
  socket.on('message', (msg, rinfo) => {
    let packet: DhcpPacket;
    try {
      packet = decodeDhcp(msg);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      malformed++;
      return;
    }
    if (packet.op !== BootpOp.REPLY) return; // our own broadcasts and other clients' requests
    const r: Received = { packet, from: { address: rinfo.address, port: rinfo.port }, at: Date.now() - start };
    for (const w of [...waiters]) w(r);
  });
  socket.on('error', () => undefined); // send errors are reported by send()'s callback
  const listen = (match: (r: Received) => boolean, ms: number, stopAtFirst: boolean): Promise<Received[]> =>
    new Promise((resolve) => {
      const got: Received[] = [];
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        resolve(got);
      };
      const waiter: Waiter = (r) => {
        if (!match(r)) return;
        got.push(r);
        if (stopAtFirst) finish();
      };
      const timer = setTimeout(finish, ms);
      waiters.add(waiter);
    });
  return {
    send: (p, address, toPort) =>
      new Promise((resolve, reject) => {
        socket.send(encodeDhcp(p), toPort, address, (err) => (err ? reject(err) : resolve()));
      }),
    collect: (match, ms) => listen(match, ms, false),
    first: async (match, ms) => (await listen(match, ms, true))[0],
    get malformed() {
      return malformed;
    },
    close: () => closeUdp(socket),
  };
}
