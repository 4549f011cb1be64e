/**
 * Structured mutation of datagrams: byte-level edits (flip, set, insert, delete, splice, truncate)
 * plus edits that know the layout (DHCP option TLVs, header fields; TFTP opcode and NUL-separated
 * strings), so that most inputs get past the first length check and reach the policy code.
 */

/** A small seeded PRNG (mulberry32), so every failing input is reproducible from its seed. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** Uniform in [0, 2^32). */
  u32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Values that tend to sit on boundaries: lengths, sign bits, the END and PAD codes. */
const INTERESTING = [0, 1, 2, 3, 4, 6, 7, 8, 9, 16, 17, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xfe, 0xff] as const;
/** DHCP option codes the daemon reads or must never send, and overload. */
const DHCP_CODES = [0, 1, 3, 6, 43, 51, 52, 53, 54, 55, 57, 58, 59, 60, 61, 66, 67, 77, 93, 94, 97, 175, 255] as const;
const DHCP_OPTIONS_START = 240;

type Mutator = (rng: Rng, b: Buffer) => Buffer;

const flipBit: Mutator = (rng, b) => {
  if (b.length === 0) return b;
  const i = rng.int(b.length);
  b[i]! ^= 1 << rng.int(8);
  return b;
};

const setInteresting: Mutator = (rng, b) => {
  if (b.length > 0) b[rng.int(b.length)] = rng.pick(INTERESTING);
  return b;
};

const setRandom: Mutator = (rng, b) => {
  if (b.length > 0) b[rng.int(b.length)] = rng.int(256);
  return b;
};

const truncate: Mutator = (rng, b) => b.subarray(0, rng.int(b.length + 1));

const insertBytes: Mutator = (rng, b) => {
  const at = rng.int(b.length + 1);
  return Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)]);
};

const deleteBytes: Mutator = (rng, b) => {
  const at = rng.int(b.length + 1);
  return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(16))]);
};

const duplicateChunk: Mutator = (rng, b) => {
  const at = rng.int(b.length + 1);
  const chunk = b.subarray(at, at + 1 + rng.int(32));
  return Buffer.concat([b.subarray(0, at), chunk, chunk, b.subarray(at + chunk.length)]);
};

const appendRandom: Mutator = (rng, b) => Buffer.concat([b, rng.bytes(1 + rng.int(rng.int(4) === 0 ? 1500 : 64))]);

/** Offsets of the option TLVs after the cookie (stops at END or a length past the end). */
function dhcpOptionOffsets(b: Buffer): number[] {
  const out: number[] = [];
  let i = DHCP_OPTIONS_START;
  while (i < b.length) {
    const code = b[i]!;
    if (code === 255) break;
    out.push(i);
    if (code === 0) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) break;
    i += 2 + b[i + 1]!;
  }
  return out;
}

const dhcpOptionLength: Mutator = (rng, b) => {
  const offs = dhcpOptionOffsets(b);
  if (offs.length === 0 || b.length < 2) return b;
  const at = rng.pick(offs) + 1;
  if (at < b.length) b[at] = rng.int(2) === 0 ? rng.pick(INTERESTING) : (b[at]! + rng.int(5) - 2) & 0xff;
  return b;
};

const dhcpOptionCode: Mutator = (rng, b) => {
  const offs = dhcpOptionOffsets(b);
  if (offs.length > 0) b[rng.pick(offs)] = rng.int(2) === 0 ? rng.pick(DHCP_CODES) : rng.int(256);
  return b;
};

/** A new option with a code we care about, at an option boundary, with a plausible or hostile value. */
const dhcpInsertOption: Mutator = (rng, b) => {
  if (b.length < DHCP_OPTIONS_START) return b;
  const offs = dhcpOptionOffsets(b);
  const at = offs.length > 0 && rng.int(3) !== 0 ? rng.pick(offs) : DHCP_OPTIONS_START;
  const code = rng.pick(DHCP_CODES);
  let value: Buffer;
  switch (code) {
    case 60:
      value = Buffer.from(
        rng.pick(['PXEClient', 'PXEClient:Arch:00007:UNDI:003016', 'PXECli', 'HTTPClient', 'MSFT 5.0']),
        'latin1',
      );
      break;
    case 43:
      value = Buffer.concat([
        Buffer.of(rng.pick([6, 8, 9, 10, 71]), rng.int(8)),
        rng.bytes(rng.int(8)),
        Buffer.of(255),
      ]);
      break;
    case 52:
      value = Buffer.of(rng.int(4));
      break;
    case 53:
      value = Buffer.of(rng.int(10));
      break;
    default:
      value = rng.bytes(rng.pick([0, 1, 2, 4, 16, 17, 255]));
  }
  return Buffer.concat([b.subarray(0, at), Buffer.of(code, value.length), value, b.subarray(at)]);
};

/** Header fields: op, htype, hlen, hops, flags, the four addresses, the cookie, sname/file bytes. */
const dhcpHeaderField: Mutator = (rng, b) => {
  if (b.length < DHCP_OPTIONS_START) return b;
  switch (rng.int(6)) {
    case 0:
      b[0] = rng.pick([0, 1, 2, 3, 255]);
      break;
    case 1:
      b[1] = rng.pick([0, 1, 6, 255]);
      b[2] = rng.pick([0, 1, 6, 16, 17, 255]);
      break;
    case 2:
      rng.bytes(4).copy(b, 12 + 4 * rng.int(4)); // ciaddr, yiaddr, siaddr, giaddr
      break;
    case 3:
      b.writeUInt32BE(rng.int(2) === 0 ? 0x63825363 : rng.u32(), 236);
      break;
    case 4:
      rng.bytes(1 + rng.int(192)).copy(b, 44); // sname + file, where overload puts options
      break;
    default:
      b.writeUInt16BE(rng.int(0x10000), 10);
  }
  return b;
};

/** Positions right after each NUL: the boundaries of TFTP's strings. */
function nulBoundaries(b: Buffer): number[] {
  const out: number[] = [2];
  for (let i = 2; i < b.length; i++) if (b[i] === 0) out.push(i + 1);
  return out;
}

const TFTP_WORDS = [
  'octet',
  'netascii',
  'mail',
  'blksize',
  'tsize',
  'timeout',
  'windowsize',
  'BLKSIZE',
  '0',
  '8',
  '7',
  '65464',
  '65465',
  '99999999999999999999',
  '-1',
  '1e3',
  '0x10',
  '',
  '../../etc/passwd',
  '/',
  '\\',
  'a'.repeat(600),
] as const;

const tftpOpcode: Mutator = (rng, b) => {
  if (b.length >= 2) b.writeUInt16BE(rng.int(4) === 0 ? rng.int(0x10000) : rng.int(8), 0);
  return b;
};

const tftpInsertString: Mutator = (rng, b) => {
  const at = rng.pick(nulBoundaries(b));
  const word = Buffer.from(`${rng.pick(TFTP_WORDS)}${rng.int(4) === 0 ? '' : '\0'}`, 'utf8');
  return Buffer.concat([b.subarray(0, at), word, b.subarray(at)]);
};

const tftpDropNul: Mutator = (rng, b) => {
  const nuls = nulBoundaries(b).slice(1);
  if (nuls.length === 0) return b;
  const at = rng.pick(nuls) - 1;
  return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
};

const GENERIC: readonly Mutator[] = [
  flipBit,
  setInteresting,
  setRandom,
  truncate,
  insertBytes,
  deleteBytes,
  duplicateChunk,
  appendRandom,
];
const DHCP: readonly Mutator[] = [
  ...GENERIC,
  dhcpOptionLength,
  dhcpOptionLength,
  dhcpOptionCode,
  dhcpInsertOption,
  dhcpInsertOption,
  dhcpHeaderField,
  dhcpHeaderField,
];
const TFTP: readonly Mutator[] = [...GENERIC, tftpOpcode, tftpInsertString, tftpInsertString, tftpDropNul];

export type Protocol = 'dhcp' | 'tftp';

/** One to a few stacked mutations of a copy of `seed`; sometimes pure random bytes instead. */
export function mutate(rng: Rng, protocol: Protocol, seed: Buffer): Buffer {
  if (rng.int(50) === 0) return rng.bytes(rng.int(protocol === 'dhcp' ? 700 : 600));
  const table = protocol === 'dhcp' ? DHCP : TFTP;
  let b: Buffer = Buffer.from(seed);
  const n = 1 + rng.int(rng.int(4) === 0 ? 8 : 3);
  for (let i = 0; i < n; i++) b = table[rng.int(table.length)]!(rng, b);
  return b;
}
