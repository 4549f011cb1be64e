import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** One file of the fake mirror, and how it is served. */
export interface FakeFile {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  /** Send no Content-Length (chunked). */
  noLength?: boolean;
  /** Bytes per second, sent in slices of `slice` bytes (default 16 KiB): a slow mirror. */
  rate?: number;
  slice?: number;
  /** Close the connection after this many body bytes: a download killed mid-way. */
  cutAfter?: number;
  /** Answer with this status and no file. */
  status?: number;
  /** Redirect (302) to this location. */
  redirect?: string;
  /** Never answer. */
  hang?: boolean;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

/**
 * A mirror on 127.0.0.1 for tests: files by path, with slow, cut, failing, hanging and redirecting
 * variants, conditional GET (ETag, Last-Modified), and a log of every request it saw.
 */
export class FakeUpstream {
  readonly files = new Map<string, FakeFile>();
  readonly requests: SeenRequest[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor() {
    this.#server = createServer((req, res) => this.#answer(req, res));
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  static async start(): Promise<FakeUpstream> {
    const f = new FakeUpstream();
    await new Promise<void>((r) => f.#server.listen(0, '127.0.0.1', r));
    return f;
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Requests for `path` (with its leading `/`), GETs only unless `method` says otherwise. */
  count(path: string, method = 'GET'): number {
    return this.requests.filter((r) => r.url === path && r.method === method).length;
  }

  /** Stop listening and cut every connection (a mirror that died). */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const f = this.files.get(decodeURIComponent(req.url ?? ''));
    if (!f) {
      res.writeHead(404, { 'content-length': 10 });
      res.end('not found\n');
      return;
    }
    if (f.hang) return;
    if (f.redirect) {
      res.writeHead(302, { location: f.redirect, 'content-length': 0 });
      res.end();
      return;
    }
    if (f.status) {
      res.writeHead(f.status, { 'content-length': 0 });
      res.end();
      return;
    }
    const headers: Record<string, string | number> = {};
    if (f.etag) headers.etag = f.etag;
    if (f.lastModified) headers['last-modified'] = f.lastModified;
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if ((f.etag && inm === f.etag) || (!inm && f.lastModified && ims === f.lastModified)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    if (!f.noLength) headers['content-length'] = f.body.length;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const slice = f.slice ?? 16 * 1024;
    const end = f.cutAfter ?? f.body.length;
    if (!f.rate) {
      res.write(f.body.subarray(0, end));
      if (f.cutAfter !== undefined) this.#cut(res);
      else res.end();
      return;
    }
    let pos = 0;
    const step = (): void => {
      if (res.destroyed) return;
      const n = Math.min(slice, end - pos);
      res.write(f.body.subarray(pos, pos + n));
      pos += n;
      if (pos >= end) {
        if (f.cutAfter !== undefined) this.#cut(res);
        else res.end();
        return;
      }
      const t = setTimeout(step, (slice / f.rate!) * 1000);
      this.#timers.add(t);
    };
    step();
  }

  /** Give the written bytes a moment to leave, then reset the connection. */
  #cut(res: ServerResponse): void {
    const t = setTimeout(() => res.socket?.destroy(), 50);
    this.#timers.add(t);
  }
}
