import {
  BROADCAST_FLAG,
  DhcpOption,
  DISCOVERY_USE_BOOT_FILE,
  messageTypeName,
  PXE_CLIENT_CLASS,
  PxeSubOption,
} from '../wire/dhcp-constants.js';
import { ipOption, stringOption, u8Option, type OptionMap } from '../wire/dhcp-options.js';
import type { DhcpPacket } from '../wire/dhcp-packet.js';
import { decodeBootMenu, decodeBootServers, decodePxeOptions } from '../wire/pxe-options.js';
import { DecodeError } from '../wire/reader.js';
import type { Firmware } from './client-packets.js';

/**
 * Shape of option 43 as EDK2 classifies it (docs/dhcp-options.md#how-clients-read-option-43): `none` = no 43 (BINL when 60 is
 * PXEClient); `bypass` = sub-option 6 bit 3 (boot the file at once); `menu` = a boot menu (9);
 * `pxe10` = other sub-options 6-10; `wfm11a` = only MTFTP sub-options 1-5 (EDK2 drops it);
 * `other` = none of 1-10; `malformed` = not a TLV list.
 */
export type VendorShape = 'none' | 'bypass' | 'menu' | 'pxe10' | 'wfm11a' | 'other' | 'malformed';

export interface MenuItem {
  type: number;
  description: string;
}

/** One server reply, reduced to what decides a PXE boot. */
export interface OfferSummary {
  /** Option 54, else the source address. */
  server: string;
  source: string;
  message: string;
  /** `address`: yiaddr set (a DHCP server's lease); `proxy`: yiaddr 0 and 60 PXEClient; else `other`. */
  kind: 'address' | 'proxy' | 'other';
  yourIp: string;
  /** siaddr. */
  nextServer: string;
  /** `file`, or option 67 when `file` is empty. */
  bootFile: string;
  /** Option 66. */
  tftpServerName?: string;
  /** Option 60 starts with PXEClient. */
  pxeClient: boolean;
  /** Option 60 starts with HTTPClient: an offer UEFI HTTP Boot takes (its boot file a URL). */
  httpClient?: boolean;
  vendorShape: VendorShape;
  /** Option 43 as hex, when present. */
  vendorHex?: string;
  menu: MenuItem[];
  /** Sub-option 8: boot server type → addresses. */
  bootServers: { type: number; addresses: string[] }[];
  discoveryControl?: number;
  /** Option 97: echoed as sent, different, absent, or we sent none. */
  uuidEcho: 'echoed' | 'differs' | 'missing' | 'not-sent';
  subnetMask?: string;
  router?: string;
  leaseSeconds?: number;
  broadcastFlag: boolean;
}

function u32OrUndefined(o: OptionMap, code: number): number | undefined {
  const v = o.get(code);
  return v?.length === 4 ? v.readUInt32BE(0) : undefined;
}

function shapeOf(sub: OptionMap): VendorShape {
  const control = u8Option(sub, PxeSubOption.DISCOVERY_CONTROL);
  if (control !== undefined && control & DISCOVERY_USE_BOOT_FILE) return 'bypass';
  if (sub.has(PxeSubOption.BOOT_MENU)) return 'menu';
  if ([6, 7, 8, 9, 10].some((c) => sub.has(c))) return 'pxe10';
  if ([1, 2, 3, 4, 5].every((c) => sub.has(c))) return 'wfm11a';
  return 'other';
}

function uuidEcho(reply: OptionMap, sent: Buffer | undefined): OfferSummary['uuidEcho'] {
  if (!sent) return 'not-sent';
  const got = reply.get(DhcpOption.CLIENT_UUID);
  if (!got) return 'missing';
  return got.equals(sent) ? 'echoed' : 'differs';
}

/**
 * Summarise a server reply. `sentUuid` is the option 97 value we sent (17 bytes), if any.
 * Pure; a malformed option 43 is reported as such, never thrown.
 */
export function summarizeOffer(
  p: DhcpPacket,
  from: { address: string; port: number },
  sentUuid?: Buffer,
): OfferSummary {
  const o = p.options;
  const vendor = o.get(DhcpOption.VENDOR_CLASS_ID);
  const pxeClient = vendor !== undefined && vendor.toString('latin1', 0, 9) === PXE_CLIENT_CLASS;
  const httpClient = vendor !== undefined && vendor.toString('latin1', 0, 10) === 'HTTPClient';
  const raw43 = o.get(DhcpOption.VENDOR_SPECIFIC);
  let sub: OptionMap = new Map();
  let vendorShape: VendorShape = 'none';
  if (raw43) {
    try {
      sub = decodePxeOptions(raw43);
      vendorShape = shapeOf(sub);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      vendorShape = 'malformed';
    }
  }
  const kind = p.yourIp !== '0.0.0.0' ? 'address' : pxeClient || httpClient ? 'proxy' : 'other';
  const tftpServerName = stringOption(o, DhcpOption.TFTP_SERVER_NAME);
  const subnetMask = ipOption(o, DhcpOption.SUBNET_MASK);
  const router = ipOption(o, DhcpOption.ROUTER);
  const leaseSeconds = u32OrUndefined(o, DhcpOption.LEASE_TIME);
  const discoveryControl = u8Option(sub, PxeSubOption.DISCOVERY_CONTROL);
  return {
    server: ipOption(o, DhcpOption.SERVER_ID) ?? from.address,
    source: `${from.address}:${from.port}`,
    message: messageTypeName(u8Option(o, DhcpOption.MESSAGE_TYPE)),
    kind,
    yourIp: p.yourIp,
    nextServer: p.nextServer,
    bootFile: p.bootFile || (stringOption(o, DhcpOption.BOOTFILE_NAME) ?? ''),
    ...(tftpServerName !== undefined ? { tftpServerName } : {}),
    pxeClient,
    ...(httpClient ? { httpClient } : {}),
    vendorShape,
    ...(raw43 ? { vendorHex: raw43.toString('hex') } : {}),
    menu: decodeBootMenu(sub.get(PxeSubOption.BOOT_MENU)),
    bootServers: decodeBootServers(sub.get(PxeSubOption.BOOT_SERVERS)),
    ...(discoveryControl !== undefined ? { discoveryControl } : {}),
    uuidEcho: uuidEcho(o, sentUuid),
    ...(subnetMask ? { subnetMask } : {}),
    ...(router ? { router } : {}),
    ...(leaseSeconds !== undefined ? { leaseSeconds } : {}),
    broadcastFlag: (p.flags & BROADCAST_FLAG) !== 0,
  };
}

/** What the imitated firmware does next with the offers it collected. */
export type BootPlan =
  | { kind: 'direct'; via: OfferSummary; nextServer: string; file: string }
  | { kind: 'ask-4011'; via: OfferSummary; target: string; bootItemType?: number }
  | { kind: 'none'; reason: string };

const ZERO = '0.0.0.0';

function pxe10(o: OfferSummary): boolean {
  return o.pxeClient && (o.vendorShape === 'bypass' || o.vendorShape === 'menu' || o.vendorShape === 'pxe10');
}

function binl(o: OfferSummary): boolean {
  return o.pxeClient && (o.vendorShape === 'none' || o.vendorShape === 'other');
}

/** PXE10 offer → boot at once (bit 3 + file) or boot-server discovery with the default menu item. */
function planPxe10(o: OfferSummary): BootPlan {
  if (o.vendorShape === 'bypass' && o.bootFile) {
    return { kind: 'direct', via: o, nextServer: o.nextServer, file: o.bootFile };
  }
  // EDK2 picks the first menu item when the prompt is absent or its timeout is 0 (PxeBcBoot.c).
  const item = o.menu[0];
  if (!item)
    return {
      kind: 'none',
      reason: `the offer from ${o.server} has PXE options but neither a boot file with discovery control 8 nor a boot menu`,
    };
  if (item.type === 0)
    return {
      kind: 'none',
      reason: `the first boot menu item of ${o.server} has type 0, which firmware treats as "boot from local disk"`,
    };
  const listed = o.bootServers.find((s) => s.type === item.type)?.addresses[0];
  const target = listed ?? (o.nextServer !== ZERO ? o.nextServer : o.server);
  return { kind: 'ask-4011', via: o, target, bootItemType: item.type };
}

/** A BINL offer: the boot answer comes from port 4011 of siaddr, else of option 54 (docs/addressing.md#port-4011-requests). */
function planBinl(o: OfferSummary): BootPlan {
  return { kind: 'ask-4011', via: o, target: o.nextServer !== ZERO ? o.nextServer : o.server };
}

const isHttpUrl = (file: string): boolean => /^https?:\/\//i.test(file);

/**
 * UEFI HTTP Boot (EDK2 `HttpBootDhcp4.c`, docs/firmware.md#uefi-http-boot): an offer counts only with
 * option 60 `HTTPClient` and a URI as its boot file; the lease's own URI wins, then a proxy's.
 */
function planHttpBoot(lease: OfferSummary | undefined, proxies: OfferSummary[]): BootPlan {
  if (lease?.httpClient && isHttpUrl(lease.bootFile))
    return { kind: 'direct', via: lease, nextServer: ZERO, file: lease.bootFile };
  const proxy = proxies.find((o) => o.httpClient && isHttpUrl(o.bootFile));
  if (proxy) return { kind: 'direct', via: proxy, nextServer: ZERO, file: proxy.bootFile };
  return { kind: 'none', reason: 'no offer carried option 60 HTTPClient with an http:// boot file' };
}

/**
 * Choose as the imitated firmware would. EDK2 and PXE ROMs rank (PxeBcDhcp4.c): the lease's own
 * PXE10 answer, a proxy's PXE10, the lease's BINL, a proxy's BINL, a plain boot file in the lease.
 * iPXE takes a boot file in the lease first (its settings order), then the first proxy offer.
 */
export function planBoot(offers: OfferSummary[], firmware: Firmware): BootPlan {
  const lease = offers.find((o) => o.kind === 'address' && o.message === 'OFFER');
  const proxies = offers.filter((o) => o.kind === 'proxy');
  if (firmware === 'edk2-http') return planHttpBoot(lease, proxies);
  const leaseFile = lease?.bootFile
    ? { kind: 'direct' as const, via: lease, nextServer: lease.nextServer, file: lease.bootFile }
    : undefined;
  if (firmware === 'ipxe') {
    if (leaseFile) return leaseFile;
    const p = proxies[0];
    if (!p) return { kind: 'none', reason: 'no offer carried a boot file' };
    if (p.bootFile && p.nextServer !== ZERO)
      return { kind: 'direct', via: p, nextServer: p.nextServer, file: p.bootFile };
    if (p.menu.length > 0) return planPxe10(p);
    return { kind: 'ask-4011', via: p, target: p.server };
  }
  if (lease && pxe10(lease)) return planPxe10(lease);
  const proxy10 = proxies.find(pxe10);
  if (proxy10) return planPxe10(proxy10);
  if (lease && binl(lease)) return planBinl(lease);
  const proxyBinl = proxies.find(binl);
  if (proxyBinl) return planBinl(proxyBinl);
  if (leaseFile) return leaseFile;
  return { kind: 'none', reason: 'no offer carried a boot file or a usable PXE answer' };
}
