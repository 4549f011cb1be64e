/**
 * Sends DHCP traffic from inside a lab namespace (port 68, broadcast allowed):
 *   flood.ts foreign SERVER COUNT   ordinary DHCP that must never be answered
 *   flood.ts pxe SERVER COUNT       PXE DISCOVERs from random MACs
 *   flood.ts repeat SERVER COUNT    one PXE DISCOVER and one 4011 REQUEST, each sent COUNT times
 * Prints `sent N` when done.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { BootpOp, MessageType } from '../../src/wire/dhcp-constants.js';
import { fixture, requestBytes } from './packets.js';

type Shot = { msg: Buffer; to: string; port: number };

function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Ordinary DHCP (docs/dhcp-options.md#recognising-a-pxe-request): not PXEClient, BOOTREPLYs, and PXE messages we never answer. */
function foreign(server: string, i: number): Shot {
  const mac = randomMac();
  const xid = randomBytes(4).readUInt32BE(0);
  const kinds: Shot[] = [
    { msg: requestBytes({ mac, xid, vendor: null, arch: null, uuid: null }), to: '255.255.255.255', port: 67 },
    { msg: requestBytes({ mac, xid, vendor: 'MSFT 5.0', arch: null, uuid: null }), to: '255.255.255.255', port: 67 },
    {
      msg: requestBytes({ mac, xid, vendor: 'android-dhcp-14', type: MessageType.REQUEST, arch: null }),
      to: '255.255.255.255',
      port: 67,
    },
    {
      msg: requestBytes({ mac, xid, vendor: 'HTTPClient:Arch:00016:UNDI:003001', arch: 16 }),
      to: '255.255.255.255',
      port: 67,
    },
    { msg: requestBytes({ mac, xid, op: BootpOp.REPLY }), to: '255.255.255.255', port: 67 },
    { msg: requestBytes({ mac, xid, op: BootpOp.REPLY, type: MessageType.ACK }), to: '255.255.255.255', port: 68 },
    { msg: requestBytes({ mac, xid, type: MessageType.REQUEST }), to: '255.255.255.255', port: 67 },
    { msg: requestBytes({ mac, xid, type: MessageType.INFORM, ciaddr: '10.78.0.50' }), to: server, port: 67 },
    { msg: requestBytes({ mac, xid, type: MessageType.DISCOVER }), to: server, port: 4011 },
    {
      msg: requestBytes({ mac, xid, vendor: null, type: MessageType.REQUEST, ciaddr: '10.78.0.50' }),
      to: server,
      port: 4011,
    },
    { msg: fixture('syslinux-efi-discover-no-vendor-class'), to: '255.255.255.255', port: 67 },
    { msg: fixture('ovmf-edk2-request-67'), to: '255.255.255.255', port: 67 },
    { msg: fixture('ipxe-bios-rom-request-67'), to: server, port: 67 },
  ];
  return kinds[i % kinds.length]!;
}

function pxe(i: number): Shot {
  return { msg: requestBytes({ mac: randomMac(), xid: i, arch: i % 2 ? 7 : 0 }), to: '255.255.255.255', port: 67 };
}

function repeat(server: string, i: number): Shot {
  return i % 2 === 0
    ? { msg: requestBytes({ xid: 0xabc0001 }), to: '255.255.255.255', port: 67 }
    : {
        msg: requestBytes({ xid: 0xabc0002, type: MessageType.REQUEST, ciaddr: '10.78.0.3', arch: 7 }),
        to: server,
        port: 4011,
      };
}

const [mode = 'foreign', server = '', countText = '1000'] = process.argv.slice(2);
const count = Number(countText) * (mode === 'repeat' ? 2 : 1);
const socket = createSocket({ type: 'udp4', reuseAddr: true });
await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', resolve));
socket.setBroadcast(true);
let sent = 0;
for (let i = 0; i < count; i++) {
  const shot = mode === 'pxe' ? pxe(i) : mode === 'repeat' ? repeat(server, i) : foreign(server, i);
  const err = await new Promise<Error | null>((resolve) => socket.send(shot.msg, shot.port, shot.to, resolve));
  if (err) throw new Error(`send to ${shot.to}:${shot.port}: ${err.message}`);
  sent++;
  // Paced: a burst of 200, then a breath, so receive queues are tested, not just overrun.
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, mode === 'repeat' ? 0 : 20));
  if (mode === 'repeat') await new Promise((r) => setTimeout(r, 20));
}
socket.close();
console.log(`sent ${sent}`);
