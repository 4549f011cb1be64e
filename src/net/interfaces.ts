import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { UserError } from '../core/errors.js';
import { ipToNumber, numberToIp } from '../wire/ip.js';

/** An interface we serve, with the addresses pxe-pdhcp's `-i` used to read by ioctl. */
export interface InterfaceInfo {
  name: string;
  /** Kernel interface index, for SO_BINDTOIFINDEX. */
  index: number;
  /** First IPv4 address. */
  address: string;
  netmask: string;
  /** Directed broadcast address (address | ~netmask). */
  broadcast: string;
  mtu: number;
}

/** Injectable sources, so tests need no real interfaces. */
export interface InterfaceSources {
  list: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  readSys: (name: string, attr: string) => string | undefined;
}

export const systemInterfaces: InterfaceSources = {
  list: networkInterfaces,
  readSys: (name, attr) => {
    try {
      return readFileSync(`/sys/class/net/${name}/${attr}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  },
};

/** Interface names the kernel accepts (IFNAMSIZ − 1 characters), so a name never walks /sys. */
const IFNAME = /^[\w.:@-]{1,15}$/;

/**
 * An interface that may have no IPv4 address yet (a DHCP client's): its index and MTU.
 * @throws UserError for an invalid or missing interface
 */
export function linkOf(name: string, src: InterfaceSources = systemInterfaces): { index: number; mtu: number } {
  if (!IFNAME.test(name)) throw new UserError(`invalid interface name '${name}'`);
  const index = Number(src.readSys(name, 'ifindex'));
  if (!Number.isInteger(index) || index <= 0) throw new UserError(`interface ${name} does not exist`);
  return { index, mtu: Number(src.readSys(name, 'mtu')) || 1500 };
}

/** Directed broadcast of an address and netmask. */
export function broadcastOf(address: string, netmask: string): string {
  return numberToIp((ipToNumber(address) | ~ipToNumber(netmask)) >>> 0);
}

/** Look an interface up by name. @throws UserError when it is missing or has no IPv4 address */
export function lookupInterface(name: string, src: InterfaceSources = systemInterfaces): InterfaceInfo {
  if (!/^[\w.:@-]{1,15}$/.test(name)) throw new UserError(`invalid interface name '${name}'`);
  const index = Number(src.readSys(name, 'ifindex'));
  const entries = src.list()[name];
  if (!entries && !Number.isInteger(index)) throw new UserError(`interface ${name} does not exist`);
  const v4 = entries?.find((e) => e.family === 'IPv4');
  if (!v4) {
    // os.networkInterfaces() leaves out links that are not running (no carrier, or down).
    const state = src.readSys(name, 'operstate');
    const why = state && state !== 'up' && state !== 'unknown' ? ` (its link is ${state})` : '';
    throw new UserError(`interface ${name} has no IPv4 address${why}`);
  }
  if (!Number.isInteger(index) || index <= 0) throw new UserError(`cannot read the index of interface ${name}`);
  const mtu = Number(src.readSys(name, 'mtu'));
  return {
    name,
    index,
    address: v4.address,
    netmask: v4.netmask,
    broadcast: broadcastOf(v4.address, v4.netmask),
    mtu: Number.isInteger(mtu) && mtu > 0 ? mtu : 1500,
  };
}

/** True when `address` is assigned to an interface of this host (or is 0.0.0.0). */
export function isLocalAddress(address: string, src: InterfaceSources = systemInterfaces): boolean {
  if (address === '0.0.0.0') return true;
  return Object.values(src.list()).some((list) => list?.some((e) => e.family === 'IPv4' && e.address === address));
}

/** The MTU of the interface holding `address`, or 1500 when unknown. */
export function mtuOfAddress(address: string, src: InterfaceSources = systemInterfaces): number {
  for (const [name, list] of Object.entries(src.list())) {
    if (list?.some((e) => e.family === 'IPv4' && e.address === address)) {
      const mtu = Number(src.readSys(name, 'mtu'));
      if (Number.isInteger(mtu) && mtu > 0) return mtu;
    }
  }
  return 1500;
}
