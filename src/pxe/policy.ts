import { BROADCAST_FLAG, BootpOp, DhcpOption, DhcpPort, MessageType } from '../wire/dhcp-constants.js';
import { u8Option } from '../wire/dhcp-options.js';
import { MAX_FILE_FIELD, type DhcpPacket } from '../wire/dhcp-packet.js';
import { ipToBytes } from '../wire/ip.js';
import { BYPASS_VENDOR_OPTIONS, bootItemOf, decodePxeOptions, encodePxeOptions } from '../wire/pxe-options.js';
import { isUefiArch } from '../wire/arch.js';
import { chooseBoot, shapeFor, type BootChoice, type BootPolicy, type BootRefusalReason } from './boot.js';
import { describeClient, type ClientRejection, type PxeClient } from './client.js';
import { expandOwnHttp, HTTP_CLIENT_CLASS } from './http-boot.js';

/** Where this responder stands: the addresses of the interface a request arrived on. */
export interface ServerContext {
  /** Our own address: option 54, and siaddr of BINL-shaped offers. */
  serverIp: string;
  /** The TFTP server handed out as siaddr (`-t`). */
  tftpServer: string;
  /** Destination of broadcast replies (255.255.255.255, or `-b`). */
  broadcastAddress: string;
  /** The DHCP client port, 68; tests on loopback change it. */
  clientPort: number;
  /** Our HTTP server as URLs name it here (`10.0.0.5`, `10.0.0.5:8080`), when it runs: `http:///` expands to it. */
  httpAddress?: string;
  /** The interface served here (`-i`), for `--decide-url`'s `interface=`. */
  interfaceName?: string;
}

export interface Destination {
  address: string;
  port: number;
}

/** The outcome of policy for one request. */
/** Why a packet gets no answer: the counter name and the log's `reason`. */
export type IgnoreReason =
  | 'not-bootrequest'
  | 'no-message-type'
  | 'wrong-message-type'
  | ClientRejection
  | BootRefusalReason
  /** `--decide-url` answered 204, 403 or 404; or it failed with `--decide-fallback deny`. */
  | 'decide-denied'
  | 'decide-unavailable';

export type Decision =
  | { kind: 'reply'; reply: DhcpPacket; to: Destination; client: PxeClient; choice: BootChoice }
  | { kind: 'ignore'; reason: IgnoreReason; detail?: string; client?: PxeClient; level?: 'info' | 'warn' };

const PXE_CLASS = Buffer.from('PXEClient', 'latin1');
/** EDK2's HTTP Boot takes a proxy offer only with this option 60 (docs/firmware.md#uefi-http-boot). */
const HTTP_CLASS = Buffer.from(HTTP_CLIENT_CLASS, 'latin1');
const ZERO_IP = '0.0.0.0';

function ignore(reason: IgnoreReason, client?: PxeClient, detail?: string, level?: 'info' | 'warn'): Decision {
  return {
    kind: 'ignore',
    reason,
    ...(client ? { client } : {}),
    ...(detail ? { detail } : {}),
    ...(level ? { level } : {}),
  };
}

/** Option 43 for the reply: the choice's own bytes, else the bypass shape, with 43.71 echoed. */
function vendorOptionsFor(req: DhcpPacket, choice: BootChoice): Buffer | undefined {
  const item = requestBootItem(req);
  if (item) return encodePxeOptions({ discoveryControl: 8, bootItem: item });
  if (choice.vendorOptions) return choice.vendorOptions;
  return choice.shape === 'bypass' ? BYPASS_VENDOR_OPTIONS : undefined;
}

/** Sub-option 71 of the request's option 43 (boot-server discovery), if well-formed. */
function requestBootItem(req: DhcpPacket): { type: number; layer: number } | undefined {
  const raw = req.options.get(DhcpOption.VENDOR_SPECIFIC);
  if (!raw) return undefined;
  return bootItemOf(decodePxeOptions(raw));
}

/** Build a proxy reply (docs/addressing.md#reply-header-fields, #the-port-4011-ack, docs/dhcp-options.md#reply-options): no address, no address options. */
function buildReply(req: DhcpPacket, ctx: ServerContext, choice: BootChoice, type: number, flags: number): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(DhcpOption.MESSAGE_TYPE, Buffer.of(type));
  options.set(DhcpOption.SERVER_ID, ipToBytes(ctx.serverIp));
  options.set(DhcpOption.VENDOR_CLASS_ID, choice.shape === 'http' ? HTTP_CLASS : PXE_CLASS);
  const uuid = req.options.get(DhcpOption.CLIENT_UUID);
  if (uuid) options.set(DhcpOption.CLIENT_UUID, uuid);
  const vendor = vendorOptionsFor(req, choice);
  if (vendor) options.set(DhcpOption.VENDOR_SPECIFIC, vendor);
  const longName = Buffer.byteLength(choice.file, 'latin1') > MAX_FILE_FIELD;
  // Names that do not fit `file` (long iPXE URLs) go in option 67 with a NUL (docs/addressing.md#boot-file-name).
  if (longName) options.set(DhcpOption.BOOTFILE_NAME, Buffer.from(`${choice.file}\0`, 'latin1'));
  const nextServer =
    (choice.shape === 'binl' && type === MessageType.OFFER) || choice.shape === 'http'
      ? ctx.serverIp
      : (choice.nextServer ?? ctx.tftpServer);
  return {
    op: BootpOp.REPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    transactionId: req.transactionId,
    secs: 0,
    flags,
    clientIp: type === MessageType.OFFER ? ZERO_IP : req.clientIp,
    yourIp: ZERO_IP,
    nextServer,
    relayIp: req.relayIp,
    clientHardware: req.clientHardware,
    serverName: '',
    bootFile: longName ? '' : choice.file,
    options,
  };
}

/** The message types each port answers: DISCOVER on 67; REQUEST and INFORM on 4011. */
export const ACCEPTED_TYPES = {
  dhcp: [MessageType.DISCOVER],
  proxy: [MessageType.REQUEST, MessageType.INFORM],
} as const;

/**
 * The PXE client behind a request of an accepted message type, or why it is ignored: the first
 * half of both decisions, before boot policy (`--decide-url` asks about the client in between).
 */
export function pxeClientOf(req: DhcpPacket, accepted: readonly number[], policy: BootPolicy): PxeClient | Decision {
  if (req.op !== BootpOp.REQUEST) return ignore('not-bootrequest');
  const type = u8Option(req.options, DhcpOption.MESSAGE_TYPE);
  if (type === undefined) return ignore('no-message-type');
  if (!accepted.includes(type)) return ignore('wrong-message-type');
  const client = describeClient(req, policy.httpBoot === true);
  return typeof client === 'string' ? ignore(client) : client;
}

/**
 * Shared front half of both decisions: message type, PXE checks, boot policy. `known` is the
 * request's client when the caller has described it already (`pxeClientOf`), so it is not twice.
 */
function prepare(
  req: DhcpPacket,
  accepted: readonly number[],
  policy: BootPolicy,
  ctx: ServerContext,
  known?: PxeClient,
): { client: PxeClient; choice: BootChoice } | Decision {
  const client = known ?? pxeClientOf(req, accepted, policy);
  if ('kind' in client) return client;
  const choice = chooseBoot(client, policy);
  if ('ignore' in choice) return ignore(choice.ignore, client, choice.detail, choice.level);
  // `http:///` (our HTTP server) becomes this interface's address: the reply and its log line name it.
  return { client, choice: { ...choice, file: expandOwnHttp(choice.file, ctx.httpAddress) } };
}

/**
 * Port 67: a PXE DHCPDISCOVER gets a proxy DHCPOFFER; everything else is ignored.
 * Relayed requests go back to the relay (RFC 2131 §4.1); others are broadcast, since the client
 * has no address yet (docs/addressing.md#where-port-67-answers-go).
 * @throws DecodeError when the request's option 43 is malformed
 */
export function decideProxyOffer(
  req: DhcpPacket,
  ctx: ServerContext,
  policy: BootPolicy,
  client?: PxeClient,
): Decision {
  const prep = prepare(req, ACCEPTED_TYPES.dhcp, policy, ctx, client);
  if ('kind' in prep) return prep;
  const flags = req.flags | BROADCAST_FLAG;
  const reply = buildReply(req, ctx, prep.choice, MessageType.OFFER, flags);
  const to =
    req.relayIp !== ZERO_IP
      ? { address: req.relayIp, port: DhcpPort.SERVER }
      : { address: ctx.broadcastAddress, port: ctx.clientPort };
  return { kind: 'reply', reply, to, ...prep };
}

/**
 * Port 4011: a PXE DHCPREQUEST or DHCPINFORM gets a DHCPACK from port 4011 (docs/addressing.md#where-port-4011-answers-go): back to the
 * sender's address and port when ciaddr is the sender (68 for iPXE, 4011 for EDK2), to ciaddr:68
 * when it differs, and like a port 67 answer when ciaddr is 0.
 * @throws DecodeError when the request's option 43 is malformed
 */
export function decideBootAck(
  req: DhcpPacket,
  from: Destination,
  ctx: ServerContext,
  policy: BootPolicy,
  client?: PxeClient,
): Decision {
  const prep = prepare(req, ACCEPTED_TYPES.proxy, policy, ctx, client);
  if ('kind' in prep) return prep;
  let to: Destination;
  let flags = req.flags;
  if (req.clientIp !== ZERO_IP) {
    to = req.clientIp === from.address ? from : { address: req.clientIp, port: ctx.clientPort };
  } else if (req.relayIp !== ZERO_IP) {
    to = { address: req.relayIp, port: DhcpPort.SERVER };
  } else {
    flags |= BROADCAST_FLAG;
    to = { address: ctx.broadcastAddress, port: ctx.clientPort };
  }
  const choice = ackChoice(prep.client, prep.choice, policy);
  const reply = buildReply(req, ctx, choice, MessageType.ACK, flags);
  return { kind: 'reply', reply, to, client: prep.client, choice };
}

/**
 * A UEFI client asking on port 4011 gets EDK2's answer shape even when it is iPXE (whose offer is
 * bypass-shaped): under `--efi-mode binl`, no option 43 (docs/addressing.md#the-port-4011-ack,
 * docs/vectors.md#vector-24). A Pi's or a 43.71 request's option 43 is left as it is.
 */
function ackChoice(client: PxeClient, choice: BootChoice, policy: BootPolicy): BootChoice {
  if (choice.shape !== 'bypass' || choice.vendorOptions || !client.isIpxe || !isUefiArch(client.arch)) return choice;
  return { ...choice, shape: shapeFor({ ...client, isIpxe: false }, policy.efiMode) };
}
