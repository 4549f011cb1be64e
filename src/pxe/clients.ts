import type { DecidedBy, DecideOutcome } from '../core/events.js';

/**
 * The PXE clients seen lately, by MAC, with the IP address each one uses where we learnt it: from
 * its port 4011 request (ciaddr), or from the DHCPREQUEST it broadcasts to the real DHCP server
 * (option 50, the address it is taking). TFTP and HTTP see only an IP address; this table gives
 * them the MAC and arch behind it, for `--remap`'s `${mac}` and `${arch}` and for events. `/status`
 * lists the latest entries. Bounded: the least recently seen client is forgotten first.
 */

export interface SeenClient {
  mac: string;
  arch: string;
  ip?: string;
  userClass?: string;
  /** Milliseconds since the epoch. */
  lastSeen: number;
  /** The last answer we gave, or why we gave none. */
  last?: { port: number; file: string; rule: string; decidedBy: DecidedBy } | { port: number; refused: string };
  /**
   * The last request to `--decide-url` about it: when, to where, the HTTP status (or `timeout`,
   * `unreachable`, …), how long it took and what came of it.
   */
  decide?: { time: string; url: string; status: number | string; ms: number; outcome: DecideOutcome; detail?: string };
}

export const CLIENT_TABLE_SIZE = 1024;

export class ClientTable {
  readonly #byMac = new Map<string, SeenClient>();
  readonly #byIp = new Map<string, string>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max = CLIENT_TABLE_SIZE, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  get size(): number {
    return this.#byMac.size;
  }

  /** Record that a client was seen (most recent last), merging what is new. */
  note(mac: string, update: Partial<Omit<SeenClient, 'mac' | 'lastSeen'>>): SeenClient {
    const old = this.#byMac.get(mac);
    if (old) this.#byMac.delete(mac);
    // Updated in place, field by field: this runs for every packet, and spreads cost more than the rest.
    const entry: SeenClient = old ?? { mac, arch: 'bios', lastSeen: 0 };
    entry.lastSeen = this.#now();
    if (update.arch !== undefined) entry.arch = update.arch;
    if (update.userClass !== undefined) entry.userClass = update.userClass;
    if (update.last !== undefined) entry.last = update.last;
    if (update.decide !== undefined) entry.decide = update.decide;
    if (update.ip !== undefined && update.ip !== '0.0.0.0') {
      if (entry.ip !== undefined && entry.ip !== update.ip && this.#byIp.get(entry.ip) === mac)
        this.#byIp.delete(entry.ip);
      entry.ip = update.ip;
      this.#byIp.set(update.ip, mac);
    }
    this.#byMac.set(mac, entry);
    if (this.#byMac.size > this.#max) this.#forget(this.#byMac.keys().next().value!);
    return entry;
  }

  /** The client using this IP address, if known. */
  byIp(ip: string): SeenClient | undefined {
    const mac = this.#byIp.get(ip);
    return mac === undefined ? undefined : this.#byMac.get(mac);
  }

  byMac(mac: string): SeenClient | undefined {
    return this.#byMac.get(mac);
  }

  /** The `n` clients seen last, newest first. */
  recent(n: number): SeenClient[] {
    const all = [...this.#byMac.values()];
    return all.slice(Math.max(0, all.length - n)).reverse();
  }

  #forget(mac: string): void {
    const e = this.#byMac.get(mac);
    this.#byMac.delete(mac);
    if (e?.ip !== undefined && this.#byIp.get(e.ip) === mac) this.#byIp.delete(e.ip);
  }
}
