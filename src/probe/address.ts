import { execFile } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { ipToNumber } from '../wire/ip.js';

const run = promisify(execFile);

/** Prefix length of a dotted netmask (255.255.255.0 → 24); 32 when absent or not contiguous. */
export function prefixLength(mask: string | undefined): number {
  if (!mask) return 32;
  const n = ipToNumber(mask);
  const len = Math.clz32(~n >>> 0);
  const contiguous = len === 0 ? n === 0 : (0xffffffff << (32 - len)) >>> 0 === n;
  return contiguous ? len : 32;
}

/** True when the interface already holds the address. */
export function hasAddress(iface: string, address: string): boolean {
  return (networkInterfaces()[iface] ?? []).some((e) => e.family === 'IPv4' && e.address === address);
}

/**
 * Give the interface the leased address for as long as the probe needs a source address (the
 * port 4011 request, TFTP, DHCPRELEASE), as the firmware would configure it. Returns the undo, or
 * undefined when the address was already there (then it is left alone).
 * @throws Error when `ip addr add` fails
 */
export async function borrowAddress(
  iface: string,
  address: string,
  mask: string | undefined,
): Promise<(() => Promise<void>) | undefined> {
  if (hasAddress(iface, address)) return undefined;
  const cidr = `${address}/${prefixLength(mask)}`;
  await run('ip', ['addr', 'add', cidr, 'dev', iface]);
  return async () => {
    await run('ip', ['addr', 'del', cidr, 'dev', iface]).catch(() => undefined);
  };
}
