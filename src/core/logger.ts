import { RateLimiter } from './counters.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** Fields of a log line: `key=value` in text, keys in JSON. Values are ours or sanitised. */
export type LogFields = Record<string, unknown>;

/**
 * What every layer below the daemon may log through. The daemon implements it with winston
 * (src/daemon/logging.ts); tests with an in-memory recorder.
 */
export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  isLevelEnabled(level: LogLevel): boolean;
}

/** A logger that drops everything (library defaults, benchmarks). */
export const silentLogger: Logger = {
  log: () => undefined,
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  isLevelEnabled: () => false,
};

/** Lines a remote peer can cause, on average per second and in a burst, across the whole daemon. */
export const PEER_LINES_PER_SECOND = 50;
export const PEER_LINES_BURST = 200;

/**
 * The one rate cap for log lines that a remote peer can cause (a request, a refused name, a
 * malformed packet). All of them share one token bucket, so no mix of packets can flood the log;
 * the first line let through after a cut carries `lines-suppressed=N`, the count left out.
 * Lines at debug are not capped: debug is for a person watching, and off by default.
 */
export class PeerLog {
  readonly #log: Logger;
  readonly #bucket: RateLimiter;

  constructor(log: Logger, bucket = new RateLimiter(PEER_LINES_PER_SECOND, PEER_LINES_BURST)) {
    this.#log = log;
    this.#bucket = bucket;
  }

  get base(): Logger {
    return this.#log;
  }

  /** Log a peer-caused line through the cap. Returns false when it was left out. */
  line(level: LogLevel, message: string, fields: LogFields = {}): boolean {
    const extra = this.reserve(level);
    if (!extra) return false;
    this.#log.log(level, message, { ...fields, ...extra });
    return true;
  }

  /**
   * Take the cap's permission for one line at `level`, to be written later (off the hot path):
   * null when it is left out, else the fields to add to it (`lines-suppressed` after a cut).
   */
  reserve(level: LogLevel): LogFields | null {
    if (!this.#log.isLevelEnabled(level)) return null;
    if (level === 'debug') return {};
    if (!this.#bucket.take()) return null;
    const n = this.#bucket.suppressed;
    this.#bucket.suppressed = 0;
    return n > 0 ? { 'lines-suppressed': n } : {};
  }

  /** Lines left out since the last one let through (for the periodic summary). */
  get suppressed(): number {
    return this.#bucket.suppressed;
  }

  clearSuppressed(): void {
    this.#bucket.suppressed = 0;
  }
}
