import { EventEmitter } from 'node:events';
import { LOG_LEVELS, type LogFields, type Logger, type LogLevel } from '../../src/core/logger.js';

export type LogLine = Record<string, unknown> & { level: LogLevel; message: string };

/**
 * A logger that records each line synchronously in `lines` (level, message and fields, as the
 * JSON format writes them), so a test reads what was logged the moment the code returns, and
 * `waitFor` resolves on the line itself rather than after a sleep.
 */
export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];
  readonly #events = new EventEmitter();
  readonly #max: number;

  constructor(level: LogLevel = 'debug') {
    this.#max = LOG_LEVELS.indexOf(level);
  }

  isLevelEnabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= this.#max;
  }

  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (!this.isLevelEnabled(level)) return;
    const line = { ...fields, level, message } as LogLine;
    this.lines.push(line);
    this.#events.emit('line', line);
  }

  error(message: string, fields?: LogFields): void {
    this.log('error', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.log('warn', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.log('info', message, fields);
  }
  debug(message: string, fields?: LogFields): void {
    this.log('debug', message, fields);
  }

  /** Resolves with the first line (already logged or still to come) that `match` accepts. */
  waitFor(match: (l: LogLine) => boolean, ms = 5000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#events.off('line', on);
        reject(new Error(`no matching log line within ${ms} ms`));
      }, ms);
      const on = (l: LogLine): void => {
        if (!match(l)) return;
        clearTimeout(timer);
        this.#events.off('line', on);
        resolve(l);
      };
      this.#events.on('line', on);
    });
  }
}

/** A recording logger and its lines (the shape older tests use). */
export function memoryLogger(level: LogLevel = 'debug'): { log: MemoryLogger; lines: LogLine[] } {
  const log = new MemoryLogger(level);
  return { log, lines: log.lines };
}
