import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import winston from 'winston';
import { UserError } from '../core/errors.js';

import { LOG_LEVELS, type LogLevel } from '../core/logger.js';

export { LOG_LEVELS, type LogLevel };
export type LogFormat = 'text' | 'json';

/** Where log lines go: stderr (foreground, systemd), a file, or syslog (detached). */
export type LogSink =
  | { kind: 'stderr' }
  | { kind: 'file'; path: string }
  /** Through logger(1); `runAs` is the account it runs as when we start as root. */
  | { kind: 'syslog'; runAs?: { uid: number; gid: number } }
  | { kind: 'stream'; stream: Writable };

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  sink: LogSink;
}

/** The daemon's logger: winston, which also satisfies core's Logger interface. */
export type DaemonLogger = winston.Logger;

/** sd-daemon(3) priority prefixes, understood by journald on a service's stderr. */
const JOURNAL_PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };

function fields(info: winston.Logform.TransformableInfo): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(info)) {
    if (k === 'level' || k === 'message' || k === 'timestamp' || v === undefined) continue;
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    parts.push(`${k}=${/[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text}`);
  }
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/**
 * Text lines are `message key=value …`. Under journald (JOURNAL_STREAM set) they carry a `<N>`
 * priority prefix and no timestamp, since the journal adds its own.
 */
function textFormat(journal: boolean, timestamps: boolean): winston.Logform.Format {
  return winston.format.printf((info) => {
    const line = `${String(info.message)}${fields(info)}`;
    if (journal) return `<${JOURNAL_PRIORITY[info.level] ?? 6}>${line}`;
    return timestamps ? `${new Date().toISOString()} ${info.level}: ${line}` : `${info.level}: ${line}`;
  });
}

/** util-linux's logger(1). */
const LOGGER = '/usr/bin/logger';
/** The log file is rotated at this size, keeping this many files: at most 50 MiB on disk. */
export const LOG_FILE_MAX_BYTES = 10 * 1024 * 1024;
export const LOG_FILE_KEEP = 5;

/** The stdin of a `logger -t pxe-pdhcp` process, which writes each line to syslog. */
function syslogStream(runAs?: { uid: number; gid: number }): Writable {
  // By absolute path (not through PATH, as root) and as the unprivileged account.
  const child = spawn(LOGGER, ['-t', 'pxe-pdhcp', '--id', String(process.pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: false,
    ...(runAs ?? {}),
  });
  child.on('error', () => undefined);
  child.stdin.on('error', () => undefined);
  return child.stdin;
}

/** Open (creating) a log file for appending once, so a bad path is one clear line, not winston's crash. */
function checkWritable(path: string): void {
  try {
    closeSync(openSync(path, 'a', 0o640));
  } catch (err) {
    throw new UserError(
      `cannot write log file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** Create the daemon's logger. The only place that knows winston. */
export function createLogger(o: LogOptions): DaemonLogger {
  const journal = o.sink.kind === 'stderr' && process.env.JOURNAL_STREAM !== undefined;
  const format =
    o.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : textFormat(journal, o.sink.kind === 'stderr' || o.sink.kind === 'file');
  let transport: winston.transport;
  switch (o.sink.kind) {
    case 'stderr':
      transport = new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] });
      break;
    case 'file':
      checkWritable(o.sink.path);
      transport = new winston.transports.File({
        filename: o.sink.path,
        maxsize: LOG_FILE_MAX_BYTES,
        maxFiles: LOG_FILE_KEEP,
        tailable: true,
      });
      break;
    case 'syslog':
      transport = new winston.transports.Stream({ stream: syslogStream(o.sink.runAs) });
      break;
    case 'stream':
      transport = new winston.transports.Stream({ stream: o.sink.stream });
      break;
  }
  return winston.createLogger({ level: o.level, levels: winston.config.npm.levels, format, transports: [transport] });
}

/** Flush and close a logger: resolves when its last line is written (or after `ms`). */
export function closeLogger(log: DaemonLogger, ms = 1000): Promise<void> {
  return new Promise((resolve) => {
    // Not unref'd: when the log is broken, 'finish' never comes and this timer may be all that
    // keeps the process alive long enough to report why it stops.
    const timer = setTimeout(resolve, ms);
    log.on('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    log.end();
  });
}

/**
 * Resolves once every log file is open, so that a later privilege drop cannot stop it being
 * written. Call right after createLogger: winston opens files asynchronously and reports a failed
 * open only to its debug output.
 * @throws UserError when a log file cannot be opened within `ms`
 */
export function logFilesOpen(log: DaemonLogger, ms = 3000): Promise<void> {
  const files = log.transports.filter((t) => t instanceof winston.transports.File);
  // winston re-emits a transport's failure on the logger, where no listener means a crash; here
  // it is reported once, through the promise, as a clear start-up error.
  log.on('error', () => undefined);
  return Promise.all(
    files.map(
      (t) =>
        new Promise<void>((resolve, reject) => {
          const { dirname, filename } = t as unknown as { dirname: string; filename: string };
          const path = `${dirname}/${filename}`;
          const fail = (why: string): void => reject(new UserError(`cannot write log file ${path}: ${why}`));
          const timer = setTimeout(() => fail('it could not be opened'), ms);
          t.once('open', () => {
            clearTimeout(timer);
            resolve();
          });
          t.once('error', (err: NodeJS.ErrnoException) => {
            clearTimeout(timer);
            fail(err.code ?? err.message);
          });
        }),
    ),
  ).then(() => undefined);
}
