import { BootpOp, DhcpOption, PXE_CLIENT_CLASS } from '../wire/dhcp-constants.js';
import { stringOption, u16Option } from '../wire/dhcp-options.js';
import type { DhcpPacket } from '../wire/dhcp-packet.js';
import { macToString } from '../wire/ip.js';
import { archName, canonicalArch } from '../wire/arch.js';
import { printable } from '../core/text.js';

/** Vendor and user classes are logged up to this many characters. */
const CLASS_MAX = 64;

/** What a PXE request tells us about its sender: the inputs of boot policy and of log lines. */
export interface PxeClient {
  /** Hardware address, lowercase and colon-separated. */
  mac: string;
  /** Option 93 after canonicalArch; 0 (bios) when the client sent none. */
  arch: number;
  archName: string;
  /** True when option 93 was absent (old ROMs), so arch 0 was assumed. */
  archAssumed: boolean;
  /** Option 60, printable. */
  vendorClass: string;
  /** Option 77 (`iPXE` from iPXE), or undefined. */
  userClass?: string;
  /** Option 97 as received (17 bytes, type 0 + GUID), or undefined. */
  uuid?: Buffer;
  /** Running iPXE: user class `iPXE` or iPXE's option 175 present. */
  isIpxe: boolean;
  /** UEFI HTTP Boot firmware (option 60 `HTTPClient…`); only described when asked for. */
  httpClient?: boolean;
}

/** Why a request was not taken as a PXE client's; each names a counter. */
export type ClientRejection = 'not-bootrequest' | 'not-pxe-client' | 'bad-arch' | 'bad-uuid';

const USER_CLASS_IPXE = 'iPXE';

/**
 * Option 77 as text. RFC 3004 wants length-prefixed entries, but iPXE sends the bare string `iPXE`;
 * both forms are accepted: a first byte equal to the remaining length marks the RFC form.
 */
function userClassOf(req: DhcpPacket): string | undefined {
  const raw = req.options.get(DhcpOption.USER_CLASS);
  if (!raw || raw.length === 0) return undefined;
  if (raw[0] === raw.length - 1 && raw.length > 1) return raw.toString('latin1', 1);
  return stringOption(req.options, DhcpOption.USER_CLASS);
}

const HTTP_CLIENT_CLASS = 'HTTPClient';

/**
 * Check the PXE parts of a decoded request (docs/dhcp-options.md#recognising-a-pxe-request) and describe its sender.
 * With `httpClients` (`--http-boot`), UEFI HTTP Boot requests (option 60 `HTTPClient…`) are taken
 * too; without it they are `not-pxe-client`, as any other class. Pure: returns the reason instead of throwing.
 */
export function describeClient(req: DhcpPacket, httpClients = false): PxeClient | ClientRejection {
  if (req.op !== BootpOp.REQUEST) return 'not-bootrequest';
  const vendor = req.options.get(DhcpOption.VENDOR_CLASS_ID);
  const http = httpClients && vendor?.toString('latin1', 0, HTTP_CLIENT_CLASS.length) === HTTP_CLIENT_CLASS;
  if (
    !http &&
    (!vendor || vendor.length < PXE_CLIENT_CLASS.length || vendor.toString('latin1', 0, 9) !== PXE_CLIENT_CLASS)
  ) {
    return 'not-pxe-client';
  }
  const archRaw = req.options.get(DhcpOption.CLIENT_ARCH);
  let arch = 0;
  if (archRaw !== undefined) {
    const value = u16Option(req.options, DhcpOption.CLIENT_ARCH);
    if (value === undefined) return 'bad-arch';
    arch = canonicalArch(value);
  }
  const uuid = req.options.get(DhcpOption.CLIENT_UUID);
  if (uuid !== undefined && (uuid.length !== 17 || uuid[0] !== 0)) return 'bad-uuid';
  const userClass = userClassOf(req);
  return {
    mac: macToString(req.clientHardware, req.hlen),
    arch,
    archName: archName(arch),
    archAssumed: archRaw === undefined,
    vendorClass: printable(vendor.toString('latin1'), CLASS_MAX),
    ...(userClass !== undefined ? { userClass: printable(userClass, CLASS_MAX) } : {}),
    ...(uuid !== undefined ? { uuid } : {}),
    isIpxe: userClass === USER_CLASS_IPXE || req.options.has(DhcpOption.IPXE_ENCAP),
    ...(http ? { httpClient: true } : {}),
  };
}

/** Option 97's GUID as text, 8-4-4-4-12 lowercase hex in wire order (as pxelinux prints it). */
export function uuidText(uuid: Buffer): string {
  const h = uuid.subarray(uuid.length - 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
