import type { Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { openUdp } from '../../src/net/udp.js';
import { BROADCAST_FLAG, DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { u8Option } from '../../src/wire/dhcp-options.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';
import { ipToBytes } from '../../src/wire/ip.js';
import { fixture } from './packets.js';

/**
 * A PXE client made of ordinary UDP sockets, for namespace tests: it replays DISCOVERs and 4011
 * REQUESTs captured from real firmware (test/fixtures) with its own MAC, xid and addresses.
 * Only the sending side imitates firmware; receiving goes through the kernel, so the sockets are
 * bound to the interface (a client with no address still receives limited broadcasts then).
 */

/** The captured DISCOVER each kind of firmware is modelled on. */
export const DISCOVER_FIXTURE = { bios: 'ipxe-bios-rom-discover', uefi: 'ovmf-edk2-discover' } as const;
export type Firmware = keyof typeof DISCOVER_FIXTURE;

/**
 * The captured port 4011 REQUESTs: iPXE asks from port 68 (with option 54), EDK2 from port 4011
 * (docs/addressing.md#port-4011-requests).
 */
export const REQUEST_4011_FIXTURE = { ipxe: 'ipxe-efi-request-4011', edk2: 'ovmf-edk2-request-4011-binl' } as const;
export type Requester = keyof typeof REQUEST_4011_FIXTURE;

/** The source port each 4011 requester uses. */
export const REQUESTER_PORT: Record<Requester, number> = { ipxe: 68, edk2: 4011 };

/** A datagram one of our sockets received, as reported to the test. */
export interface Received {
  /** Sender, `address:port`. */
  from: string;
  /** Our local port it arrived on (the reply's destination port). */
  local: number;
  /** The UDP payload, hex. */
  hex: string;
}

/** Bytes of a MAC written `aa:bb:...`, padded to the 16-byte chaddr field. */
export function chaddrOf(mac: string): Buffer {
  const out = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(out);
  return out;
}

/** A copy of a captured packet with our own identity patched in; the options keep firmware order. */
function replay(name: string, mac: string, xid: number, patch: Partial<DhcpPacket>): DhcpPacket {
  const p = decodeDhcp(fixture(name));
  const options = new Map(p.options);
  // Option 61 (client id) is type 1 + the MAC in these captures: keep it consistent with ours.
  if (options.has(DhcpOption.CLIENT_ID))
    options.set(DhcpOption.CLIENT_ID, Buffer.concat([Buffer.of(1), chaddrOf(mac).subarray(0, 6)]));
  return { ...p, transactionId: xid, clientHardware: chaddrOf(mac), options, ...patch };
}

/**
 * A DISCOVER as the firmware sent it, with our MAC and xid. The broadcast flag is set: this client
 * receives through the kernel, which drops unicast replies to an address it does not have yet
 * (real firmware reads the wire directly and needs no flag).
 */
export function discover(fw: Firmware, mac: string, xid: number, giaddr = '0.0.0.0'): Buffer {
  const p = replay(DISCOVER_FIXTURE[fw], mac, xid, { relayIp: giaddr, hops: giaddr === '0.0.0.0' ? 0 : 1 });
  p.flags |= BROADCAST_FLAG;
  return encodeDhcp(p);
}

/** The REQUEST that takes the router's offered address (RFC 2131 §4.3.2, SELECTING state). */
export function selectRequest(fw: Firmware, mac: string, xid: number, offer: DhcpPacket): Buffer {
  const p = replay(DISCOVER_FIXTURE[fw], mac, xid, { flags: BROADCAST_FLAG });
  p.options.set(DhcpOption.MESSAGE_TYPE, Buffer.of(MessageType.REQUEST));
  p.options.set(DhcpOption.REQUESTED_IP, ipToBytes(offer.yourIp));
  p.options.set(DhcpOption.SERVER_ID, offer.options.get(DhcpOption.SERVER_ID)!);
  return encodeDhcp(p);
}

/** A port 4011 REQUEST as the firmware sent it, from the leased address `ciaddr` to `server`. */
export function request4011(who: Requester, mac: string, xid: number, ciaddr: string, server: string): Buffer {
  const p = replay(REQUEST_4011_FIXTURE[who], mac, xid, { clientIp: ciaddr });
  if (p.options.has(DhcpOption.SERVER_ID)) p.options.set(DhcpOption.SERVER_ID, ipToBytes(server));
  return encodeDhcp(p);
}

/** Message type (option 53) of a decoded packet. */
export function typeOf(p: DhcpPacket): number | undefined {
  return u8Option(p.options, DhcpOption.MESSAGE_TYPE);
}

/** A UDP socket bound to one interface that keeps everything it receives. */
export class Endpoint {
  readonly received: Received[] = [];
  #waiters: (() => void)[] = [];

  private constructor(
    readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => {
      this.received.push({ from: `${rinfo.address}:${rinfo.port}`, local: port, hex: msg.toString('hex') });
      for (const w of this.#waiters) w();
    });
  }

  /** Bind 0.0.0.0:`port` on `iface` (SO_BINDTOIFINDEX), broadcasts allowed. */
  static async open(port: number, iface: string): Promise<Endpoint> {
    const index = Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8'));
    const socket = await openUdp({
      port,
      address: '0.0.0.0',
      device: { name: iface, index },
      broadcast: true,
      purpose: 'test client',
    });
    return new Endpoint(socket, port);
  }

  send(bytes: Buffer, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, port, address, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Wait until `done(received so far)` holds or `ms` pass; then return what arrived. */
  async collect(done: (r: Received[]) => boolean, ms: number): Promise<Received[]> {
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== check);
        resolve();
      };
      const check = (): void => {
        if (done(this.received)) finish();
      };
      const timer = setTimeout(finish, ms);
      this.#waiters.push(check);
      check();
    });
    return this.received;
  }

  /** Forget what arrived so far. */
  clear(): void {
    this.received.length = 0;
  }

  close(): void {
    this.socket.close();
  }
}

/** Replies among `r` that answer `xid`. */
export function answering(r: Received[], xid: number): DhcpPacket[] {
  return r.map((x) => decodeDhcp(Buffer.from(x.hex, 'hex'))).filter((p) => p.transactionId === xid);
}
