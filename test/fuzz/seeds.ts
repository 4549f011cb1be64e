import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BootpOp, DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { encodeTftp } from '../../src/wire/tftp-packet.js';
import { fixture, requestBytes } from '../helpers/packets.js';
import type { Protocol } from './mutate.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** Every captured firmware packet (test/fixtures/*.hex). */
function capturedPackets(): Buffer[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => fixture(f.slice(0, -4)));
}

/** Built requests for the paths the captures do not reach: INFORM, relay, overload, Pi, replies. */
function builtDhcp(): Buffer[] {
  const overloaded = requestBytes({ vendor: null, extra: [[DhcpOption.OVERLOAD, Buffer.of(1)]] });
  // Option 60 inside `file` (docs/vectors.md#vector-14).
  Buffer.from([DhcpOption.VENDOR_CLASS_ID, 9, ...Buffer.from('PXEClient'), DhcpOption.END]).copy(overloaded, 108);
  return [
    requestBytes(),
    requestBytes({ arch: 7, vendor: 'PXEClient:Arch:00007:UNDI:003016' }),
    requestBytes({ arch: 0, userClass: 'iPXE' }),
    requestBytes({ giaddr: '10.0.5.1', hops: 1 }),
    requestBytes({ type: MessageType.REQUEST, ciaddr: '10.77.0.50', arch: 7 }),
    requestBytes({ type: MessageType.INFORM, ciaddr: '10.77.0.50' }),
    requestBytes({
      mac: 'dc:a6:32:01:36:c2',
      uuid: Buffer.concat([Buffer.of(0), Buffer.from('RPi4'), Buffer.alloc(12)]),
    }),
    requestBytes({ vendor: 'MSFT 5.0', arch: null, uuid: null }),
    requestBytes({ op: BootpOp.REPLY }),
    requestBytes({ extra: [[DhcpOption.VENDOR_SPECIFIC, Buffer.from('470480000000ff', 'hex')]] }),
    overloaded,
  ];
}

/** TFTP traffic as ROMs send it (docs/tftp.md): RRQs with options, ACK, ERROR, DATA, OACK, WRQ. */
function builtTftp(): Buffer[] {
  const opts = (pairs: [string, string][]): Map<string, string> => new Map(pairs);
  return [
    encodeTftp({
      kind: 'rrq',
      filename: 'undionly.kpxe',
      mode: 'octet',
      options: opts([
        ['tsize', '0'],
        ['blksize', '1456'],
      ]),
    }),
    encodeTftp({
      kind: 'rrq',
      filename: 'bootx64.efi',
      mode: 'octet',
      options: opts([
        ['blksize', '1468'],
        ['windowsize', '4'],
        ['tsize', '0'],
      ]),
    }),
    encodeTftp({
      kind: 'rrq',
      filename: 'pxelinux.cfg/01-52-54-00-12-34-56',
      mode: 'netascii',
      options: opts([['timeout', '3']]),
    }),
    encodeTftp({ kind: 'rrq', filename: 'pxelinux.0', mode: 'octet', options: new Map() }),
    encodeTftp({ kind: 'wrq', filename: 'upload', mode: 'octet', options: new Map() }),
    encodeTftp({ kind: 'ack', block: 0 }),
    encodeTftp({ kind: 'ack', block: 65535 }),
    encodeTftp({ kind: 'error', code: 8, message: 'User aborted the transfer' }),
    encodeTftp({ kind: 'error', code: 0, message: 'TFTP Aborted' }),
    encodeTftp({ kind: 'data', block: 1, data: Buffer.alloc(512, 0x5a) }),
    encodeTftp({
      kind: 'oack',
      options: opts([
        ['blksize', '1456'],
        ['tsize', '123456'],
      ]),
    }),
  ];
}

/** The starting points of mutation for each protocol. */
export function seeds(protocol: Protocol): Buffer[] {
  return protocol === 'dhcp' ? [...capturedPackets(), ...builtDhcp()] : builtTftp();
}
