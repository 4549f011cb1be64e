import { isUefiArch } from '../wire/arch.js';
import { BROADCAST_FLAG, BootpOp, DhcpOption, MessageType, PxeSubOption } from '../wire/dhcp-constants.js';
import { encodeOptions } from '../wire/dhcp-options.js';
import type { DhcpPacket } from '../wire/dhcp-packet.js';
import { ipToBytes } from '../wire/ip.js';

/** Who pxe-probe pretends to be. */
export interface ProbeIdentity {
  /** 6-byte hardware address put in `chaddr` (and option 61 where the firmware sends it). */
  mac: Buffer;
  /** Option 93 value. */
  arch: number;
  /** Option 77; `iPXE` makes the probe speak like iPXE. */
  userClass?: string;
  /** The 16 GUID bytes of option 97, wire order; undefined leaves 97 out (some Intel ROMs). */
  uuid?: Buffer;
  /** UEFI HTTP Boot (EDK2 `HttpBootDxe`): option 60 `HTTPClient:…` instead of `PXEClient:…`. */
  httpClient?: boolean;
}

/**
 * Which firmware's packets to copy (docs/firmware.md and test/fixtures):
 * - `edk2`: UEFI PXE (OVMF `UefiPxeBcDxe`), any UEFI arch without user class iPXE;
 * - `ipxe`: iPXE, user class `iPXE`, any arch;
 * - `pxe-rom`: a legacy BIOS PXE 2.1 ROM (Intel, Broadcom, Realtek): iPXE's BIOS shape without 77;
 * - `edk2-http`: UEFI HTTP Boot (OVMF `HttpBootDxe`): EDK2's packet with option 60 `HTTPClient:…`.
 */
export type Firmware = 'edk2' | 'ipxe' | 'pxe-rom' | 'edk2-http';

/** The firmware a probe identity imitates. */
export function firmwareOf(id: ProbeIdentity): Firmware {
  if (id.httpClient) return 'edk2-http';
  if (id.userClass === 'iPXE') return 'ipxe';
  return isUefiArch(id.arch) ? 'edk2' : 'pxe-rom';
}

/** Option 55 of OVMF's DISCOVER (test/fixtures/ovmf-edk2-discover.hex): 35 codes. */
const EDK2_PARAMETERS = [
  1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130,
  131, 132, 133, 134, 135,
] as const;

/** Option 55 of iPXE's DISCOVER (test/fixtures/ipxe-bios-rom-discover.hex); BIOS ROMs ask the same core. */
const IPXE_PARAMETERS = [
  1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203,
] as const;

/** Option 57: 1472, what iPXE and OVMF announce (RFC 2132 §9.10). */
const MAX_MESSAGE_SIZE = 1472;

/** Option 94 (RFC 4578 §2.2): UNDI type 1, then the version the firmware's UNDI reports. */
const NDI: Record<Firmware, readonly [number, number, number]> = {
  edk2: [1, 3, 0],
  'edk2-http': [1, 3, 0],
  ipxe: [1, 2, 1],
  'pxe-rom': [1, 2, 1],
};

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Option 60 as PXE 2.1 §2.2.1 spells it: `PXEClient:Arch:xxxxx:UNDI:yyyzzz`. */
export function vendorClassOf(id: ProbeIdentity): string {
  const fw = firmwareOf(id);
  // iPXE on UEFI reports UNDI 3.10 (ipxe-efi-discover.hex); OVMF 3.0; BIOS ROMs 2.1.
  const undi = fw === 'ipxe' && isUefiArch(id.arch) ? '003010' : isEdk2(fw) ? '003000' : '002001';
  // HttpBootDhcp4.c writes the same layout with `HTTPClient` in front.
  return `${fw === 'edk2-http' ? 'HTTPClient' : 'PXEClient'}:Arch:${String(id.arch).padStart(5, '0')}:UNDI:${undi}`;
}

/** EDK2's own DHCP packets, PXE or HTTP Boot. */
const isEdk2 = (fw: Firmware): boolean => fw === 'edk2' || fw === 'edk2-http';

function ndiOf(id: ProbeIdentity): Buffer {
  const fw = firmwareOf(id);
  if (fw === 'ipxe' && isUefiArch(id.arch)) return Buffer.of(1, 3, 10);
  return Buffer.from(NDI[fw]);
}

function uuidOption(id: ProbeIdentity): [number, Buffer][] {
  return id.uuid ? [[DhcpOption.CLIENT_UUID, Buffer.concat([Buffer.of(0), id.uuid])]] : [];
}

/** The PXE options of a firmware, in the order it writes them (checked against the fixtures). */
function pxeOptions(id: ProbeIdentity): [number, Buffer][] {
  const fw = firmwareOf(id);
  const vendor: [number, Buffer] = [DhcpOption.VENDOR_CLASS_ID, Buffer.from(vendorClassOf(id), 'latin1')];
  const arch: [number, Buffer] = [DhcpOption.CLIENT_ARCH, u16(id.arch)];
  const ndi: [number, Buffer] = [DhcpOption.CLIENT_NDI, ndiOf(id)];
  const maxSize: [number, Buffer] = [DhcpOption.MAX_MESSAGE_SIZE, u16(MAX_MESSAGE_SIZE)];
  const userClass: [number, Buffer][] =
    id.userClass !== undefined ? [[DhcpOption.USER_CLASS, Buffer.from(id.userClass, 'latin1')]] : [];
  if (isEdk2(fw)) {
    // PxeBcDhcp4.c builds 57, 55, 97, 94, 93, 60 in this order (ovmf-edk2-discover.hex).
    return [
      maxSize,
      [DhcpOption.PARAMETER_LIST, Buffer.from(EDK2_PARAMETERS)],
      ...uuidOption(id),
      ndi,
      arch,
      vendor,
      ...userClass,
    ];
  }
  // iPXE's dhcp.c: 57, 93, 94, 60, 77, 55, (175), 61, 97 (ipxe-bios-rom-discover.hex).
  const clientId: [number, Buffer] = [DhcpOption.CLIENT_ID, Buffer.concat([Buffer.of(1), id.mac])];
  return [
    maxSize,
    arch,
    ndi,
    vendor,
    ...userClass,
    [DhcpOption.PARAMETER_LIST, Buffer.from(IPXE_PARAMETERS)],
    clientId,
    ...uuidOption(id),
  ];
}

function packet(
  id: ProbeIdentity,
  xid: number,
  options: [number, Buffer][],
  clientIp = '0.0.0.0',
  flags = BROADCAST_FLAG,
): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  id.mac.copy(chaddr);
  return {
    op: BootpOp.REQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    transactionId: xid >>> 0,
    secs: 0,
    // The probe receives through the kernel's UDP stack, which drops unicasts to an address the
    // interface does not hold yet; the broadcast flag (RFC 2131 §4.1) makes servers broadcast instead.
    // EDK2 sets it too; iPXE and BIOS ROMs do not, as they read raw frames.
    flags,
    clientIp,
    yourIp: '0.0.0.0',
    nextServer: '0.0.0.0',
    relayIp: '0.0.0.0',
    clientHardware: chaddr,
    serverName: '',
    bootFile: '',
    options: new Map(options),
  };
}

function messageType(type: number): [number, Buffer] {
  return [DhcpOption.MESSAGE_TYPE, Buffer.of(type)];
}

/** DHCPDISCOVER as the imitated firmware broadcasts it (RFC 2131 §4.4.1, PXE 2.1 §2.2.1). */
export function buildDiscover(id: ProbeIdentity, xid: number): DhcpPacket {
  return packet(id, xid, [messageType(MessageType.DISCOVER), ...pxeOptions(id)]);
}

/**
 * DHCPREQUEST in SELECTING state for the router's offer (RFC 2131 §4.3.2): options 54 and 50 name
 * the chosen server and address. EDK2 puts them first, iPXE last (the *-request-67 fixtures).
 */
export function buildRequest(id: ProbeIdentity, xid: number, serverId: string, address: string): DhcpPacket {
  const chosen: [number, Buffer][] = [
    [DhcpOption.SERVER_ID, ipToBytes(serverId)],
    [DhcpOption.REQUESTED_IP, ipToBytes(address)],
  ];
  const rest = pxeOptions(id);
  const options = isEdk2(firmwareOf(id)) ? [...chosen, ...rest] : [...rest, ...chosen];
  return packet(id, xid, [messageType(MessageType.REQUEST), ...options]);
}

/** What a port 4011 request is for. */
export interface BootRequest {
  /** Our leased address (ciaddr). */
  clientIp: string;
  /** The proxy or boot server asked: option 54 (iPXE and ROMs send it, EDK2 does not). */
  serverId: string;
  /** PXE boot-server discovery: the menu item's type, sent as option 43 sub-option 71, layer 0. */
  bootItemType?: number;
}

/**
 * DHCPREQUEST to port 4011 (docs/addressing.md#port-4011-requests): ciaddr set, flags 0, a fresh xid. It leaves
 * from port 68 as iPXE's and the BIOS ROMs' do, so every answer comes back to one socket.
 */
export function buildBootRequest(id: ProbeIdentity, xid: number, req: BootRequest): DhcpPacket {
  const options: [number, Buffer][] = [messageType(MessageType.REQUEST), ...pxeOptions(id)];
  if (!isEdk2(firmwareOf(id))) options.push([DhcpOption.SERVER_ID, ipToBytes(req.serverId)]);
  if (req.bootItemType !== undefined) {
    const item = Buffer.alloc(4);
    item.writeUInt16BE(req.bootItemType, 0);
    options.push([DhcpOption.VENDOR_SPECIFIC, encodeOptions([[PxeSubOption.BOOT_ITEM, item]])]);
  }
  return packet(id, xid, options, req.clientIp, 0);
}

/** DHCPRELEASE of a lease (RFC 2131 §4.4.6): unicast to the server, ciaddr = the address, option 54. */
export function buildRelease(id: ProbeIdentity, xid: number, serverId: string, address: string): DhcpPacket {
  const clientId: [number, Buffer] = [DhcpOption.CLIENT_ID, Buffer.concat([Buffer.of(1), id.mac])];
  const ids: [number, Buffer][] = isEdk2(firmwareOf(id)) ? [] : [clientId];
  return packet(
    id,
    xid,
    [messageType(MessageType.RELEASE), [DhcpOption.SERVER_ID, ipToBytes(serverId)], ...ids],
    address,
    0,
  );
}
