/**
 * Where a layer counts what happened. Each layer names its own counters as a union of literal
 * strings (`DhcpCounter` in src/pxe, `TftpCounter` in src/tftp, …), so a typo or a name built from
 * client data does not compile; the daemon's one `Counters` takes the union of them all.
 */
export interface CounterSink<K extends string> {
  count(key: K, n?: number): void;
}

/** Counters keyed by outcome (`offer-sent`, `not-pxe-client`, `truncated`, …). */
export class Counters<K extends string = string> implements CounterSink<K> {
  readonly #counts = new Map<K, number>();

  /** Keys are our own fixed names, never client data, so the map stays small. */
  count(key: K, n = 1): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + n);
  }

  get(key: K): number {
    return this.#counts.get(key) ?? 0;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/**
 * A token bucket: lets `perSecond` events through on average, bursts up to `burst`.
 * Used so that per-client info lines cannot flood the log under load.
 */
export class RateLimiter {
  #tokens: number;
  #last: number;
  suppressed = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  take(): boolean {
    const t = this.now();
    // A wall clock stepped back (NTP, by hand) must not drive the bucket negative and mute the log.
    this.#tokens = Math.min(this.burst, this.#tokens + (Math.max(0, t - this.#last) / 1000) * this.perSecond);
    this.#last = t;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.suppressed++;
    return false;
  }
}
