import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { createWriteStream, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { UserError } from '../core/errors.js';
import {
  eventTime,
  ExitWatch,
  fileOrigin,
  formatEvent,
  type EventSink,
  type ExitCondition,
  type FileOrigin,
  type PxeEvent,
} from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { ClientTable } from '../pxe/clients.js';
import type { DecideReport } from '../pxe/decide.js';
import type { TransferReport } from '../tftp/server.js';
import type { HttpRequestReport } from '../http/server.js';
import type { Peer } from '../net/datagram.js';

/**
 * The daemon's event sinks: `--events FILE|-` (JSON lines), `--notify udp://HOST:PORT` (one JSON
 * datagram per event, as pybootd's notify), and the producers' reports turned into events. Files
 * and sockets are opened in the bind phase, as root if need be, before the privilege drop.
 */

/** `--events`, `--notify`, `--exit-after`, `--exit-timeout` as parsed. */
export interface EventsConfig {
  /** A file to append JSON lines to, or `-` for stdout. */
  file?: string;
  notify: NotifyTarget[];
  exitAfter: ExitCondition[];
  /** Seconds: exit 1 if the `exitAfter` events have not all happened by then. */
  exitTimeout?: number;
}

export interface NotifyTarget {
  /** As given: `udp://HOST:PORT`. */
  text: string;
  host: string;
  port: number;
}

/** Parse `udp://HOST:PORT`. @throws UserError */
export function parseNotifyTarget(text: string): NotifyTarget {
  const m = /^udp:\/\/([^/:]+):(\d{1,5})\/?$/.exec(text.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new UserError(`notify '${text}' must be udp://HOST:PORT`);
  return { text: text.trim(), host: m[1]!, port };
}

/** Bytes of JSON lines waiting for a slow reader (a pipe nobody drains) before events are dropped. */
const MAX_QUEUED = 1 << 20;

/** JSON lines on a stream, each written at once; dropped (and counted) while the reader lags. */
export class JsonLinesSink implements EventSink {
  dropped = 0;
  readonly #out: Writable;

  constructor(out: Writable) {
    this.#out = out;
    out.on('error', () => undefined);
  }

  emit(e: PxeEvent): void {
    if (this.#out.writableLength > MAX_QUEUED || this.#out.destroyed) {
      this.dropped++;
      return;
    }
    this.#out.write(`${formatEvent(e)}\n`);
  }

  /** Wait until every line written so far has left the process. */
  flush(): Promise<void> {
    if (this.#out.writableLength === 0 || this.#out.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 2000);
      this.#out.write('', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** One datagram of JSON per event to each target. */
export class UdpNotifySink implements EventSink {
  readonly #socket: Socket;
  readonly #targets: { address: string; port: number }[];

  constructor(socket: Socket, targets: { address: string; port: number }[]) {
    this.#socket = socket;
    this.#targets = targets;
  }

  emit(e: PxeEvent): void {
    const b = Buffer.from(formatEvent(e));
    for (const t of this.#targets) this.#socket.send(b, t.port, t.address, () => undefined);
  }
}

export interface BoundSinks {
  sinks: EventSink[];
  /** Flush the JSON lines and close the notify socket. */
  close(): Promise<void>;
  /** Events left out because a reader lagged. */
  readonly dropped: number;
}

/**
 * Open the events file (or take stdout) and the notify socket, resolving host names once.
 * @throws UserError when the file cannot be opened or a host not resolved
 */
export async function bindEventSinks(config: EventsConfig | undefined): Promise<BoundSinks> {
  const sinks: EventSink[] = [];
  const lines: JsonLinesSink[] = [];
  let socket: Socket | undefined;
  if (config?.file !== undefined) {
    let out: Writable;
    if (config.file === '-') out = process.stdout;
    else {
      let fd: number;
      try {
        fd = openSync(config.file, 'a', 0o640);
      } catch (err) {
        throw new UserError(
          `cannot open events file ${config.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
      out = createWriteStream('', { fd });
    }
    const sink = new JsonLinesSink(out);
    lines.push(sink);
    sinks.push(sink);
  }
  if (config && config.notify.length > 0) {
    const targets: { address: string; port: number }[] = [];
    for (const t of config.notify) {
      try {
        targets.push({ address: (await lookup(t.host, { family: 4 })).address, port: t.port });
      } catch {
        throw new UserError(`notify ${t.text}: cannot resolve ${t.host}`);
      }
    }
    socket = createSocket('udp4');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket!.bind(0, resolve));
    socket.unref();
    sinks.push(new UdpNotifySink(socket, targets));
  }
  return {
    sinks,
    get dropped() {
      return lines.reduce((n, s) => n + s.dropped, 0);
    },
    async close() {
      await Promise.all(lines.map((s) => s.flush()));
      if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/** The client's MAC and arch for an address, from the table the responder fills. */
function knownMac(clients: ClientTable | undefined, ip: string): { mac?: string } {
  const c = clients?.byIp(ip);
  return c ? { mac: c.mac } : {};
}

/** A TFTP transfer's start as an event, with where its file came from. */
export function tftpStartEvent(
  clients: ClientTable | undefined,
  peer: Peer,
  file: string,
  size: number,
  requested: string,
  origin: FileOrigin,
): Extract<PxeEvent, { type: 'transfer-start' }> {
  return {
    type: 'transfer-start',
    time: eventTime(),
    ...knownMac(clients, peer.address),
    ip: peer.address,
    protocol: 'tftp',
    file,
    ...(requested !== file ? { requested } : {}),
    size,
    origin,
  };
}

/**
 * A TFTP transfer's end as an event: `transfer-done` when the client acknowledged the whole file,
 * else `transfer-failed` with the reason (`size-probe` for a client that asked the size and
 * stopped, as EDK2 and pxelinux do before the real transfer; `not-found` and the other refusals).
 */
export function tftpEndEvent(clients: ClientTable | undefined, r: TransferReport, origin?: FileOrigin): PxeEvent {
  const base = {
    time: eventTime(),
    ...knownMac(clients, r.client.address),
    ip: r.client.address,
    protocol: 'tftp' as const,
    file: r.file,
    ...(r.requested !== r.file ? { requested: r.requested } : {}),
    ...(origin !== undefined ? { origin } : {}),
  };
  const end = r.end;
  if (end.kind === 'ended') {
    const s = end.summary;
    const seconds = Number((s.ms / 1000).toFixed(3));
    if (s.outcome === 'done') return { type: 'transfer-done', ...base, bytes: s.bytes, seconds };
    const reason = s.outcome === 'client-error' && s.duringNegotiation ? 'size-probe' : s.outcome;
    return { type: 'transfer-failed', ...base, bytes: s.bytes, seconds, reason };
  }
  const reason = end.kind === 'stopped' ? end.outcome : end.reason;
  return { type: 'transfer-failed', ...base, bytes: 0, seconds: 0, reason };
}

/** An HTTP request as its events: `http-request`, and for a file GET, `transfer-done` or `transfer-failed`. */
export function httpEvents(clients: ClientTable | undefined, r: HttpRequestReport): PxeEvent[] {
  const who = { time: eventTime(), ...(r.mac ? { mac: r.mac } : knownMac(clients, r.address)), ip: r.address };
  const out: PxeEvent[] = [
    {
      type: 'http-request',
      ...who,
      method: r.method,
      path: r.path,
      status: r.status,
      bytes: r.bytes,
      seconds: r.seconds,
    },
  ];
  if (r.method === 'GET' && r.file !== undefined && (r.status === 200 || r.status === 206)) {
    const t = {
      ...who,
      protocol: 'http' as const,
      file: r.file,
      ...(r.requested !== undefined && r.requested !== r.file ? { requested: r.requested } : {}),
      bytes: r.bytes,
      seconds: r.seconds,
      origin: fileOrigin(r.cache),
    };
    out.push(r.complete ? { type: 'transfer-done', ...t } : { type: 'transfer-failed', ...t, reason: 'aborted' });
  }
  return out;
}

/** A `--decide-url` request as an event. */
export function decideEvent(clients: ClientTable | undefined, r: DecideReport): Extract<PxeEvent, { type: 'decide' }> {
  const ip = clients?.byMac(r.mac)?.ip;
  return {
    type: 'decide',
    time: eventTime(),
    mac: r.mac,
    ...(ip !== undefined ? { ip } : {}),
    url: r.url,
    status: r.status,
    ms: Math.round(r.ms),
    outcome: r.outcome,
    ...(r.detail ? { detail: r.detail } : {}),
  };
}

/**
 * `--exit-after` with `--exit-timeout`: call `exit(0)` once every condition has been met, or
 * `exit(1)` at the deadline naming those still missing. Returns the sink to add and a stop function.
 */
export function watchExit(
  conditions: readonly ExitCondition[],
  timeoutSeconds: number | undefined,
  exit: (code: number, reason: string) => void,
  log: Logger,
): { sink: EventSink; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const watch = new ExitWatch(conditions, () => {
    clearTimeout(timer);
    log.info('exit-after: every event has happened', { events: conditions.map((c) => c.text).join(' ') });
    exit(0, 'exit-after');
  });
  if (timeoutSeconds !== undefined) {
    timer = setTimeout(() => {
      if (watch.done) return;
      const missing = watch.pending.map((c) => c.text).join(' ');
      log.warn('exit-timeout: not every event happened in time', { seconds: timeoutSeconds, missing });
      exit(1, 'exit-timeout');
    }, timeoutSeconds * 1000);
  }
  return { sink: watch, stop: () => clearTimeout(timer) };
}
