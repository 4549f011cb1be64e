import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BootpOp, DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { encodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** A captured packet from test/fixtures/*.hex (a `#` header line, then hex). */
export function fixture(name: string): Buffer {
  return fromHexFile(`${FIXTURES}${name}.hex`);
}

/** The bytes of a `.hex` file: `#` comment lines, then hex with any white space. */
export function fromHexFile(path: string): Buffer {
  const text = readFileSync(path, 'utf8');
  return Buffer.from(
    text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

/** The UUID of docs/vectors.md#common-values: option 97 = 00 + 16 bytes. */
export const UUID = Buffer.concat([Buffer.of(0), Buffer.from('7e57ab00000040008000525400123456', 'hex')]);

export interface RequestSpec {
  type?: number;
  mac?: string;
  xid?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
  hops?: number;
  /** Option 60; null leaves it out. */
  vendor?: string | null;
  /** Option 93; null leaves it out. */
  arch?: number | null;
  /** Option 97; null leaves it out. */
  uuid?: Buffer | null;
  userClass?: string;
  op?: number;
  extra?: [number, Buffer][];
  file?: string;
}

/** A client request as real firmware would send it (docs/vectors.md#common-values). */
export function request(spec: RequestSpec = {}): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(DhcpOption.MESSAGE_TYPE, Buffer.of(spec.type ?? MessageType.DISCOVER));
  const arch = spec.arch === undefined ? 0 : spec.arch;
  const vendor =
    spec.vendor === undefined ? `PXEClient:Arch:${String(arch ?? 0).padStart(5, '0')}:UNDI:002001` : spec.vendor;
  if (vendor !== null) options.set(DhcpOption.VENDOR_CLASS_ID, Buffer.from(vendor, 'latin1'));
  if (arch !== null) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(arch);
    options.set(DhcpOption.CLIENT_ARCH, b);
  }
  options.set(DhcpOption.CLIENT_NDI, Buffer.of(1, 2, 1));
  const uuid = spec.uuid === undefined ? UUID : spec.uuid;
  if (uuid !== null) options.set(DhcpOption.CLIENT_UUID, uuid);
  if (spec.userClass) options.set(DhcpOption.USER_CLASS, Buffer.from(spec.userClass, 'latin1'));
  for (const [code, value] of spec.extra ?? []) options.set(code, value);
  const chaddr = Buffer.alloc(16);
  Buffer.from((spec.mac ?? '52:54:00:12:34:56').replace(/:/g, ''), 'hex').copy(chaddr);
  return {
    op: spec.op ?? BootpOp.REQUEST,
    htype: 1,
    hlen: 6,
    hops: spec.hops ?? 0,
    transactionId: spec.xid ?? 0x1a2b3c4d,
    secs: 0,
    flags: spec.flags ?? 0,
    clientIp: spec.ciaddr ?? '0.0.0.0',
    yourIp: '0.0.0.0',
    nextServer: '0.0.0.0',
    relayIp: spec.giaddr ?? '0.0.0.0',
    clientHardware: chaddr,
    serverName: '',
    bootFile: spec.file ?? '',
    options,
  };
}

/** The same request as wire bytes. */
export function requestBytes(spec: RequestSpec = {}): Buffer {
  return encodeDhcp(request(spec));
}
