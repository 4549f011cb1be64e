import { fileOrigin, type FileOrigin } from '../core/events.js';
import type { FileSource, OpenResult } from '../files/root.js';

/**
 * Where each TFTP transfer's file came from. The TFTP server tells of a transfer's start by the
 * name it serves; the file it opened is its own. So the source behind its root (`--upstream`) is
 * wrapped: every file it opens is noted by name with its origin (`cache-hit`, `cache-miss`), and
 * the start of a transfer of that name takes the oldest note. A transfer that finds no note was
 * served from the local root, which is tried first and never goes through the source.
 *
 * A note is taken within moments of being made (an open is followed by one socket bind, then the
 * start); notes nobody took (a transfer that ended before it started) expire, and there are at most
 * `max` of them.
 */
export class OriginTracker {
  readonly #notes = new Map<string, { origin: FileOrigin; at: number }[]>();
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #count = 0;

  constructor(o: { max?: number; ttlMs?: number; now?: () => number } = {}) {
    this.#max = o.max ?? 256;
    this.#ttlMs = o.ttlMs ?? 10_000;
    this.#now = o.now ?? Date.now;
  }

  /** Notes not yet taken. */
  get size(): number {
    return this.#count;
  }

  /** `source` with every file it opens noted. */
  wrap(source: FileSource): FileSource {
    return {
      open: async (name: string): Promise<OpenResult> => {
        const r = await source.open(name);
        if (r.ok) this.note(r.file.name, fileOrigin(r.file.cache));
        return r;
      },
      check: (name) => source.check(name),
    };
  }

  /** A file of this name was opened from the wrapped source. */
  note(name: string, origin: FileOrigin): void {
    const now = this.#now();
    if (this.#count >= this.#max) this.#expire(now);
    if (this.#count >= this.#max) this.#dropOldest();
    const list = this.#notes.get(name);
    if (list) list.push({ origin, at: now });
    else this.#notes.set(name, [{ origin, at: now }]);
    this.#count++;
  }

  /** The origin of a transfer of `name` that starts now: the oldest live note, else `local`. */
  take(name: string): FileOrigin {
    const list = this.#notes.get(name);
    if (!list) return 'local';
    const now = this.#now();
    let origin: FileOrigin = 'local';
    while (list.length > 0) {
      const n = list.shift()!;
      this.#count--;
      if (now - n.at <= this.#ttlMs) {
        origin = n.origin;
        break;
      }
    }
    if (list.length === 0) this.#notes.delete(name);
    return origin;
  }

  #expire(now: number): void {
    for (const [name, list] of this.#notes) {
      const live = list.filter((n) => now - n.at <= this.#ttlMs);
      this.#count -= list.length - live.length;
      if (live.length === 0) this.#notes.delete(name);
      else this.#notes.set(name, live);
    }
  }

  #dropOldest(): void {
    const [name, list] = this.#notes.entries().next().value!;
    list.shift();
    this.#count--;
    if (list.length === 0) this.#notes.delete(name);
  }
}
