import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** One UDP socket from /proc/net/udp. */
export interface UdpSocketEntry {
  /** Local address, dotted quad. */
  address: string;
  port: number;
  inode: number;
}

/**
 * Parse /proc/net/udp (proc(5)): `sl local_address rem_address st ... inode`, where the local
 * address is the IPv4 address as 8 hex digits in host byte order (little-endian on x86 and ARM)
 * and the port as 4 hex digits. Malformed lines are skipped. Pure.
 */
export function parseProcNetUdp(text: string, littleEndian = true): UdpSocketEntry[] {
  const out: UdpSocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const m = /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(f[1] ?? '');
    const inode = Number(f[9]);
    if (!m || !Number.isInteger(inode)) continue;
    const b = Buffer.from(m[1]!, 'hex');
    if (littleEndian) b.reverse();
    out.push({ address: [...b].join('.'), port: parseInt(m[2]!, 16), inode });
  }
  return out;
}

/** A process holding a socket. */
export interface SocketOwner {
  pid: number;
  name: string;
}

/**
 * Map socket inodes to the processes holding them, by reading every /proc/<pid>/fd link
 * (`socket:[inode]`). Processes we may not inspect (other users' when not root) are skipped.
 */
export function socketOwners(inodes: ReadonlySet<number>, proc = '/proc'): Map<number, SocketOwner> {
  const owners = new Map<number, SocketOwner>();
  if (inodes.size === 0) return owners;
  for (const pidText of readdirSync(proc)) {
    if (!/^\d+$/.test(pidText)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pidText}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`${proc}/${pidText}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (!m || !inodes.has(Number(m[1])) || owners.has(Number(m[1]))) continue;
      let name = '?';
      try {
        name = readFileSync(`${proc}/${pidText}/comm`, 'utf8').trim();
      } catch {
        /* the process just ended */
      }
      owners.set(Number(m[1]), { pid: Number(pidText), name });
    }
  }
  return owners;
}

/** Who holds UDP `port` in this network namespace: empty when the port is free. */
export function udpPortHolders(port: number, proc = '/proc'): { address: string; owner?: SocketOwner }[] {
  let text: string;
  try {
    text = readFileSync(`${proc}/net/udp`, 'utf8');
  } catch {
    return [];
  }
  const entries = parseProcNetUdp(text, new Uint8Array(new Uint16Array([1]).buffer)[0] === 1).filter(
    (e) => e.port === port,
  );
  const owners = socketOwners(new Set(entries.map((e) => e.inode)), proc);
  return entries.map((e) => ({ address: e.address, ...(owners.has(e.inode) ? { owner: owners.get(e.inode)! } : {}) }));
}
