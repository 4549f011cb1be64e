/** UDP ports of DHCP and PXE (RFC 2131 §4.1; PXE 2.1 §2.2.1 for the proxyDHCP/boot-server port). */
export const DhcpPort = { SERVER: 67, CLIENT: 68, PROXY: 4011 } as const;

/** BOOTP `op` (RFC 951). */
export const BootpOp = { REQUEST: 1, REPLY: 2 } as const;

/** DHCP option codes this daemon reads or writes (RFC 2132; 93/94/97 from RFC 4578; 77 RFC 3004). */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOSTNAME: 12,
  BOOT_FILE_SIZE: 13,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS_ID: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;
export type DhcpOption = (typeof DhcpOption)[keyof typeof DhcpOption];

/** Option 53 values (RFC 2132 §9.6). */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const messageTypeNames = new Map<number, string>(Object.entries(MessageType).map(([k, v]) => [v, k]));

/** DHCPDISCOVER, …, or `TYPE_<n>` for an unknown value, so nothing is lost in logs. */
export function messageTypeName(type: number | undefined): string {
  if (type === undefined) return 'none';
  return messageTypeNames.get(type) ?? `TYPE_${type}`;
}

/** Option 43 sub-option codes (PXE 2.1 spec, table 2-1). */
export const PxeSubOption = {
  MTFTP_IP: 1,
  MTFTP_CPORT: 2,
  MTFTP_SPORT: 3,
  MTFTP_TMOUT: 4,
  MTFTP_DELAY: 5,
  DISCOVERY_CONTROL: 6,
  DISCOVERY_MCAST_ADDR: 7,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  MCAST_ADDRS_ALLOC: 11,
  CREDENTIAL_TYPES: 12,
  BOOT_ITEM: 71,
  END: 255,
} as const;

/** Discovery control bit 3: boot straight from the offered file, no menu, no discovery. */
export const DISCOVERY_USE_BOOT_FILE = 0x08;

/** Flags bit 15 (RFC 2131 §2): the client wants broadcast replies. */
export const BROADCAST_FLAG = 0x8000;

/** The RFC 1497 magic cookie at offset 236. */
export const MAGIC_COOKIE = 0x63825363;

/** Fixed BOOTP header length before the cookie (RFC 951). */
export const BOOTP_HEADER_LEN = 236;

/** Option 60 prefix of every PXE client (PXE 2.1 §2.2.1); compared on these 9 bytes only. */
export const PXE_CLIENT_CLASS = 'PXEClient';
