import { deepStrictEqual } from 'node:assert/strict';
import { parseClientPattern } from '../../src/pxe/acl.js';
import type { BootPolicy } from '../../src/pxe/boot.js';
import { decideBootAck, decideProxyOffer, type Decision, type ServerContext } from '../../src/pxe/policy.js';
import { parseRule } from '../../src/pxe/rules.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';
import { DecodeError } from '../../src/wire/reader.js';
import { cleanName } from '../../src/files/root.js';
import { BLKSIZE_MIN, TFTP_OVERHEAD, negotiate } from '../../src/tftp/negotiate.js';
import { decodeTftp, encodeTftp, type TftpOptions } from '../../src/wire/tftp-packet.js';
import { answerProblems, type ArrivalPort } from './invariants.js';
import type { Protocol } from './mutate.js';

/** A broken promise of ours found by the fuzzer (not a crash, but just as fatal). */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

const CTX: ServerContext = {
  serverIp: '10.77.0.2',
  tftpServer: '10.77.0.2',
  broadcastAddress: '255.255.255.255',
  clientPort: 68,
};

/** Policies exercised in turn: both UEFI modes, and a name too long for `file` (option 67). */
export const POLICIES: readonly BootPolicy[] = [
  { defaultFile: 'pxelinux.0', efiMode: 'binl' },
  { defaultFile: 'pxelinux.0', efiMode: 'bypass' },
  { defaultFile: `http://10.77.0.2/${'x'.repeat(180)}.ipxe`, efiMode: 'binl' },
  // Rules, an access list and no default: the refusal paths of chooseBoot.
  {
    efiMode: 'binl',
    rules: [parseRule('arch=efi-x64,file=ipxe.efi'), parseRule('user-class=iPXE,file=boot.ipxe,next-server=10.77.0.9')],
    deny: [parseClientPattern('52:54:00:77:00:*', 'deny')],
  },
  { defaultFile: 'pxelinux.0', efiMode: 'binl', rpi: false, allow: [parseClientPattern('52:54:*', 'allow')] },
];

/** What happened to one input, e.g. `decode:truncated`, `dhcp:ignore:not-pxe-client`, `proxy:reply:binl`. */
export type Outcome = string;

/** A reply the fuzzer produced, for the non-interference checks. */
export interface FuzzReply {
  port: ArrivalPort;
  request: DhcpPacket;
  bytes: Buffer;
}

function decide(port: ArrivalPort, req: DhcpPacket, policy: BootPolicy, variant: number): Decision {
  if (port === 'dhcp') return decideProxyOffer(req, CTX, policy);
  // Half the time the datagram comes from ciaddr itself (EDK2, iPXE), else from elsewhere.
  const from = variant & 1 ? { address: req.clientIp, port: 4011 } : { address: '10.77.0.99', port: 68 };
  return decideBootAck(req, from, CTX, policy);
}

function outcomeOfError(prefix: string, err: unknown): Outcome {
  if (err instanceof DecodeError) return `${prefix}decode:${err.code}`;
  throw err;
}

/**
 * decode → decide (on both ports) → encode, checking every reply against the invariants.
 * @throws anything but DecodeError from the code under test, or InvariantError
 */
export function runDhcp(input: Buffer, variant: number, replies?: FuzzReply[]): Outcome {
  let req: DhcpPacket;
  try {
    req = decodeDhcp(input);
  } catch (err) {
    return outcomeOfError('', err);
  }
  const policy = POLICIES[variant % POLICIES.length]!;
  const parts: string[] = [];
  for (const port of ['dhcp', 'proxy'] as const) {
    let decision: Decision;
    try {
      decision = decide(port, req, policy, variant);
    } catch (err) {
      parts.push(outcomeOfError(`${port}:`, err));
      continue;
    }
    if (decision.kind === 'ignore') {
      parts.push(`${port}:ignore:${decision.reason}`);
      continue;
    }
    const bytes = encodeDhcp(decision.reply);
    const problems = answerProblems(port, req, bytes);
    if (problems.length > 0) throw new InvariantError(`${port}: ${problems.join('; ')}`);
    replies?.push({ port, request: req, bytes });
    parts.push(`${port}:reply:${decision.choice.shape}`);
  }
  return parts.join(' ');
}

/**
 * The pure half of serving an RRQ: the name inside the root, and the options we grant, which must
 * stay within RFC 2348/7440 and never exceed what the client asked (EDK2 rejects more).
 */
function decideRrq(filename: string, options: TftpOptions): void {
  const parts = cleanName(filename);
  if (parts && parts.some((p) => p === '..' || p === '' || p.includes('/') || p.includes('\0'))) {
    throw new InvariantError(`name ${JSON.stringify(filename)} cleaned to ${JSON.stringify(parts)}`);
  }
  const mtu = 576 + (filename.length % 9000);
  const got = negotiate(options, { mtu, maxWindow: 64, maxWindowBytes: 256 * 1024, fileSize: filename.length * 1000 });
  const asked = (name: string): number => Number(options.get(name));
  const bad =
    got.blockSize < BLKSIZE_MIN ||
    got.blockSize > Math.max(BLKSIZE_MIN, mtu - TFTP_OVERHEAD) ||
    (got.oack.has('blksize') && got.blockSize > asked('blksize')) ||
    got.windowSize < 1 ||
    (got.oack.has('windowsize') && got.windowSize > asked('windowsize')) ||
    [...got.oack.keys()].some((k) => !options.has(k));
  if (bad)
    throw new InvariantError(
      `negotiate(${JSON.stringify([...options])}) gave ${JSON.stringify({ ...got, oack: [...got.oack] })}`,
    );
  encodeTftp({ kind: 'oack', options: got.oack });
}

/**
 * decode → (RRQ: decide) → re-encode → decode again: what we decode we can write back unchanged.
 * @throws anything but DecodeError from the code under test, or InvariantError
 */
export function runTftp(input: Buffer): Outcome {
  let packet;
  try {
    packet = decodeTftp(input);
  } catch (err) {
    return outcomeOfError('', err);
  }
  if (packet.kind === 'rrq') decideRrq(packet.filename, packet.options);
  const again = decodeTftp(encodeTftp(packet));
  try {
    if (packet.kind === 'error') deepStrictEqual(again.kind, 'error');
    else deepStrictEqual(again, packet);
  } catch {
    throw new InvariantError(`${packet.kind} does not survive encode → decode`);
  }
  return `tftp:${packet.kind}${packet.kind === 'rrq' || packet.kind === 'wrq' ? `:${packet.options.size > 0 ? 'options' : 'plain'}` : ''}`;
}

/** Run one input through the target of its protocol. */
export function runTarget(protocol: Protocol, input: Buffer, variant: number, replies?: FuzzReply[]): Outcome {
  return protocol === 'dhcp' ? runDhcp(input, variant, replies) : runTftp(input);
}
