/*
 * Over 300 lines on purpose: the `--decide-url` protocol (the question's query, the answer's
 * checks) and the Decider that asks it (cache, joined questions, in-flight bound, timeout) are one
 * contract with the outside service. The packet path that waits for it is responder.ts.
 */
import { UserError } from '../core/errors.js';
import type { DecideOutcome } from '../core/events.js';
import { uuidText, type PxeClient } from './client.js';
import { isOwnHttp } from './http-boot.js';
import { ruleFromJson, type BootRule } from './rules.js';

/**
 * `--decide-url`: ask an outside HTTP service what a PXE client boots (pybootd's remote ACL,
 * pixiecore's API mode). For each client that passes `--allow`/`--deny`:
 *
 *   GET URL?mac=…&uuid=…&arch=…&user-class=…&vendor-class=…&interface=…&relay=…&port=67|4011
 *
 * - 200 with a JSON object of boot-rule answer keys (`file`, `next-server`, `kernel`, `initrd`,
 *   `cmdline`), validated as a rule is: the client is answered with it;
 * - 204, 403, 404: the client is not answered (`deny`);
 * - anything else, a body that is not such an object, a timeout, an unreachable server: `fallback`
 *   (`--decide-fallback rules` answers from the local rules and `<nbp>`, `deny` does not answer).
 *
 * Answers and denials are cached per question for `cacheMs`; one question asked again while its
 * request is out joins that request; at most `maxInFlight` requests are out at once (a new question
 * beyond that falls back at once, so a flood of MACs cannot queue work); a body is read up to
 * `maxBody` bytes. The caller never waits for a request on the packet path: `ask` returns the cached
 * outcome at once, or a promise for that client alone (src/pxe/responder.ts answers when it lands).
 */

/** What a `--decide-url` setting holds. */
export interface DecideSettings {
  url: string;
  /** A request not answered in this time falls back (`--decide-timeout`, default 2 s). */
  timeoutMs: number;
  /** What a failed question does: answer from the local rules, or not at all. */
  fallback: 'rules' | 'deny';
  /** How long an answer or denial is reused for the same question (`--decide-cache`, default 10 s). */
  cacheMs: number;
  /** Requests out at once. */
  maxInFlight?: number;
  /** Largest response body read, in bytes. */
  maxBody?: number;
  /** Whether our HTTP server runs: answers with `kernel=` or `http:///` need it. */
  http?: boolean;
}

export const DECIDE_DEFAULTS = {
  timeoutMs: 2000,
  cacheMs: 10_000,
  maxInFlight: 64,
  maxBody: 16 * 1024,
  /** Questions remembered (answers and denials). */
  maxCached: 4096,
  /** MACs whose decided kernel answer is kept for their iPXE script request. */
  maxScripts: 1024,
  /** How long a decided kernel answer serves script requests, at least. */
  scriptMs: 5 * 60_000,
} as const;

/** How logs and events name an answer that `--decide-url` gave: `decide-url (file=…)`. */
export const DECIDE_LABEL = 'decide-url';

/** The answer keys of a boot rule: the only keys a decision may hold. */
export const ANSWER_KEYS = ['file', 'next-server', 'kernel', 'initrd', 'cmdline'] as const;

/** What is asked about one client. */
export interface DecideQuestion {
  client: PxeClient;
  /** The interface the request came in on (with `-i`). */
  interface?: string;
  /** giaddr, when relayed. */
  relay?: string;
  port: 67 | 4011;
}

/** The outcome of one question. */
export type Decided =
  | { kind: 'answer'; rule: BootRule; label: string }
  | { kind: 'deny'; status: number }
  | { kind: 'fallback'; why: string; detail?: string };

/** What a request did, for the `decide` event, the log and the latency histogram. */
export interface DecideReport {
  url: string;
  mac: string;
  /** The HTTP status, or `timeout`, `unreachable`, `too-large`, `busy`. */
  status: number | string;
  ms: number;
  outcome: DecideOutcome;
  /** Why an answer was not used (`bad-answer: …`), or why the server was unreachable. */
  detail?: string;
}

/** Every decide counter. */
export type DecideCounter =
  | 'decide-request'
  | 'decide-cache-hit'
  | 'decide-joined'
  | 'decide-answer'
  | 'decide-deny'
  | 'decide-fallback'
  | 'decide-busy';

/** The request URL of a question: the setting's URL with the question's parameters added. */
export function decideRequestUrl(base: string, q: DecideQuestion): string {
  return `${queryPrefix(base)}${questionQuery(q)}`;
}

/** The URL without its fragment, ready for more parameters (`?` or `&`). */
function queryPrefix(base: string): string {
  const url = base.split('#')[0]!;
  return url.includes('?') ? (/[?&]$/.test(url) ? url : `${url}&`) : `${url}?`;
}

/**
 * The question's parameters, percent-encoded. Built as a string, not through `URL`: with a warm
 * cache this is the work a DISCOVER costs on top of the static rules (src/pxe/responder.ts).
 */
function questionQuery(q: DecideQuestion): string {
  const c = q.client;
  const e = encodeURIComponent;
  return (
    `mac=${e(c.mac)}&uuid=${c.uuid ? uuidText(c.uuid) : ''}&arch=${e(c.archName)}` +
    `&user-class=${e(c.userClass ?? '')}&vendor-class=${e(c.vendorClass)}` +
    `&interface=${e(q.interface ?? '')}&relay=${q.relay ?? ''}&port=${q.port}`
  );
}

/**
 * Validate a 200 body: a JSON object of answer keys, checked as a boot rule is (src/pxe/rules.ts).
 * @throws UserError saying what is wrong
 */
export function parseDecideAnswer(body: string, http = true): BootRule {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new UserError('the answer is not JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UserError('the answer must be a JSON object such as {"file": "pxelinux.0"}');
  }
  const extra = Object.keys(data).filter((k) => !(ANSWER_KEYS as readonly string[]).includes(k));
  if (extra.length > 0) throw new UserError(`unknown key '${extra[0]}' (answer keys: ${ANSWER_KEYS.join(', ')})`);
  const rule = ruleFromJson(data);
  if (!http && (rule.kernel !== undefined || [rule.file, ...(rule.initrd ?? [])].some((f) => f && isOwnHttp(f)))) {
    throw new UserError('kernel= and http:/// need our HTTP server (--http)');
  }
  return rule;
}

/** Check a `--decide-url` value. @throws UserError */
export function checkDecideUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`decide-url '${url}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new UserError(`decide-url '${url}' must be an http:// or https:// URL`);
  }
  return u.toString();
}

/** The fetch the decider uses: the global one, or a fake in tests. */
export type Fetch = (
  url: string,
  init: { signal: AbortSignal; redirect: 'manual'; headers: Record<string, string> },
) => Promise<Response>;

export interface DeciderDeps {
  fetch?: Fetch;
  now?: () => number;
  onReport?: (r: DecideReport) => void;
  count?: (key: DecideCounter) => void;
}

const DENY_STATUS = new Set([204, 403, 404]);

/** Read a response body up to `max` bytes; null when it is longer. */
async function readCapped(res: Response, max: number): Promise<string | null> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks the decision URL, with the cache, the joining of repeated questions and the in-flight bound. */
export class Decider {
  readonly settings: Required<DecideSettings>;
  readonly #fetch: Fetch;
  readonly #now: () => number;
  readonly #deps: DeciderDeps;
  readonly #cache = new Map<string, { decided: Decided; expires: number }>();
  readonly #inFlight = new Map<string, Promise<Decided>>();
  readonly #aborts = new Set<AbortController>();
  /** Decided kernel answers by MAC, for the iPXE script request that follows. */
  readonly #scripts = new Map<string, { rule: BootRule; expires: number }>();
  readonly #prefix: string;

  constructor(settings: DecideSettings, deps: DeciderDeps = {}) {
    this.settings = {
      maxInFlight: DECIDE_DEFAULTS.maxInFlight,
      maxBody: DECIDE_DEFAULTS.maxBody,
      http: false,
      ...settings,
    };
    this.#fetch = deps.fetch ?? ((url, init) => fetch(url, init));
    this.#now = deps.now ?? Date.now;
    this.#deps = deps;
    this.#prefix = queryPrefix(settings.url);
  }

  /** The URL as logs and events show it: no query and no credentials, which may hold a secret. */
  get displayUrl(): string {
    const u = new URL(this.settings.url);
    return `${u.origin}${u.pathname}`;
  }

  /** Requests out now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * The question's identity: everything its request asks (the iPXE stage of a machine is another
   * question), as a plain string; the URL itself is built only when a request is made.
   */
  keyOf(q: DecideQuestion): string {
    const c = q.client;
    return `${c.mac}\0${c.uuid?.toString('latin1') ?? ''}\0${c.arch}\0${c.userClass ?? ''}\0${c.vendorClass}\0${q.interface ?? ''}\0${q.relay ?? ''}\0${q.port}`;
  }

  /**
   * The outcome for a question: at once when cached (or when the in-flight bound is reached), else a
   * promise that settles within the timeout and never rejects.
   */
  ask(q: DecideQuestion): Decided | Promise<Decided> {
    const key = this.keyOf(q);
    const now = this.#now();
    const hit = this.#cache.get(key);
    if (hit && hit.expires > now) {
      this.#deps.count?.('decide-cache-hit');
      return hit.decided;
    }
    if (hit) this.#cache.delete(key);
    const pending = this.#inFlight.get(key);
    if (pending) {
      this.#deps.count?.('decide-joined');
      return pending;
    }
    if (this.#inFlight.size >= this.settings.maxInFlight) {
      this.#deps.count?.('decide-busy');
      this.#report(q, 'busy', 0, 'fallback', undefined);
      return { kind: 'fallback', why: 'busy' };
    }
    const p = this.#request(q).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  /** The decided kernel answer for this MAC, for its iPXE script (src/http). */
  scriptRule(mac: string): BootRule | undefined {
    const s = this.#scripts.get(mac);
    if (!s) return undefined;
    if (s.expires > this.#now()) return s.rule;
    this.#scripts.delete(mac);
    return undefined;
  }

  /** Abort every request out (daemon shutdown, reload to another URL); they fall back. */
  close(): void {
    for (const a of this.#aborts) a.abort();
  }

  async #request(q: DecideQuestion): Promise<Decided> {
    const key = this.keyOf(q);
    const url = `${this.#prefix}${questionQuery(q)}`;
    this.#deps.count?.('decide-request');
    const started = this.#now();
    const ctrl = new AbortController();
    this.#aborts.add(ctrl);
    const timer = setTimeout(() => ctrl.abort(), this.settings.timeoutMs);
    let status: number | string;
    let decided: Decided;
    let detail: string | undefined;
    try {
      const res = await this.#fetch(url, {
        signal: ctrl.signal,
        redirect: 'manual',
        headers: { accept: 'application/json' },
      });
      status = res.status;
      if (res.status === 200) {
        const body = await readCapped(res, this.settings.maxBody);
        if (body === null) {
          status = 'too-large';
          decided = { kind: 'fallback', why: 'too-large' };
        } else {
          try {
            const rule = parseDecideAnswer(body, this.settings.http);
            decided = { kind: 'answer', rule, label: `${DECIDE_LABEL} (${rule.text})` };
          } catch (err) {
            if (!(err instanceof UserError)) throw err;
            detail = `bad-answer: ${err.message}`;
            decided = { kind: 'fallback', why: 'bad-answer', detail };
          }
        }
      } else {
        await res.body?.cancel().catch(() => undefined);
        decided = DENY_STATUS.has(res.status)
          ? { kind: 'deny', status: res.status }
          : { kind: 'fallback', why: `status ${res.status}` };
      }
    } catch (err) {
      const timedOut = ctrl.signal.aborted;
      status = timedOut ? 'timeout' : 'unreachable';
      if (!timedOut) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        detail = cause?.code ?? cause?.message ?? (err as Error).message;
      }
      decided = { kind: 'fallback', why: status, ...(detail ? { detail } : {}) };
    } finally {
      clearTimeout(timer);
      this.#aborts.delete(ctrl);
    }
    const now = this.#now();
    this.#deps.count?.(`decide-${decided.kind}`);
    // Failures are not cached: the next retransmission asks again (it joins the request meanwhile).
    if (decided.kind !== 'fallback' && this.settings.cacheMs > 0) this.#remember(key, decided, now);
    if (decided.kind === 'answer' && decided.rule.kernel !== undefined)
      this.#rememberScript(q.client.mac, decided.rule, now);
    this.#report(q, status, now - started, decided.kind, detail);
    return decided;
  }

  #remember(key: string, decided: Decided, now: number): void {
    if (this.#cache.size >= DECIDE_DEFAULTS.maxCached) {
      // Drop what has expired; if that frees nothing, the oldest entry.
      for (const [k, v] of this.#cache) if (v.expires <= now) this.#cache.delete(k);
      if (this.#cache.size >= DECIDE_DEFAULTS.maxCached) this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, { decided, expires: now + this.settings.cacheMs });
  }

  #rememberScript(mac: string, rule: BootRule, now: number): void {
    this.#scripts.delete(mac);
    if (this.#scripts.size >= DECIDE_DEFAULTS.maxScripts) this.#scripts.delete(this.#scripts.keys().next().value!);
    this.#scripts.set(mac, { rule, expires: now + Math.max(this.settings.cacheMs, DECIDE_DEFAULTS.scriptMs) });
  }

  #report(q: DecideQuestion, status: number | string, ms: number, outcome: DecideOutcome, detail?: string): void {
    const url = this.displayUrl;
    this.#deps.onReport?.({ url, mac: q.client.mac, status, ms, outcome, ...(detail ? { detail } : {}) });
  }
}
