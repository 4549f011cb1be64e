import { BootpOp, DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { u8Option } from '../../src/wire/dhcp-options.js';
import { decodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';

/** Options that carry address configuration: a proxy must never send them (docs/dhcp-options.md#reply-options). */
export const ADDRESS_OPTIONS = [
  DhcpOption.SUBNET_MASK,
  DhcpOption.ROUTER,
  DhcpOption.DNS_SERVERS,
  DhcpOption.LEASE_TIME,
  DhcpOption.RENEWAL_TIME,
  DhcpOption.REBINDING_TIME,
] as const;

/** Largest reply every client takes: RFC 2131 §2's 576-byte minimum datagram, less IP and UDP. */
const MAX_REPLY = 576 - 28;

/** Which of our ports a request arrived on. */
export type ArrivalPort = 'dhcp' | 'proxy';

/** True when option 60 begins with `PXEClient` (the only clients we may answer). */
export function isPxeRequest(req: DhcpPacket): boolean {
  return req.options.get(DhcpOption.VENDOR_CLASS_ID)?.toString('latin1', 0, 9) === 'PXEClient';
}

/** Problems with a reply on its own: never an address, never address options, never overload. */
export function replyProblems(reply: Buffer): string[] {
  const problems: string[] = [];
  let p: DhcpPacket;
  try {
    p = decodeDhcp(reply);
  } catch (err) {
    return [`reply does not decode: ${(err as Error).message}`];
  }
  if (p.op !== BootpOp.REPLY) problems.push(`reply op ${p.op}`);
  if (p.yourIp !== '0.0.0.0') problems.push(`yiaddr ${p.yourIp}`);
  for (const code of ADDRESS_OPTIONS) if (p.options.has(code)) problems.push(`address option ${code}`);
  if (p.options.has(DhcpOption.OVERLOAD)) problems.push('option overload in a reply');
  if (reply.length > MAX_REPLY) problems.push(`reply of ${reply.length} bytes`);
  return problems;
}

/**
 * Problems with a reply given the request it answers: only a PXE DISCOVER on 67 and a PXE
 * REQUEST or INFORM on 4011 may be answered, with the same xid and chaddr.
 */
export function answerProblems(port: ArrivalPort, req: DhcpPacket, reply: Buffer): string[] {
  const problems = replyProblems(reply);
  if (problems.length > 0) return problems;
  const p = decodeDhcp(reply);
  const type = u8Option(req.options, DhcpOption.MESSAGE_TYPE);
  const allowed: number[] = port === 'dhcp' ? [MessageType.DISCOVER] : [MessageType.REQUEST, MessageType.INFORM];
  if (req.op !== BootpOp.REQUEST) problems.push('answered a BOOTREPLY');
  if (!isPxeRequest(req)) problems.push('answered a client that is not PXEClient');
  if (type === undefined || !allowed.includes(type)) problems.push(`answered message type ${type} on ${port}`);
  const want = port === 'dhcp' ? MessageType.OFFER : MessageType.ACK;
  if (u8Option(p.options, DhcpOption.MESSAGE_TYPE) !== want) problems.push(`reply type is not ${want}`);
  if (p.transactionId !== req.transactionId) problems.push('xid not echoed');
  if (!p.clientHardware.equals(req.clientHardware)) problems.push('chaddr not echoed');
  return problems;
}
