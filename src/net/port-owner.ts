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

/** One process as /proc shows it: the targets of its /proc/<pid>/fd links and its `comm`. */
export interface ProcessFds {
  pid: number;
  /** `socket:[inode]`, `/dev/null`, `pipe:[…]`, … */
  fdLinks: readonly string[];
  /** Its command name; absent when the process ended before it was read. */
  comm?: string;
}

/** The inode of an fd link to a socket (`socket:[4242]`), or undefined for any other link. */
export function socketInode(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/**
 * Map socket inodes to the processes holding them, from each process's fd links; the first holder
 * of an inode wins (a socket shared after fork is named once). `processes` is not read at all when
 * there is no inode to look for. Pure.
 */
export function ownersOf(inodes: ReadonlySet<number>, processes: Iterable<ProcessFds>): Map<number, SocketOwner> {
  const owners = new Map<number, SocketOwner>();
  if (inodes.size === 0) return owners;
  for (const p of processes) {
    for (const link of p.fdLinks) {
      const inode = socketInode(link);
      if (inode === undefined || !inodes.has(inode) || owners.has(inode)) continue;
      owners.set(inode, { pid: p.pid, name: p.comm ?? '?' });
    }
  }
  return owners;
}

/** Who holds a UDP port: the bound address, and the process when it could be inspected. */
export interface PortHolder {
  address: string;
  owner?: SocketOwner;
}

/** True on little-endian hosts, where /proc/net/udp writes addresses byte-reversed. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Who holds UDP `port`, from the text of /proc/net/udp and the processes' fd links. Pure. */
export function udpPortHoldersFrom(
  port: number,
  procNetUdp: string,
  processes: Iterable<ProcessFds>,
  littleEndian = HOST_LITTLE_ENDIAN,
): PortHolder[] {
  const entries = parseProcNetUdp(procNetUdp, littleEndian).filter((e) => e.port === port);
  const owners = ownersOf(new Set(entries.map((e) => e.inode)), processes);
  return entries.map((e) => ({ address: e.address, ...(owners.has(e.inode) ? { owner: owners.get(e.inode)! } : {}) }));
}

function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/**
 * Every process of `proc` whose fd directory we may read (other users' are skipped when not root),
 * read lazily; `comm` only for processes that hold a socket.
 */
export function* procProcesses(proc = '/proc'): Generator<ProcessFds> {
  for (const pidText of readOr(() => readdirSync(proc), [] as string[])) {
    if (!/^\d+$/.test(pidText)) continue;
    const dir = `${proc}/${pidText}`;
    const fds = readOr(() => readdirSync(`${dir}/fd`), null);
    if (fds === null) continue;
    const fdLinks = fds.flatMap((fd) => readOr(() => [readlinkSync(`${dir}/fd/${fd}`)], [] as string[]));
    if (!fdLinks.some((l) => socketInode(l) !== undefined)) continue;
    // The process may just have ended: its name is then unknown.
    const comm = readOr(() => readFileSync(`${dir}/comm`, 'utf8').trim(), undefined);
    yield { pid: Number(pidText), fdLinks, ...(comm !== undefined ? { comm } : {}) };
  }
}

/** Who holds UDP `port` in this network namespace: empty when the port is free. */
export function udpPortHolders(port: number, proc = '/proc'): PortHolder[] {
  const text = readOr(() => readFileSync(`${proc}/net/udp`, 'utf8'), '');
  return udpPortHoldersFrom(port, text, procProcesses(proc));
}

/** TCP state LISTEN in /proc/net/tcp (`st` column, include/net/tcp_states.h). */
const TCP_LISTEN = '0A';

/**
 * Who listens on TCP `port`, from the text of /proc/net/tcp (same columns as /proc/net/udp, state
 * in the fourth) and the processes' fd links. Connections that merely use the port are not
 * holders. Pure.
 */
export function tcpListenHoldersFrom(
  port: number,
  procNetTcp: string,
  processes: Iterable<ProcessFds>,
  littleEndian = HOST_LITTLE_ENDIAN,
): PortHolder[] {
  const lines = procNetTcp.split('\n');
  const listening = [lines[0] ?? '', ...lines.slice(1).filter((l) => l.trim().split(/\s+/)[3] === TCP_LISTEN)];
  return udpPortHoldersFrom(port, listening.join('\n'), processes, littleEndian);
}

/** Who listens on TCP `port` in this network namespace: empty when the port is free. */
export function tcpListenHolders(port: number, proc = '/proc'): PortHolder[] {
  const text = readOr(() => readFileSync(`${proc}/net/tcp`, 'utf8'), '');
  return tcpListenHoldersFrom(port, text, procProcesses(proc));
}
