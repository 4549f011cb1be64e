/*
 * Over 300 lines on purpose: reading the daemon's `/status` is one job (fetch, check each field of a
 * page from another process, find this probe's client and transfers, put it in words); the page
 * itself is written by src/daemon/metrics.ts.
 */
import { request } from 'node:http';
import type { DecidedBy, FileOrigin } from '../core/events.js';
import type { TransferReport } from './fetch.js';

/**
 * `--status URL`: what the daemon itself knows of this probe, read from its `/status` page
 * (`pxe-pdhcp --metrics`). A DHCP answer does not say which rule or `--decide-url` answer chose
 * it, and a TFTP transfer does not say whether the file came from the local root or the
 * `--upstream` cache; the daemon keeps both, per client (the last 50) and per transfer (the last
 * 256), and the probe finds its own by MAC, address and file name.
 */

/** Where a fetched file came from, as the probe reports it. */
export type Origin = FileOrigin | 'unknown';

/** The daemon's last request to `--decide-url` about this client. */
export interface DecideSeen {
  url: string;
  /** The HTTP status, or `timeout`, `unreachable`, `too-large`, `busy`. */
  status: number | string;
  ms: number;
  outcome: string;
  detail?: string;
  time?: string;
}

/** What the daemon's `/status` says of this client's last answer. */
export interface DecisionSeen {
  mac: string;
  port?: number;
  /** The answer's boot file, the rule that chose it and who decided; or why nothing was sent. */
  file?: string;
  rule?: string;
  decidedBy?: DecidedBy;
  refused?: string;
  decide?: DecideSeen;
  lastSeen?: string;
}

/** One transfer the daemon lists. */
export interface TransferSeen {
  protocol: string;
  ip: string;
  mac?: string;
  file: string;
  requested?: string;
  origin: FileOrigin;
}

/** The parts of `/status` the probe reads. */
export interface StatusView {
  clients: DecisionSeen[];
  /** Newest first. */
  transfers: TransferSeen[];
}

/** In the report: the page read, and this client's entry (absent when the daemon has not seen it). */
export type StatusReport = { url: string; ok: true; client?: DecisionSeen } | { url: string; ok: false; error: string };

/** How long reading `/status` may take in all. */
export const STATUS_TIMEOUT_MS = 3000;
/** Largest `/status` body read (the daemon's is tens of kilobytes). */
const MAX_STATUS_BYTES = 4 * 1024 * 1024;

/**
 * The `/status` URL for what the user gave: the metrics listener (`http://127.0.0.1:9187`) or the
 * page itself. Throws TypeError for a URL that is not `http://`.
 */
export function statusUrlOf(given: string): string {
  const u = new URL(given);
  if (u.protocol !== 'http:') throw new TypeError('only http:// is served by the metrics listener');
  if (!/\/status$/.test(u.pathname)) u.pathname = `${u.pathname.replace(/\/+$/, '')}/status`;
  u.hash = '';
  return u.toString();
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const ORIGINS: readonly string[] = ['local', 'cache-hit', 'cache-miss'];
const DECIDED_BY: readonly string[] = ['rules', 'decide-url', 'fallback'];

/** Copy the fields that are present and of the right type. */
function pick<T extends object>(fields: Record<string, unknown>): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}

function decideOf(v: unknown): DecideSeen | undefined {
  const d = obj(v);
  const url = str(d?.url);
  const status = num(d?.status) ?? str(d?.status);
  if (!d || url === undefined || status === undefined) return undefined;
  return pick<DecideSeen>({
    url,
    status,
    ms: num(d.ms) ?? 0,
    outcome: str(d.outcome) ?? '',
    detail: str(d.detail),
    time: str(d.time),
  });
}

function clientOf(v: unknown): DecisionSeen | undefined {
  const c = obj(v);
  const mac = str(c?.mac);
  if (!c || mac === undefined) return undefined;
  const last = obj(c.last);
  const by = str(last?.decidedBy);
  return pick<DecisionSeen>({
    mac: mac.toLowerCase(),
    port: num(last?.port),
    file: str(last?.file),
    rule: str(last?.rule),
    decidedBy: by !== undefined && DECIDED_BY.includes(by) ? by : undefined,
    refused: str(last?.refused),
    decide: decideOf(c.decide),
    lastSeen: str(c.lastSeen),
  });
}

function transferOf(v: unknown): TransferSeen | undefined {
  const t = obj(v);
  const origin = str(t?.origin);
  const file = str(t?.file);
  if (!t || file === undefined || origin === undefined || !ORIGINS.includes(origin)) return undefined;
  return pick<TransferSeen>({
    protocol: str(t.protocol) ?? '',
    ip: str(t.ip) ?? '',
    mac: str(t.mac)?.toLowerCase(),
    file,
    requested: str(t.requested),
    origin,
  });
}

/** Read a `/status` body; a string says why it is not the daemon's page. Pure. */
export function parseStatus(body: string): StatusView | string {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return 'the answer is not JSON';
  }
  const s = obj(data);
  if (!s || !Array.isArray(s['clients-seen'])) return 'the answer is not the status page of pxe-pdhcp';
  const recent = Array.isArray(s['recent-transfers']) ? (s['recent-transfers'] as unknown[]) : [];
  return {
    clients: (s['clients-seen'] as unknown[]).map(clientOf).filter((c) => c !== undefined),
    transfers: recent.map(transferOf).filter((t) => t !== undefined),
  };
}

/** This MAC's entry (lowercase, colons). Pure. */
export function decisionFor(view: StatusView, mac: string): DecisionSeen | undefined {
  const m = mac.toLowerCase();
  return view.clients.find((c) => c.mac === m);
}

/** A name as the daemon resolves it: `\` read as `/`, empty and `.` segments and leading slashes gone. */
function served(name: string): string {
  return name
    .replaceAll('\\', '/')
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
}

/**
 * Where the daemon says a file this client fetched over TFTP came from: its newest transfer to
 * this address (and MAC, where the daemon knows it) of that name, as asked for or as served. Pure.
 */
export function originFor(
  view: StatusView,
  who: { ip?: string; mac: string },
  file: string,
  protocol = 'tftp',
): FileOrigin | undefined {
  const want = served(file);
  const mac = who.mac.toLowerCase();
  const t = view.transfers.find(
    (x) =>
      x.protocol === protocol &&
      (who.ip === undefined || x.ip === who.ip) &&
      (x.mac === undefined ? who.ip !== undefined : x.mac === mac) &&
      (served(x.requested ?? x.file) === want || served(x.file) === want),
  );
  return t?.origin;
}

/** The origin of a file fetched over HTTP, from its `X-Cache` header (none: a file of the server's own). Pure. */
export function originOfXCache(header: string | undefined): Origin {
  if (header === undefined) return 'local';
  const v = header.trim().toLowerCase();
  return v === 'hit' ? 'cache-hit' : v === 'miss' ? 'cache-miss' : 'unknown';
}

/** Set the origin of each TFTP file fetched from what the daemon lists; the rest stay as they are. */
export function applyOrigins(transfers: TransferReport[], view: StatusView, who: { ip?: string; mac: string }): void {
  for (const t of transfers) {
    if (!t.ok || t.protocol === 'http') continue;
    t.origin = originFor(view, who, t.file) ?? 'unknown';
  }
}

/** How the text report names an origin. */
export function originText(o: Origin): string {
  return { local: 'local', 'cache-hit': 'cache hit', 'cache-miss': 'cache miss', unknown: 'unknown source' }[o];
}

function decideText(d: DecideSeen): string {
  const what = typeof d.status === 'number' ? `HTTP ${d.status}` : d.status;
  return `decide-url ${d.url} (${what} in ${d.ms} ms${d.detail ? `: ${d.detail}` : ''})`;
}

/** One line: which rule, or which answer of `--decide-url`, chose what this client got. Pure. */
export function decisionText(s: StatusReport): string {
  if (!s.ok) return `Decided by: unknown (status ${s.url} not read: ${s.error})`;
  const c = s.client;
  if (!c) return `Decided by: unknown (the daemon at ${s.url} has not seen this MAC)`;
  const where = c.port !== undefined ? ` [port ${c.port}${c.file !== undefined ? `, file ${c.file}` : ''}]` : '';
  if (c.refused !== undefined) {
    const asked = c.decide && c.refused.startsWith('decide-') ? `, ${decideText(c.decide)}` : '';
    return `Decided by: nothing was sent (${c.refused})${asked}${where}`;
  }
  const rule = c.rule ?? '?';
  if (c.decidedBy === 'decide-url') {
    const answer = /^decide-url \((.*)\)$/.exec(rule)?.[1] ?? rule;
    return `Decided by: ${c.decide ? decideText(c.decide) : 'decide-url'}: ${answer}${where}`;
  }
  if (c.decidedBy === 'fallback') {
    const local = rule.split(', after ')[0]!;
    const failed = c.decide ? `${decideText(c.decide)} failed` : (rule.split(', after ')[1] ?? 'decide-url failed');
    return `Decided by: the local rules (${local}), after ${failed}${where}`;
  }
  return `Decided by: ${rule}${where}`;
}

type Got = { ok: true; body: string } | { ok: false; error: string };

/** GET a URL with a deadline for the whole exchange and a size cap; never throws. */
export function getText(url: string, timeoutMs: number): Promise<Got> {
  return new Promise((resolve) => {
    let req: ReturnType<typeof request> | undefined;
    let settled = false;
    const done = (r: Got): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no answer within ${timeoutMs / 1000} s` }), timeoutMs);
    try {
      req = request(url, { headers: { accept: 'application/json' } }, (res) => {
        if (res.statusCode !== 200) return done({ ok: false, error: `HTTP ${res.statusCode}` });
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_STATUS_BYTES)
            done({ ok: false, error: `the answer is larger than ${MAX_STATUS_BYTES} bytes` });
          else chunks.push(c);
        });
        res.on('end', () => done({ ok: true, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => done({ ok: false, error: err.message }));
      });
    } catch (err) {
      return done({ ok: false, error: (err as Error).message });
    }
    // Node may try several addresses and fail with an AggregateError, whose message is empty.
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, error: err.message !== '' ? err.message : (err.code ?? 'connection failed') }),
    );
    req.end();
  });
}

/**
 * Read the daemon's `/status` at `url` and find this client: its decision, and the origin of each
 * TFTP file in `transfers` (which are updated). Never throws; a page that cannot be read is
 * reported, not raised.
 */
export async function readStatus(
  url: string,
  who: { ip?: string; mac: string },
  transfers: TransferReport[],
  get: typeof getText = getText,
): Promise<StatusReport> {
  let page: string;
  try {
    page = statusUrlOf(url);
  } catch (err) {
    return { url, ok: false, error: (err as Error).message };
  }
  const got = await get(page, STATUS_TIMEOUT_MS);
  if (!got.ok) return { url: page, ok: false, error: got.error };
  const view = parseStatus(got.body);
  if (typeof view === 'string') return { url: page, ok: false, error: view };
  applyOrigins(transfers, view, who);
  const client = decisionFor(view, who.mac);
  return { url: page, ok: true, ...(client ? { client } : {}) };
}
