/*
 * Over 300 lines on purpose: one class holds a request's whole life (the connection caps and the
 * idle sweep it passes, the file or iPXE script it gets, its one log line), and they share its counts
 * and buffer budget. Names are in path.ts, ranges in range.ts, the sending in send-range.ts, the
 * script text in script.ts.
 */
/**
 * The read-only HTTP/1.1 server: boot files from a `FileRoot`, and iPXE scripts generated per machine.
 *
 * Built on Node's own `http` module rather than a framework: it parses HTTP/1.1 (llhttp), does
 * keep-alive and chunking, and has every bound this server needs built in — `maxHeaderSize` caps the
 * request line and headers, `headersTimeout` ends a client that trickles its headers (slowloris),
 * `requestTimeout` bounds a whole request, `keepAliveTimeout` closes idle kept-alive connections.
 * Two bounds are ours: the connection cap, counted across every listener (in total and per client
 * address), and the idle sweep, which drops a connection that moved no byte either way for
 * `idleTimeoutMs` (one that never sent a byte, or a reader that stopped reading). Node's own socket
 * timeout is not used for that: with `connectionsCheckingInterval` shorter than it, it never fired
 * for a connection that sent nothing (Node 20). Containment is not the
 * module's: every name goes through `parseTarget` (src/http/path.ts) and then `FileRoot`, the one
 * resolver TFTP uses too. Files are sent with backpressure (`sendRange`: two buffers per response,
 * the next read only once a write has completed, their size a share of one memory budget), so a
 * slow client costs a socket and a bounded share of 64 MiB, never the file in memory.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { Counters, type CounterSink } from '../core/counters.js';
import { UserError } from '../core/errors.js';
import { PeerLog, type Logger } from '../core/logger.js';
import { printable } from '../core/text.js';
import type { NameContext } from '../files/remap.js';
import type { FileRoot, OpenFile, Refusal } from '../files/root.js';
import { chooseBoot, type BootPolicy } from '../pxe/boot.js';
import { httpHostPort, parseScriptRequest, SCRIPT_PREFIX, scriptClient } from '../pxe/http-boot.js';
import type { PxeClient } from '../pxe/client.js';
import { findRule, ruleLabel, type BootRule } from '../pxe/rules.js';
import { contentTypeOf } from './content-type.js';
import { sendRange } from './send-range.js';
import { fileNameOf, parseTarget } from './path.js';
import { parseRange } from './range.js';
import { ipxeScript } from './script.js';

/** Every counter the HTTP server keeps. */
export type HttpCounter =
  | 'http-request'
  | 'http-ok'
  | 'http-partial'
  | 'http-not-modified'
  | 'http-not-found'
  | 'http-forbidden'
  | 'http-bad-method'
  | 'http-range-not-satisfiable'
  | 'http-bad-gateway'
  | 'http-script'
  | 'http-aborted'
  | 'http-connection-refused'
  | 'http-internal-error'
  | 'http-bytes';

/** One listening address. */
export interface HttpListen {
  address: string;
  port: number;
}

export interface HttpLimits {
  /** Connections at once over every listener. */
  maxConnections: number;
  /** Connections at once from one client address. */
  maxPerAddress: number;
  /** From a request's first byte to the end of its headers. */
  headersTimeoutMs: number;
  /** From a request's first byte to the end of its body. */
  requestTimeoutMs: number;
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection that moves no byte either way for this long is closed (a stalled reader too). */
  idleTimeoutMs: number;
  /** Request line plus headers, in bytes. */
  maxHeaderSize: number;
  /** How often Node checks the header and request timeouts. */
  checkIntervalMs: number;
  /**
   * Largest read from a file. A response holds two buffers of its chunk size (one being written,
   * one read ahead); bigger reads cost less CPU per MB (src/http/send-range.ts: 1 MiB takes about a
   * fifth less than 256 KiB).
   */
  chunkSize: number;
  /**
   * The bytes all responses' buffers may take together: each response's chunk is this budget shared
   * among the responses sending at the moment it starts (two buffers each), between 64 KiB and
   * `chunkSize`. So 20 downloads get 1 MiB reads, and 256 slow clients hold 64 MiB, not 512.
   */
  bufferBudget: number;
}

/** The smallest chunk a response gets, however many share the buffer budget. */
const MIN_CHUNK = 64 * 1024;

/** Defaults: a rack booting at once fits, a few hundred idle or trickling sockets do not lock others out. */
export const HTTP_DEFAULTS: HttpLimits = {
  maxConnections: 256,
  maxPerAddress: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 20_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxHeaderSize: 8 * 1024,
  checkIntervalMs: 1_000,
  chunkSize: 1024 * 1024,
  bufferBudget: 64 * 1024 * 1024,
};

export interface HttpServerOptions {
  root: FileRoot;
  listen: readonly HttpListen[];
  limits?: Partial<HttpLimits>;
  log: Logger;
  /** The daemon-wide cap for peer-caused lines; a private one by default. */
  lines?: PeerLog;
  counters?: CounterSink<HttpCounter>;
  /** The boot policy in force, for `/pxe-pdhcp/boot/` scripts; none are served without it. */
  policy?: () => BootPolicy;
  /** What is known about the client at this address (`--remap`'s `${mac}`, `${arch}`). */
  nameContext?: (address: string) => NameContext;
  /** The kernel answer `--decide-url` gave this client, which its script then boots. */
  decided?: (client: PxeClient) => { rule: BootRule; label: string } | undefined;
  /** Called once per request when its response is over (events, metrics). */
  onRequest?: (r: HttpRequestReport) => void;
}

/** One request, as `onRequest` hears of it. */
export interface HttpRequestReport {
  address: string;
  port: number;
  method: string;
  /** The request target as sent, printable. */
  path: string;
  status: number;
  bytes: number;
  seconds: number;
  /** False when the response was cut off. */
  complete: boolean;
  /** The file served, as resolved in the root, and the name asked for (before `--remap`). */
  file?: string;
  requested?: string;
  /** The machine a script was made for. */
  mac?: string;
  /** Set for a file from `--upstream`, as `X-Cache` says. */
  cache?: 'hit' | 'miss';
}

const ALLOW = 'GET, HEAD';
const STATUS_COUNTER: Readonly<Record<number, HttpCounter>> = {
  200: 'http-ok',
  206: 'http-partial',
  304: 'http-not-modified',
  403: 'http-forbidden',
  404: 'http-not-found',
  405: 'http-bad-method',
  416: 'http-range-not-satisfiable',
  500: 'http-internal-error',
  502: 'http-bad-gateway',
};

/**
 * Refusals from `FileRoot` as statuses: only a permission problem is told apart (docs/daemon.md),
 * and an upstream that failed (`--upstream`: timeout, 5xx, TLS), which is a 502, not a missing file.
 */
function statusOfRefusal(r: Refusal): number {
  return r === 'no-permission' ? 403 : r === 'upstream-error' ? 502 : 404;
}

const REFUSAL_BODY: Readonly<Record<number, string>> = {
  403: 'Forbidden\n',
  404: 'Not Found\n',
  502: 'Bad Gateway\n',
};

/** Last-Modified and If-Modified-Since have whole seconds (RFC 9110 §5.6.7). */
const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);

/** What one request did, for its log line. */
interface Outcome {
  bytes: number;
  /** The file served (resolved name) and the name asked for. */
  file?: string;
  requested?: string;
  /** Set for a file from `--upstream`. */
  cache?: 'hit' | 'miss';
  /** Why it was refused or what answered it (`refused=dot-dot`, `rule=…`). */
  detail?: Record<string, string>;
}

export class HttpServer {
  readonly counters: CounterSink<HttpCounter>;
  readonly #o: HttpServerOptions;
  readonly #limits: HttpLimits;
  readonly #lines: PeerLog;
  readonly #servers: Server[] = [];
  /** Open connections, with their byte count at the last sweep and when it last moved. */
  readonly #sockets = new Map<Socket, { bytes: number; since: number }>();
  /** Responses sending a local file right now (they share `bufferBudget`). */
  #sending = 0;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #perAddress = new Map<string, number>();
  #serving = false;
  /** Requests that arrived between bind and serve (the privilege drop); answered by `serve()`. */
  #waiting: [IncomingMessage, ServerResponse][] = [];

  private constructor(o: HttpServerOptions) {
    this.#o = o;
    this.#limits = { ...HTTP_DEFAULTS, ...o.limits };
    this.counters = o.counters ?? new Counters<HttpCounter>();
    this.#lines = o.lines ?? new PeerLog(o.log);
  }

  /**
   * Bind every listener; requests are held until `serve()`, so a daemon binds as root, drops
   * privileges, and only then touches a file. @throws UserError when an address or port cannot be
   * used (nothing stays open then)
   */
  static async bind(o: HttpServerOptions): Promise<HttpServer> {
    const server = new HttpServer(o);
    try {
      for (const l of o.listen) server.#servers.push(await server.#listen(l));
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** Bind and serve at once (tests, tools). */
  static async start(o: HttpServerOptions): Promise<HttpServer> {
    const server = await HttpServer.bind(o);
    server.serve();
    return server;
  }

  serve(): void {
    this.#serving = true;
    this.#sweeper ??= setInterval(
      () => this.#sweep(),
      Math.min(this.#limits.checkIntervalMs, this.#limits.idleTimeoutMs),
    );
    this.#sweeper.unref();
    for (const [req, res] of this.#waiting.splice(0)) this.#onRequest(req, res);
  }

  /** Bound ports, in `listen` order. */
  get ports(): number[] {
    return this.#servers.map((s) => {
      const a = s.address();
      return typeof a === 'object' && a ? a.port : 0;
    });
  }

  /** Open connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const s of this.#sockets.keys()) s.destroy();
    await Promise.all(
      this.#servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))),
    );
  }

  async #listen(l: HttpListen): Promise<Server> {
    const lim = this.#limits;
    const server = createServer({
      maxHeaderSize: lim.maxHeaderSize,
      headersTimeout: lim.headersTimeoutMs,
      requestTimeout: lim.requestTimeoutMs,
      keepAliveTimeout: lim.keepAliveTimeoutMs,
      connectionsCheckingInterval: lim.checkIntervalMs,
      // Nagle would hold the last small segment of a response for an ACK.
      noDelay: true,
    });
    server.maxConnections = lim.maxConnections;
    server.on('connection', (socket: Socket) => this.#onConnection(socket));
    server.on('drop', () => this.counters.count('http-connection-refused'));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#serving) this.#onRequest(req, res);
      else this.#waiting.push([req, res]);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Malformed requests, headers too large, timeouts: one short answer when the socket can take it.
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
        socket.end(
          `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        );
      } else socket.destroy();
      this.#lines.line('debug', 'HTTP client error', {
        client: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
        error: err.code ?? err.message,
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'is in use by another program'
            : err.code === 'EACCES'
              ? 'needs root or CAP_NET_BIND_SERVICE'
              : err.code === 'EADDRNOTAVAIL'
                ? 'is not an address of this host'
                : `cannot be bound (${err.code ?? err.message})`;
        reject(new UserError(`HTTP port ${l.address}:${l.port} ${why}`));
      };
      server.once('error', onError);
      server.listen({ host: l.address, port: l.port, backlog: 511 }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return server;
  }

  /** The caps: over every listener, and per client address, so one host cannot lock the others out. */
  #onConnection(socket: Socket): void {
    const addr = socket.remoteAddress ?? '?';
    const mine = this.#perAddress.get(addr) ?? 0;
    if (this.#sockets.size >= this.#limits.maxConnections || mine >= this.#limits.maxPerAddress) {
      this.counters.count('http-connection-refused');
      this.#lines.line('debug', 'HTTP connection refused', {
        client: addr,
        reason: mine >= this.#limits.maxPerAddress ? 'per-address-cap' : 'connection-cap',
      });
      socket.destroy();
      return;
    }
    this.#sockets.set(socket, { bytes: 0, since: performance.now() });
    this.#perAddress.set(addr, mine + 1);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      const n = (this.#perAddress.get(addr) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(addr);
      else this.#perAddress.set(addr, n);
    });
  }

  /** Drop every connection that moved no byte in or out for the idle timeout. */
  #sweep(): void {
    const now = performance.now();
    for (const [socket, seen] of this.#sockets) {
      const bytes = socket.bytesRead + socket.bytesWritten;
      if (bytes !== seen.bytes) {
        seen.bytes = bytes;
        seen.since = now;
      } else if (now - seen.since >= this.#limits.idleTimeoutMs) {
        socket.destroy();
      }
    }
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    this.counters.count('http-request');
    const outcome: Outcome = { bytes: 0 };
    res.once('close', () => this.#logRequest(req, res, outcome, started));
    this.#answer(req, res, outcome).catch((err: unknown) => {
      this.counters.count('http-internal-error');
      this.#lines.line('error', 'HTTP handler failed', { error: String(err) });
      if (!res.headersSent) this.#plain(res, 500, 'Internal Server Error\n', req.method === 'HEAD');
      else res.destroy();
    });
  }

  async #answer(req: IncomingMessage, res: ServerResponse, outcome: Outcome): Promise<void> {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', ALLOW);
      return this.#plain(res, 405, 'Method Not Allowed\n', false);
    }
    const target = parseTarget(req.url ?? '');
    if (!target.ok) {
      outcome.detail = { refused: target.reason };
      return this.#plain(res, 404, 'Not Found\n', head);
    }
    if (target.path.startsWith(SCRIPT_PREFIX)) return this.#script(req, res, target.path, target.query, outcome);
    const address = req.socket.remoteAddress ?? '';
    outcome.requested = fileNameOf(target.path);
    const opened = await this.#o.root.open(outcome.requested, this.#o.nameContext?.(address) ?? { ip: address });
    if (!opened.ok) {
      outcome.detail = { refused: opened.reason };
      const status = statusOfRefusal(opened.reason);
      return this.#plain(res, status, REFUSAL_BODY[status]!, head);
    }
    outcome.file = opened.file.name;
    this.#sendFile(req, res, opened.file, outcome);
  }

  #sendFile(req: IncomingMessage, res: ServerResponse, file: OpenFile, outcome: Outcome): void {
    const head = req.method === 'HEAD';
    const lastModified = file.mtime.toUTCString();
    res.setHeader('Last-Modified', lastModified);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Content-Type', contentTypeOf(file.name));
    // A file from --upstream says whether the cache had it (pxe-probe --fetch reports it).
    if (file.cache) {
      res.setHeader('X-Cache', file.cache);
      outcome.cache = file.cache;
      outcome.detail = { ...outcome.detail, cache: file.cache };
    }
    const since = req.headers['if-modified-since'];
    const sinceMs = since !== undefined ? Date.parse(since) : NaN;
    if (!Number.isNaN(sinceMs) && seconds(file.mtime) <= Math.floor(sinceMs / 1000)) {
      void file.close();
      res.removeHeader('Content-Type');
      res.writeHead(304);
      res.end();
      return;
    }
    // If-Range (RFC 9110 §13.1.5) with a date: the range only if the file is unchanged since.
    const ifRange = req.headers['if-range'];
    const range =
      ifRange === undefined || ifRange === lastModified
        ? parseRange(req.headers.range, file.size)
        : { kind: 'none' as const };
    if (range.kind === 'unsatisfiable') {
      void file.close();
      res.setHeader('Content-Range', `bytes */${file.size}`);
      return this.#plain(res, 416, '', head);
    }
    let start = 0;
    let end = file.size - 1;
    if (range.kind === 'single') {
      ({ start, end } = range);
      res.setHeader('Content-Range', `bytes ${start}-${end}/${file.size}`);
      res.statusCode = 206;
    }
    res.setHeader('Content-Length', end - start + 1);
    if (head || file.size === 0) {
      void file.close();
      res.end();
      return;
    }
    // The file is closed once the response is over, finished or cut off (res 'close' fires both ways).
    res.once('close', () => void file.close());
    if (!file.arriving) {
      // Two buffers in turn, read while the other is written (src/http/send-range.ts).
      const { chunkSize, bufferBudget } = this.#limits;
      const share = Math.floor(bufferBudget / (2 * (this.#sending + 1)));
      const chunk = Math.max(MIN_CHUNK, Math.min(chunkSize, share));
      this.#sending++;
      sendRange(file, res, start, end, chunk, (n) => (outcome.bytes += n))
        .catch(() => res.destroy())
        .finally(() => this.#sending--);
      return;
    }
    // A file still arriving from --upstream follows its download with its own stream, which passes
    // on bytes as they come; a 256 KiB read would hold the first byte back until 256 KiB are in.
    const stream = file.stream(start, end);
    stream.on('data', (chunk: Buffer) => (outcome.bytes += chunk.length));
    pipeline(stream, res, () => undefined);
  }

  /** A generated iPXE script for the machine the URL names, chosen again through the boot policy. */
  #script(req: IncomingMessage, res: ServerResponse, path: string, query: string, outcome: Outcome): void {
    const head = req.method === 'HEAD';
    const policy = this.#o.policy?.();
    const wanted = parseScriptRequest(path, query);
    if (!policy || !wanted) {
      outcome.detail = { refused: 'no-such-script' };
      return this.#plain(res, 404, 'Not Found\n', head);
    }
    const client = scriptClient(wanted);
    const decided = this.#o.decided?.(client);
    const choice = chooseBoot(client, decided ? { ...policy, decided } : policy);
    const ruled = 'ignore' in choice || decided ? undefined : findRule(policy.rules ?? [], client);
    const found =
      'ignore' in choice
        ? undefined
        : (decided ?? (ruled && { rule: ruled.rule, label: ruleLabel(ruled.rule, ruled.index) }));
    if (!found?.rule.kernel) {
      outcome.detail = { refused: 'ignore' in choice ? choice.ignore : 'no-kernel-rule', mac: client.mac };
      return this.#plain(res, 404, 'Not Found\n', head);
    }
    const { rule, label } = found;
    const local = req.socket;
    const base = `http://${httpHostPort(local.localAddress ?? '0.0.0.0', local.localPort ?? 80)}`;
    const body = ipxeScript(
      {
        kernel: rule.kernel!,
        ...(rule.initrd ? { initrd: rule.initrd } : {}),
        ...(rule.cmdline ? { cmdline: rule.cmdline } : {}),
      },
      base,
      `pxe-pdhcp: ${client.mac} ${client.archName}, ${label}`,
    );
    this.counters.count('http-script');
    outcome.detail = { mac: client.mac, rule: label };
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    const bytes = Buffer.from(body, 'utf8');
    res.setHeader('Content-Length', bytes.length);
    if (!head) outcome.bytes = bytes.length;
    res.end(head ? undefined : bytes);
  }

  #plain(res: ServerResponse, status: number, body: string, head: boolean): void {
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(head ? undefined : body);
  }

  /** The one line per request, through the daemon-wide cap: client, path, status, bytes, seconds. */
  #logRequest(req: IncomingMessage, res: ServerResponse, outcome: Outcome, started: number): void {
    const counter = STATUS_COUNTER[res.statusCode];
    if (counter) this.counters.count(counter);
    const complete = res.writableFinished;
    if (!complete) this.counters.count('http-aborted');
    this.counters.count('http-bytes', outcome.bytes);
    this.#lines.line('info', 'HTTP', {
      client: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
      method: printable(req.method ?? '?', 16),
      path: printable(req.url ?? ''),
      status: res.statusCode,
      bytes: outcome.bytes,
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      ...(complete ? {} : { aborted: true }),
      ...outcome.detail,
    });
    this.#o.onRequest?.({
      address: req.socket.remoteAddress ?? '',
      port: req.socket.remotePort ?? 0,
      method: printable(req.method ?? '?', 16),
      path: printable(req.url ?? ''),
      status: res.statusCode,
      bytes: outcome.bytes,
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      complete,
      ...(outcome.file !== undefined ? { file: outcome.file } : {}),
      ...(outcome.requested !== undefined ? { requested: printable(outcome.requested) } : {}),
      ...(outcome.detail?.mac !== undefined ? { mac: outcome.detail.mac } : {}),
      ...(outcome.cache !== undefined ? { cache: outcome.cache } : {}),
    });
  }
}
