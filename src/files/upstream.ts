/**
 * The HTTP(S) client that fetches names the local root does not hold from `--upstream URL`.
 *
 * Everything it does is bounded: connections (one agent per scheme, `maxTotalSockets`), the time to
 * the response headers, the time without a byte during a body, redirects (at most five, to http and
 * https only). Names sent upstream are the contained names `cleanName` makes (no `..`, no empty or
 * `.` segment, no control character), each segment percent-encoded, appended to the base URL: a
 * client cannot make the daemon fetch anything outside the base. Failures come back as an
 * `UpstreamError` whose message is one line naming the URL and the cause (a TLS failure included).
 * Uses only node:http and node:https; the cache (src/files/cache.ts) owns files and sharing.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { cleanName } from './root.js';

export interface UpstreamLimits {
  /** Connections open to the upstream at once (more requests queue for one). */
  maxConnections: number;
  /** From sending a request to its response headers, queueing for a connection included. */
  headersTimeoutMs: number;
  /** A body that delivers no byte for this long is abandoned. */
  idleTimeoutMs: number;
  /** Redirects followed for one request. */
  maxRedirects: number;
}

export const UPSTREAM_DEFAULTS: UpstreamLimits = {
  maxConnections: 8,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  maxRedirects: 5,
};

/** `not-found`: the upstream answered 404 or 410. `error`: anything else that is not a file. */
export type UpstreamErrorKind = 'not-found' | 'error';

/** A request that did not give a file: `message` is one line, URL and cause. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    readonly url: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** A 200 (or a 304 to a conditional request), headers read, body not yet. */
export interface UpstreamResponse {
  status: 200 | 304;
  /** The URL that answered, after redirects. */
  url: string;
  /** Content-Length, when the upstream sent one. */
  length?: number;
  etag?: string;
  lastModified?: string;
  /** The body (empty for HEAD and 304); destroy it to abandon the download. */
  body: IncomingMessage;
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD';
  /** Conditional request: `If-None-Match` and `If-Modified-Since`. */
  etag?: string;
  lastModified?: string;
  /** Overrides `headersTimeoutMs` for this request (revalidation waits less than a first fetch). */
  headersTimeoutMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Idle pooled connections close after this: before the mirror's own keep-alive limit (Apache: 5 s). */
const IDLE_SOCKET_MS = 4000;

/** The request met a reset on a kept-alive socket: it is sent again once. */
class ReusedSocketReset extends Error {}

/** Certificate and handshake failures: reported as one `TLS` line, never a stack. */
const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'EPROTO',
]);

/** The host and port of a URL, for messages. */
function hostOf(u: URL): string {
  return u.host || u.hostname;
}

/** One line for a socket-level failure of a request to `u`. */
export function describeFailure(err: unknown, u: URL): string {
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? '';
  const host = hostOf(u);
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || /SSL routines/.test(e.message ?? '')) {
    const ssl = /SSL routines:[^:]*:([^:]+)/.exec(e.message ?? '');
    const why = (ssl?.[1] ?? e.message ?? code).split('\n')[0]!.trim();
    return `TLS failure with ${host}: ${why}`;
  }
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused by ${host}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host ${u.hostname} not found (DNS)`;
    case 'ECONNRESET':
      return `connection reset by ${host}`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${host} is unreachable`;
    case 'ETIMEDOUT':
      return `connecting to ${host} timed out`;
    default:
      return `request to ${host} failed: ${(e.message ?? String(err)).split('\n')[0]}`;
  }
}

/** Parse and check an upstream base URL. @throws TypeError with a message fit for the user */
export function parseUpstreamUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new TypeError(`'${text}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`'${text}' is not an http or https URL`);
  if (u.username || u.password) throw new TypeError(`'${u.host}': credentials in the URL are not supported`);
  if (u.search || u.hash) throw new TypeError(`'${text}': a query or fragment has no meaning in a base URL`);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/**
 * The URL of `name` under `base`: the contained name of `cleanName`, each segment encoded. Null for a
 * name the root refuses (then nothing is fetched) or the empty name.
 */
export function upstreamUrl(base: URL, name: string): string | null {
  const parts = cleanName(name);
  if (parts === null || parts.length === 0) return null;
  return base.href + parts.map(encodeURIComponent).join('/');
}

/** The fetcher for one base URL. */
export class Upstream {
  readonly base: URL;
  readonly limits: UpstreamLimits;
  readonly #http: HttpAgent;
  readonly #https: HttpsAgent;

  /** @param tls extra TLS settings (a private CA for tests; users have NODE_EXTRA_CA_CERTS) */
  constructor(base: string | URL, limits: Partial<UpstreamLimits> = {}, tls: SecureContextOptions = {}) {
    this.base = typeof base === 'string' ? parseUpstreamUrl(base) : base;
    this.limits = { ...UPSTREAM_DEFAULTS, ...limits };
    const pool = {
      keepAlive: true,
      maxSockets: this.limits.maxConnections,
      maxTotalSockets: this.limits.maxConnections,
      // Closes idle pooled sockets only: a request in flight has its own bounds (#once).
      timeout: IDLE_SOCKET_MS,
    };
    this.#http = new HttpAgent(pool);
    this.#https = new HttpsAgent({ ...pool, ...tls });
  }

  /** Where `name` is fetched from, or null when it is not a name that can be. */
  urlOf(name: string): string | null {
    return upstreamUrl(this.base, name);
  }

  /**
   * Request `name`, following redirects. Resolves once the headers of a 200 (or a 304 to a
   * conditional request) are in; the caller reads or destroys the body.
   * @throws UpstreamError
   */
  async request(name: string, o: RequestOptions = {}): Promise<UpstreamResponse> {
    const url = this.urlOf(name);
    if (url === null) throw new UpstreamError('not-found', String(name), `'${name}' is not a name fetched upstream`);
    let current = new URL(url);
    for (let hops = 0; ; hops++) {
      const res = await this.#once(current, o).catch((err: unknown) => {
        // A kept-alive socket the mirror closed as we reused it: once more on a fresh one (Node's advice).
        if (err instanceof ReusedSocketReset) return this.#once(current, o);
        throw err;
      });
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        res.resume();
        const location = res.headers.location;
        if (hops >= this.limits.maxRedirects) {
          throw new UpstreamError('error', url, `${url}: more than ${this.limits.maxRedirects} redirects`, status);
        }
        let next: URL;
        try {
          next = new URL(location ?? '', current);
        } catch {
          throw new UpstreamError('error', url, `${url}: redirect to a bad URL`, status);
        }
        if (location === undefined || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
          throw new UpstreamError('error', url, `${url}: redirect to ${next.protocol} refused (http and https only)`);
        }
        current = next;
        continue;
      }
      if (status === 200 || (status === 304 && (o.etag !== undefined || o.lastModified !== undefined))) {
        const length = Number(res.headers['content-length']);
        const etag = res.headers.etag;
        const lastModified = res.headers['last-modified'];
        return {
          status,
          url: current.href,
          ...(res.headers['content-length'] !== undefined && Number.isSafeInteger(length) && length >= 0
            ? { length }
            : {}),
          ...(etag ? { etag } : {}),
          ...(lastModified ? { lastModified } : {}),
          body: res,
        };
      }
      res.resume();
      const where = current.href === url ? url : `${url} (via ${current.href})`;
      if (status === 404 || status === 410)
        throw new UpstreamError('not-found', url, `${where}: HTTP ${status}`, status);
      throw new UpstreamError('error', url, `${where}: HTTP ${status} ${res.statusMessage ?? ''}`.trim(), status);
    }
  }

  /** Size of `name` upstream (HEAD), for `--check` and start-up warnings. @throws UpstreamError */
  async head(name: string, headersTimeoutMs?: number): Promise<{ url: string; length?: number }> {
    const r = await this.request(name, {
      method: 'HEAD',
      ...(headersTimeoutMs !== undefined ? { headersTimeoutMs } : {}),
    });
    r.body.resume();
    return { url: r.url, ...(r.length !== undefined ? { length: r.length } : {}) };
  }

  /** Close idle connections; requests in flight go on until they end. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }

  #once(u: URL, o: RequestOptions): Promise<IncomingMessage> {
    const headers: OutgoingHttpHeaders = { 'user-agent': 'pxe-pdhcp', accept: '*/*' };
    if (o.etag !== undefined) headers['if-none-match'] = o.etag;
    if (o.lastModified !== undefined) headers['if-modified-since'] = o.lastModified;
    const https = u.protocol === 'https:';
    const timeoutMs = o.headersTimeoutMs ?? this.limits.headersTimeoutMs;
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(u, {
        method: o.method ?? 'GET',
        headers,
        agent: https ? this.#https : this.#http,
      });
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error('headers timeout'), { code: 'HEADERS_TIMEOUT' }));
      }, timeoutMs);
      req.on('response', (res) => {
        clearTimeout(timer);
        // From here on the body's own idle bound applies (the socket's inactivity timeout).
        req.setTimeout(this.limits.idleTimeoutMs, () =>
          res.destroy(
            new UpstreamError('error', u.href, `${u.href}: no data for ${this.limits.idleTimeoutMs / 1000} s`),
          ),
        );
        resolve(res);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (req.reusedSocket && err.code === 'ECONNRESET') return reject(new ReusedSocketReset());
        const message =
          err.code === 'HEADERS_TIMEOUT'
            ? `${u.href}: no answer from ${hostOf(u)} within ${timeoutMs / 1000} s`
            : `${u.href}: ${describeFailure(err, u)}`;
        reject(new UpstreamError('error', u.href, message));
      });
      req.end();
    });
  }
}
