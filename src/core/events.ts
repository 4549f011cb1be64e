import { RateLimiter } from './counters.js';
import { UserError } from './errors.js';

/**
 * What the daemon tells the outside world, as data: one event per answer, refusal, decision and
 * transfer. The layers that see something happen (src/pxe, src/tftp, src/http) emit through an
 * `EventSink`; the daemon's sinks (src/daemon/events.ts) write them as JSON lines, send them as UDP
 * datagrams, count them for `/metrics` and watch them for `--exit-after`.
 */

export const EVENT_TYPES = [
  'offer',
  'ack',
  'denied',
  'ignored',
  'decide',
  'transfer-start',
  'transfer-done',
  'transfer-failed',
  'http-request',
] as const;
export type PxeEventType = (typeof EVENT_TYPES)[number];

/** Every event has a type, a timestamp, and the client's MAC (where known) and IP address. */
interface EventBase {
  /** ISO 8601 UTC with milliseconds. */
  time: string;
  /** Lowercase, colon-separated, as in log lines. */
  mac?: string;
  ip?: string;
}

/** Who chose the answer: the local rules (or `<nbp>`), the decision URL, or the rules after the URL failed. */
export type DecidedBy = 'rules' | 'decide-url' | 'fallback';

/** The outcome of one question to `--decide-url`. */
export type DecideOutcome = 'answer' | 'deny' | 'fallback';

/**
 * Where a served file came from: the local root, or `--upstream`'s cache (`cache-hit`), or the
 * mirror itself, fetched for this request or one it joined (`cache-miss`).
 */
export type FileOrigin = 'local' | 'cache-hit' | 'cache-miss';

/** The origin of an opened file, from its `cache` mark (set only on files from `--upstream`). */
export function fileOrigin(cache: 'hit' | 'miss' | undefined): FileOrigin {
  return cache === undefined ? 'local' : cache === 'hit' ? 'cache-hit' : 'cache-miss';
}

export type PxeEvent = EventBase &
  (
    | {
        type: 'offer' | 'ack';
        /** The port the request came to: 67 or 4011. */
        port: number;
        arch: string;
        file: string;
        'next-server': string;
        rule: string;
        'decided-by': DecidedBy;
      }
    | { type: 'denied' | 'ignored'; port: number; reason: string; detail?: string; suppressed?: number }
    | {
        type: 'decide';
        url: string;
        /** The HTTP status, or what happened instead (`timeout`, `unreachable`, `too-large`, `busy`). */
        status: number | string;
        ms: number;
        outcome: DecideOutcome;
        detail?: string;
      }
    | {
        type: 'transfer-start';
        protocol: 'tftp' | 'http';
        file: string;
        requested?: string;
        size: number;
        origin: FileOrigin;
      }
    | {
        type: 'transfer-done' | 'transfer-failed';
        protocol: 'tftp' | 'http';
        file: string;
        requested?: string;
        bytes: number;
        seconds: number;
        reason?: string;
        /** Known once the file was opened. */
        origin?: FileOrigin;
      }
    | { type: 'http-request'; method: string; path: string; status: number; bytes: number; seconds: number }
  );

/** Where events go. `emit` must not throw and must not block: it runs on the packet path. */
export interface EventSink {
  emit(e: PxeEvent): void;
}

/** The current time as events stamp it. */
export function eventTime(now = Date.now()): string {
  return new Date(now).toISOString();
}

/** An event as one line of JSON (no newline): `type` and `time` first, then `mac` and `ip`, then the rest. */
export function formatEvent(e: PxeEvent): string {
  const { type, time, mac, ip, ...rest } = e;
  return JSON.stringify({
    type,
    time,
    ...(mac !== undefined ? { mac } : {}),
    ...(ip !== undefined ? { ip } : {}),
    ...rest,
  });
}

/** `ignored` events a second, on average and in a burst: a flood of foreign DHCP traffic stays a trickle. */
export const IGNORED_PER_SECOND = 20;
export const IGNORED_BURST = 100;

/**
 * Fans each event out to every sink. A sink that throws is its own problem: the others still get
 * the event and the packet path never sees the error. `ignored` events go through a token bucket;
 * the first let through after a cut carries `suppressed: N`.
 */
export class EventBus implements EventSink {
  readonly #sinks: EventSink[] = [];
  readonly #ignored: RateLimiter;
  /** Sink failures so far. */
  failures = 0;

  constructor(ignored = new RateLimiter(IGNORED_PER_SECOND, IGNORED_BURST)) {
    this.#ignored = ignored;
  }

  /** True when anyone listens: producers skip building events otherwise. */
  get active(): boolean {
    return this.#sinks.length > 0;
  }

  add(sink: EventSink): () => void {
    this.#sinks.push(sink);
    return () => {
      const i = this.#sinks.indexOf(sink);
      if (i >= 0) this.#sinks.splice(i, 1);
    };
  }

  emit(e: PxeEvent): void {
    if (this.#sinks.length === 0) return;
    if (e.type === 'ignored') {
      if (!this.#ignored.take()) return;
      const n = this.#ignored.suppressed;
      if (n > 0) {
        this.#ignored.suppressed = 0;
        e = { ...e, suppressed: n };
      }
    }
    for (const s of this.#sinks) {
      try {
        s.emit(e);
      } catch {
        this.failures++;
      }
    }
  }
}

/** One `--exit-after EVENT:MATCH`. */
export interface ExitCondition {
  /** As given, for log lines. */
  text: string;
  type: PxeEventType;
  /** Empty: any event of the type. */
  match: string;
}

/**
 * Parse `EVENT[:MATCH]`, e.g. `transfer-done:vmlinuz`, `offer:52:54:00:12:34:56`, `ack`.
 * @throws UserError naming the condition
 */
export function parseExitCondition(text: string): ExitCondition {
  const colon = text.indexOf(':');
  const type = (colon < 0 ? text : text.slice(0, colon)).trim();
  const match = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (!(EVENT_TYPES as readonly string[]).includes(type)) {
    throw new UserError(`exit-after '${text}': unknown event '${type}' (one of ${EVENT_TYPES.join(', ')})`);
  }
  return { text, type: type as PxeEventType, match };
}

/** The list form (command line: repeated strings; config file: a list or one string). @throws UserError */
export function parseExitConditions(value: unknown): ExitCondition[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map((v) => {
    if (typeof v !== 'string' || v.trim() === '') throw new UserError('exit-after: entries must be EVENT:MATCH');
    return parseExitCondition(v);
  });
}

function globRegex(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** The values of an event a MATCH is compared with. */
function subjects(e: PxeEvent): string[] {
  const out: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string' && v !== '') out.push(v);
  };
  const rec = e as unknown as Record<string, unknown>;
  add(rec.file);
  add(rec.requested);
  if (typeof rec.path === 'string') add(rec.path.split('?')[0]!.replace(/^\/+/, ''));
  add(e.mac);
  add(e.ip);
  add(rec.reason);
  return out;
}

/**
 * True when the event satisfies the condition. MATCH is compared with the event's file name (and
 * the name as requested, before `--remap`), an HTTP request's path, the MAC, the IP address and a
 * refusal's reason: it matches a value it equals, a file name that ends in `/MATCH`, or, with `*`
 * or `?` in it, a value the glob covers. Case does not matter; a MAC may be written with `-`.
 */
export function eventMatches(c: ExitCondition, e: PxeEvent): boolean {
  if (c.type !== e.type) return false;
  if (c.match === '') return true;
  const values = subjects(e);
  if (/[*?]/.test(c.match)) {
    const re = globRegex(c.match);
    return values.some((v) => re.test(v));
  }
  const m = c.match.toLowerCase();
  const asMac = /^([0-9a-f]{2}-){5}[0-9a-f]{2}$/.test(m) ? m.replaceAll('-', ':') : m;
  return values.some((v) => {
    const l = v.toLowerCase();
    return l === m || l === asMac || l.endsWith(`/${m}`);
  });
}

/**
 * Watches events until every condition has been met at least once (`--exit-after`, all must happen).
 * Pure: the daemon feeds it and acts on `observe` returning true.
 */
export class ExitWatch implements EventSink {
  readonly #pending: ExitCondition[];
  readonly #onDone: () => void;
  #done = false;

  constructor(conditions: readonly ExitCondition[], onDone: () => void) {
    this.#pending = [...conditions];
    this.#onDone = onDone;
  }

  /** The conditions not yet met. */
  get pending(): readonly ExitCondition[] {
    return this.#pending;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Feed one event; true when it completed the set (once). */
  observe(e: PxeEvent): boolean {
    if (this.#done) return false;
    for (let i = this.#pending.length - 1; i >= 0; i--)
      if (eventMatches(this.#pending[i]!, e)) this.#pending.splice(i, 1);
    if (this.#pending.length > 0) return false;
    this.#done = true;
    return true;
  }

  emit(e: PxeEvent): void {
    if (this.observe(e)) this.#onDone();
  }
}
