/**
 * Who may hold a transfer slot: the one place where TFTP admission is decided. A transfer is
 * unconfirmed until its peer's first ACK (until then its source address may be a lie); unconfirmed
 * transfers live in a budget of their own, the oldest out first once it has had `unconfirmedGraceMs`
 * to answer, so requests that never ACK cannot hold slots for long, and a real client whose first
 * ACK is still queued in a storm is not thrown out for a newcomer. A flood faster than the budget
 * per grace (1024 a second by default) gets newcomers answered busy until it ages out.
 */

export interface TableLimits {
  /** Transfers at once, confirmed and unconfirmed. */
  maxTransfers: number;
  /** Unconfirmed transfers at once; when full, the oldest unconfirmed one makes room (after its grace). */
  maxUnconfirmed: number;
  /** Transfers one client address may hold at once. */
  maxPerAddress: number;
  /** Unconfirmed transfers one client address may hold at once. */
  maxUnconfirmedPerAddress: number;
  /**
   * An address whose transfers ended unconfirmed this many times is not served again until
   * `suspectMs` after its last such end: a forged source cannot pump packets by asking anew.
   */
  suspectStrikes: number;
  suspectMs: number;
  /**
   * An unconfirmed entry younger than this is not evicted to make room (the request that wanted the
   * room is answered busy instead): a real client's first ACK may be waiting in a queue during a
   * storm, and evicting it then loses a machine. Liars are evicted once this old. Default 0.
   */
  unconfirmedGraceMs?: number;
}

/** Addresses remembered as suspects at most; the oldest is forgotten first. */
const MAX_SUSPECTS = 4096;

/** What the table needs of an entry. */
export interface Slot {
  /** `address:port` of the peer's TID. */
  readonly key: string;
  readonly address: string;
  /** Make room: end at once, freeing everything (the table has already let go of it). */
  evict(): void;
}

export type Admission<T extends Slot> =
  { ok: true; evicted?: T } | { ok: false; why: 'busy' | 'address-busy' | 'suspect' };

/** The transfers in progress, by TID, with per-address and unconfirmed accounting. */
export class TransferTable<T extends Slot> {
  readonly limits: TableLimits;
  readonly #byKey = new Map<string, T>();
  /** Unconfirmed entries with the time each was added, oldest first (Map keeps insertion order). */
  readonly #unconfirmed = new Map<string, { entry: T; since: number }>();
  readonly #perAddress = new Map<string, { all: number; unconfirmed: number }>();
  /** Addresses whose transfers recently ended without a single ACK, oldest first. */
  readonly #suspects = new Map<string, { strikes: number; until: number }>();
  readonly #now: () => number;

  constructor(limits: TableLimits, now: () => number = Date.now) {
    this.limits = limits;
    this.#now = now;
  }

  get size(): number {
    return this.#byKey.size;
  }

  get unconfirmed(): number {
    return this.#unconfirmed.size;
  }

  get(key: string): T | undefined {
    return this.#byKey.get(key);
  }

  values(): IterableIterator<T> {
    return this.#byKey.values();
  }

  /**
   * Decide whether a new request from `address` gets a slot. When the unconfirmed budget (or the
   * whole table, while it holds unconfirmed entries) is full, the oldest unconfirmed entry is
   * evicted for it, once it is older than the grace: liars age out, a real client confirms within
   * a round trip and is then safe.
   */
  admit(address: string): Admission<T> {
    const suspect = this.#suspects.get(address);
    if (suspect && suspect.strikes >= this.limits.suspectStrikes) {
      if (this.#now() < suspect.until) return { ok: false, why: 'suspect' };
      this.#suspects.delete(address);
    }
    const mine = this.#perAddress.get(address) ?? { all: 0, unconfirmed: 0 };
    if (mine.all >= this.limits.maxPerAddress || mine.unconfirmed >= this.limits.maxUnconfirmedPerAddress) {
      return { ok: false, why: 'address-busy' };
    }
    const full = this.#byKey.size >= this.limits.maxTransfers;
    if (!full && this.#unconfirmed.size < this.limits.maxUnconfirmed) return { ok: true };
    const oldest = this.#unconfirmed.values().next();
    if (oldest.done || this.#now() - oldest.value.since < (this.limits.unconfirmedGraceMs ?? 0)) {
      return { ok: false, why: 'busy' };
    }
    const { entry } = oldest.value;
    this.remove(entry);
    entry.evict();
    return { ok: true, evicted: entry };
  }

  /** Take a slot admitted by `admit`; the entry starts unconfirmed. */
  add(entry: T): void {
    this.#byKey.set(entry.key, entry);
    this.#unconfirmed.set(entry.key, { entry, since: this.#now() });
    const mine = this.#perAddress.get(entry.address) ?? { all: 0, unconfirmed: 0 };
    mine.all++;
    mine.unconfirmed++;
    this.#perAddress.set(entry.address, mine);
  }

  /** The peer ACKed: the entry leaves the unconfirmed budget and can no longer be evicted. */
  confirm(entry: T): void {
    if (this.#byKey.get(entry.key) !== entry || !this.#unconfirmed.delete(entry.key)) return;
    const mine = this.#perAddress.get(entry.address);
    if (mine) mine.unconfirmed--;
  }

  /** An entry ended without its peer ever ACKing: one strike against its address. */
  strike(address: string): void {
    const seen = this.#suspects.get(address);
    this.#suspects.delete(address); // re-inserted last: the Map stays ordered by last strike
    this.#suspects.set(address, { strikes: (seen?.strikes ?? 0) + 1, until: this.#now() + this.limits.suspectMs });
    if (this.#suspects.size > MAX_SUSPECTS) this.#suspects.delete(this.#suspects.keys().next().value!);
  }

  /** Free an entry's slot (idempotent). */
  remove(entry: T): void {
    if (this.#byKey.get(entry.key) !== entry) return;
    this.#byKey.delete(entry.key);
    const wasUnconfirmed = this.#unconfirmed.delete(entry.key);
    const mine = this.#perAddress.get(entry.address);
    if (!mine) return;
    mine.all--;
    if (wasUnconfirmed) mine.unconfirmed--;
    if (mine.all <= 0) this.#perAddress.delete(entry.address);
  }
}
