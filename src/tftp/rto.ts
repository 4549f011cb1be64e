/** Floor of the retransmission timeout: a LAN round trip is well under 1 ms, but timers are coarse. */
export const MIN_RTO_MS = 20;
/** Ceiling when the client names no `timeout` (RFC 2349). */
export const DEFAULT_MAX_RTO_MS = 2000;
/** RFC 6298 §2.1: 1 s until the first round trip has been measured. */
const INITIAL_RTO_MS = 1000;
/** RFC 6298 §2: clock granularity term. */
const GRANULARITY_MS = 1;

/**
 * Retransmission timeout from measured round trips (RFC 6298: SRTT/RTTVAR, Karn's rule, doubling on
 * timeout). A fixed 1 s timer makes a lossy link unusable (10 % loss on 2000 blocks is minutes); an
 * adaptive one recovers in a few round trips. A client `timeout` option caps it, so we never wait
 * longer than the client asked us to.
 */
export class RetransmitTimer {
  readonly minMs = MIN_RTO_MS;
  readonly maxMs: number;
  currentMs: number;
  lastSendAt = -Infinity;
  #srtt = 0;
  #rttvar = 0;
  #measured = false;
  #sampleBlock = -1;
  #sampleAt = 0;
  /** The timeout the samples give, before any backoff. */
  #baseMs: number;

  constructor(clientTimeoutMs?: number) {
    this.maxMs = Math.max(MIN_RTO_MS, clientTimeoutMs ?? DEFAULT_MAX_RTO_MS);
    this.currentMs = Math.min(INITIAL_RTO_MS, this.maxMs);
    this.#baseMs = this.currentMs;
  }

  /** A send at `now`; `block` ≥ 0 is timed when its ACK comes, −1 marks a retransmission (Karn). */
  sent(now: number, block: number): void {
    this.lastSendAt = now;
    if (block < 0) this.#sampleBlock = -1;
    else if (this.#sampleBlock < 0) {
      this.#sampleBlock = block;
      this.#sampleAt = now;
    }
  }

  /** An ACK advanced to `block`: take an RTT sample if it covers the timed block. */
  acked(now: number, block: number): void {
    if (this.#sampleBlock < 0 || block < this.#sampleBlock) return;
    this.#sampleBlock = -1;
    const r = Math.max(0, now - this.#sampleAt);
    if (!this.#measured) {
      this.#srtt = r;
      this.#rttvar = r / 2;
      this.#measured = true;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    const rto = this.#srtt + Math.max(GRANULARITY_MS, 4 * this.#rttvar);
    this.#baseMs = Math.min(this.maxMs, Math.max(this.minMs, rto));
    this.currentMs = this.#baseMs;
  }

  /**
   * The client acknowledged new blocks, so the path works: drop the backoff. Karn's rule leaves a
   * retransmitted window without an RTT sample, and at 10 % loss most windows of 16 lose a packet,
   * so waiting for a clean sample let the doubling run away to seconds per loss. Linux TCP drops
   * its backoff on any ACK of new data too (with timestamps every such ACK is a sample).
   */
  progressed(): void {
    this.currentMs = this.#baseMs;
  }

  /** RFC 6298 §5.5: double after a timeout; kept until a fresh sample. */
  backoff(): void {
    this.currentMs = Math.min(this.maxMs, this.currentMs * 2);
  }
}
