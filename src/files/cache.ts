/**
 * The on-disk cache of files fetched from `--upstream`, and the `FileSource` that `FileRoot` asks for
 * names it does not hold.
 *
 * - A file is downloaded once, into `tmp/` under a temporary name, and renamed into `files/` only when
 *   complete and as long as the upstream's `Content-Length` said: a half download is never served
 *   as whole, and one cut off (upstream gone, daemon killed) is deleted, at once or at the next start.
 * - Readers do not wait for the whole file: the first request's `OpenFile` has the upstream's length
 *   as its size, and its reads wait only for the bytes they ask for. Requests for a name being
 *   fetched join that download: ten clients, one upstream request.
 * - Bounded: `maxBytes` over every cached file, least recently used first out; a file larger than
 *   what is left (downloads in progress count) is not fetched. Downloads are bounded in time.
 * - A cached file older than `ttlMs` is revalidated (If-None-Match / If-Modified-Since) before it is
 *   served; when the upstream cannot be reached, the cached copy is served and a warning logged.
 *
 * Layout under `dir`: `files/<sha256 of the name>` (the bytes) and `files/<same>.meta` (JSON: the
 * name, size, validators), `tmp/` (downloads in progress, emptied at start).
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  unlink,
  utimes,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Counters, type CounterSink } from '../core/counters.js';
import { UserError } from '../core/errors.js';
import { PeerLog, type Logger } from '../core/logger.js';
import { printable } from '../core/text.js';
import type { CheckResult, FileSource, OpenFile, OpenResult } from './root.js';
import { UpstreamError, type Upstream, type UpstreamResponse } from './upstream.js';

/** What the cache counts (the daemon's counters take them). */
export type CacheCounter =
  | 'upstream-hit'
  | 'upstream-miss'
  | 'upstream-revalidated'
  | 'upstream-stale-served'
  | 'upstream-not-found'
  | 'upstream-error'
  | 'upstream-download-failed'
  | 'upstream-evicted'
  | 'upstream-bytes';

export interface CacheOptions {
  /** The cache directory (created if missing). */
  dir: string;
  /** Cached bytes at most, over every file. */
  maxBytes: number;
  /** A cached file is revalidated once it is older than this. */
  ttlMs: number;
  upstream: Upstream;
  log: Logger;
  /** The daemon-wide cap for lines peers can cause; a private one by default. */
  lines?: PeerLog;
  counters?: CounterSink<CacheCounter>;
  /** A whole download may take this long (default 30 min). */
  maxDownloadMs?: number;
  /** A revalidation waits this long for the upstream before the cached copy is served (default 5 s). */
  revalidateTimeoutMs?: number;
  /** How long a 404 is remembered, at most `ttlMs` (default 60 s): pxelinux probes many names. */
  notFoundTtlMs?: number;
  /** After the upstream failed, stale files are served without asking it again for this long (default 30 s). */
  downHoldMs?: number;
  /** Milliseconds since the epoch (tests move time). */
  now?: () => number;
}

export const CACHE_DEFAULTS = {
  dir: '/var/cache/pxe-pdhcp',
  maxBytes: 2 * 1024 ** 3,
  ttlMs: 3600_000,
  maxDownloadMs: 30 * 60_000,
  revalidateTimeoutMs: 5_000,
  notFoundTtlMs: 60_000,
  downHoldMs: 30_000,
} as const;

/** Names whose 404 is remembered, at most. */
const MAX_NOT_FOUND = 4096;
/** URLs whose last warning is remembered (so each is logged once), at most; and when to warn again. */
const MAX_WARNED = 1024;
const WARN_AGAIN_MS = 10 * 60_000;
/** A hit updates the file's atime (the LRU order across restarts) at most this often. */
const TOUCH_MS = 60_000;
/** Read size of a stream that follows a download. */
const STREAM_CHUNK = 64 * 1024;

/** One cached file. */
interface Entry {
  name: string;
  key: string;
  size: number;
  etag?: string;
  lastModified?: string;
  /** `Last-Modified` of the upstream, else when it was fetched: for HTTP clients. */
  mtime: Date;
  validatedAt: number;
  touchedAt: number;
}

/** The meta file's JSON. */
interface Meta {
  v: 1;
  name: string;
  size: number;
  etag?: string;
  lastModified?: string;
  mtime: number;
  validatedAt: number;
}

function isMeta(m: unknown): m is Meta {
  const o = m as Partial<Meta> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    o.v === 1 &&
    typeof o.name === 'string' &&
    Number.isSafeInteger(o.size) &&
    typeof o.mtime === 'number' &&
    typeof o.validatedAt === 'number' &&
    (o.etag === undefined || typeof o.etag === 'string') &&
    (o.lastModified === undefined || typeof o.lastModified === 'string')
  );
}

const keyOf = (name: string): string => createHash('sha256').update(name).digest('hex');

async function writeAll(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let off = 0; off < chunk.length;) {
    const { bytesWritten } = await handle.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * One download in progress: the temporary file (read and written through one descriptor), how much
 * of it has arrived, and who waits for which byte. The descriptor stays open while a reader holds
 * it, also after the rename into the cache (or the unlink of a failed download).
 */
class Download {
  readonly name: string;
  readonly key: string;
  readonly url: string;
  /** The upstream's Content-Length; undefined when it sent none (then nobody reads before the end). */
  readonly size: number | undefined;
  readonly mtime: Date;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
  readonly tmpPath: string;
  readonly handle: FileHandle;
  readonly body: UpstreamResponse['body'];
  readonly started: number;
  readonly finished: Promise<void>;
  received = 0;
  state: 'running' | 'done' | 'failed' = 'running';
  error: Error | null = null;
  #refs = 1;
  #waiters = new Set<{ at: number; resolve: () => void; reject: (e: Error) => void }>();
  #settle!: { resolve: () => void; reject: (e: Error) => void };

  constructor(name: string, key: string, r: UpstreamResponse, tmpPath: string, handle: FileHandle) {
    this.name = name;
    this.key = key;
    this.url = r.url;
    this.size = r.length;
    const lm = r.lastModified ? Date.parse(r.lastModified) : NaN;
    this.mtime = Number.isNaN(lm) ? new Date() : new Date(lm);
    this.etag = r.etag;
    this.lastModified = r.lastModified;
    this.tmpPath = tmpPath;
    this.handle = handle;
    this.body = r.body;
    this.started = performance.now();
    this.finished = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }));
    this.finished.catch(() => undefined);
  }

  /** Resolves once byte `at - 1` is on disk (or the download is complete); rejects if it fails. */
  waitFor(at: number): Promise<void> {
    if (this.state === 'failed') return Promise.reject(this.error!);
    if (this.received >= at || this.state === 'done') return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.add({ at, resolve, reject }));
  }

  progress(n: number): void {
    this.received += n;
    for (const w of this.#waiters) {
      if (this.received >= w.at) {
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }

  end(error?: Error): void {
    if (this.state !== 'running') return;
    this.state = error ? 'failed' : 'done';
    this.error = error ?? null;
    for (const w of this.#waiters) {
      if (error) w.reject(error);
      else w.resolve();
    }
    this.#waiters.clear();
    if (error) this.#settle.reject(error);
    else this.#settle.resolve();
    this.unref();
  }

  ref(): void {
    this.#refs++;
  }

  unref(): void {
    if (--this.#refs === 0) void this.handle.close().catch(() => undefined);
  }
}

/**
 * A stream of bytes `start`..`end` of a download, following it as it grows: each read waits for at
 * least one new byte and passes on whatever has arrived (an HTTP client gets bytes as they come).
 */
class GrowingStream extends Readable {
  readonly #dl: Download;
  #pos: number;
  readonly #end: number;

  constructor(dl: Download, start: number, end: number) {
    super({ highWaterMark: STREAM_CHUNK });
    this.#dl = dl;
    this.#pos = start;
    this.#end = end;
  }

  override _read(): void {
    if (this.#pos > this.#end) {
      this.push(null);
      return;
    }
    const dl = this.#dl;
    dl.waitFor(this.#pos + 1)
      .then(async () => {
        if (this.destroyed) return;
        const have = dl.state === 'done' ? this.#end + 1 : Math.min(dl.received, this.#end + 1);
        const want = Math.min(STREAM_CHUNK, have - this.#pos);
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await dl.handle.read(buf, 0, want, this.#pos);
        if (bytesRead <= 0) throw new Error(`${dl.url}: cached file is shorter than announced`);
        if (this.destroyed) return;
        this.#pos += bytesRead;
        this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
      })
      .catch((err: Error) => this.destroy(err));
  }
}

/** What one fetch of a name gave: joiners of the same fetch get the same. */
type Fetched =
  | { kind: 'download'; dl: Download }
  | { kind: 'entry'; entry: Entry; label: 'hit' | 'miss' }
  | { kind: 'refused'; reason: 'not-found' | 'upstream-error' };

export class UpstreamCache implements FileSource {
  readonly dir: string;
  readonly upstream: Upstream;
  readonly counters: CounterSink<CacheCounter>;
  readonly #o: Required<Omit<CacheOptions, 'lines' | 'counters'>>;
  readonly #lines: PeerLog;
  readonly #files: string;
  readonly #tmp: string;
  /** Cached files, least recently used first (a hit moves its entry to the end). */
  readonly #entries = new Map<string, Entry>();
  /** Fetches in flight, by name, until their download ends. */
  readonly #inflight = new Map<string, Promise<Fetched>>();
  readonly #downloads = new Set<Download>();
  /** Pending removals by key: a download renaming into the same key waits for them. */
  readonly #removing = new Map<string, Promise<void>>();
  /** Names the upstream answered 404 for, until when. */
  readonly #notFound = new Map<string, number>();
  readonly #warned = new Map<string, number>();
  #total = 0;
  /** Bytes promised to downloads in progress. */
  #reserved = 0;
  /** Until when stale files are served without asking the upstream (it just failed). */
  #downUntil = 0;
  #ready: Promise<void> | null = null;
  #closed = false;

  constructor(o: CacheOptions) {
    this.#o = {
      maxDownloadMs: CACHE_DEFAULTS.maxDownloadMs,
      revalidateTimeoutMs: CACHE_DEFAULTS.revalidateTimeoutMs,
      notFoundTtlMs: CACHE_DEFAULTS.notFoundTtlMs,
      downHoldMs: CACHE_DEFAULTS.downHoldMs,
      now: Date.now,
      ...o,
    };
    this.dir = o.dir;
    this.upstream = o.upstream;
    this.#lines = o.lines ?? new PeerLog(o.log);
    this.counters = o.counters ?? new Counters<CacheCounter>();
    this.#files = join(o.dir, 'files');
    this.#tmp = join(o.dir, 'tmp');
  }

  /** Bytes of cached files (downloads in progress not included). */
  get size(): number {
    return this.#total;
  }

  /** Names cached, least recently used first. */
  get names(): string[] {
    return [...this.#entries.keys()];
  }

  /** Downloads in progress. */
  get downloading(): number {
    return this.#downloads.size;
  }

  /**
   * Make the directories, delete what a killed run left in `tmp/`, load the index and drop what does
   * not check out (a file without its meta, or of another size). Run once, as the account that serves;
   * `open` waits for it. @throws UserError when the directory cannot be used
   */
  init(): Promise<void> {
    this.#ready ??= this.#init();
    return this.#ready;
  }

  async #init(): Promise<void> {
    try {
      await mkdir(this.#files, { recursive: true, mode: 0o750 });
      await mkdir(this.#tmp, { recursive: true, mode: 0o750 });
      await access(this.dir, constants.W_OK | constants.X_OK);
      await access(this.#files, constants.W_OK | constants.X_OK);
      await access(this.#tmp, constants.W_OK | constants.X_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const uid = process.getuid?.();
      throw new UserError(
        `cache directory ${this.dir} cannot be used${uid !== undefined ? ` by uid ${uid}` : ''}: ${e.code ?? e.message}` +
          ' (make it writable by the account pxe-pdhcp runs as, or choose another with --cache-dir)',
      );
    }
    for (const leftover of await readdir(this.#tmp))
      await rm(join(this.#tmp, leftover), { force: true, recursive: true });
    const found: { entry: Entry; used: number }[] = [];
    const names = new Set(await readdir(this.#files));
    for (const file of names) {
      if (!file.endsWith('.meta')) {
        if (!names.has(`${file}.meta`)) await rm(join(this.#files, file), { force: true, recursive: true });
        continue;
      }
      const key = file.slice(0, -'.meta'.length);
      const entry = await this.#load(key);
      if (!entry) {
        await Promise.all([rm(join(this.#files, key), { force: true }), rm(join(this.#files, file), { force: true })]);
        continue;
      }
      found.push(entry);
    }
    found.sort((a, b) => a.used - b.used);
    for (const { entry } of found) {
      this.#entries.set(entry.name, entry);
      this.#total += entry.size;
    }
    this.#evict();
  }

  /** One entry from its meta and data file, or null when they do not agree. */
  async #load(key: string): Promise<{ entry: Entry; used: number } | null> {
    try {
      const meta: unknown = JSON.parse(await readFile(join(this.#files, `${key}.meta`), 'utf8'));
      if (!isMeta(meta) || keyOf(meta.name) !== key) return null;
      const st = await stat(join(this.#files, key));
      if (!st.isFile() || st.size !== meta.size) return null;
      return {
        entry: {
          name: meta.name,
          key,
          size: meta.size,
          ...(meta.etag !== undefined ? { etag: meta.etag } : {}),
          ...(meta.lastModified !== undefined ? { lastModified: meta.lastModified } : {}),
          mtime: new Date(meta.mtime),
          validatedAt: meta.validatedAt,
          touchedAt: st.atimeMs,
        },
        used: st.atimeMs,
      };
    } catch {
      return null;
    }
  }

  /** Stop every download (their temporary files are deleted) and close idle upstream connections. */
  async close(): Promise<void> {
    this.#closed = true;
    const downloads = [...this.#downloads];
    for (const dl of downloads) {
      const stopping = new Error('the daemon is stopping');
      dl.end(stopping);
      dl.body.destroy(stopping);
    }
    await Promise.all(downloads.map((dl) => rm(dl.tmpPath, { force: true })));
    this.upstream.close();
  }

  /** `name` (cleaned by `FileRoot`), from the cache or the upstream. Never rejects. */
  async open(name: string): Promise<OpenResult> {
    try {
      await this.init();
    } catch {
      return { ok: false, reason: 'upstream-error' };
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const now = this.#o.now();
      const entry = this.#entries.get(name);
      if (entry && !this.#inflight.has(name)) {
        const fresh = now - entry.validatedAt < this.#o.ttlMs;
        if (fresh || now < this.#downUntil) {
          if (!fresh) this.#servedStale(entry, 'the upstream failed moments ago');
          const opened = await this.#openEntry(entry, 'hit');
          if (opened) return opened;
          continue; // evicted under us: fetch it again
        }
      }
      if (!entry && (this.#notFound.get(name) ?? 0) > now) {
        this.counters.count('upstream-not-found');
        return { ok: false, reason: 'not-found' };
      }
      const got = await this.#join(name, entry);
      switch (got.kind) {
        case 'refused':
          return { ok: false, reason: got.reason };
        case 'entry': {
          const opened = await this.#openEntry(got.entry, got.label);
          if (opened) return opened;
          continue;
        }
        case 'download': {
          const dl = got.dl;
          if (dl.state === 'failed') return { ok: false, reason: 'upstream-error' };
          if (dl.state === 'done') continue; // finished meanwhile: it is a cached file now
          this.counters.count('upstream-miss');
          return { ok: true, file: this.#downloadFile(dl) };
        }
      }
    }
    return { ok: false, reason: 'upstream-error' };
  }

  /** Whether `name` is cached or the upstream has it (HEAD); downloads nothing. */
  async check(name: string): Promise<CheckResult> {
    await this.init().catch(() => undefined);
    const entry = this.#entries.get(name);
    if (entry) return { ok: true, size: entry.size };
    try {
      const h = await this.upstream.head(name);
      return { ok: true, size: h.length ?? 0 };
    } catch (err) {
      return {
        ok: false,
        reason: err instanceof UpstreamError && err.kind === 'not-found' ? 'not-found' : 'upstream-error',
      };
    }
  }

  /** The fetch of `name` in flight, or a new one. */
  #join(name: string, stale: Entry | undefined): Promise<Fetched> {
    const running = this.#inflight.get(name);
    if (running) return running;
    const p = this.#fetch(name, stale);
    this.#inflight.set(name, p);
    const forget = (): void => {
      if (this.#inflight.get(name) === p) this.#inflight.delete(name);
    };
    void p.then((got) => (got.kind === 'download' ? got.dl.finished.then(forget, forget) : forget()));
    return p;
  }

  async #fetch(name: string, stale: Entry | undefined): Promise<Fetched> {
    const url = this.upstream.urlOf(name) ?? name;
    let r: UpstreamResponse;
    try {
      r = await this.upstream.request(
        name,
        stale
          ? {
              ...(stale.etag !== undefined ? { etag: stale.etag } : {}),
              ...(stale.lastModified !== undefined ? { lastModified: stale.lastModified } : {}),
              headersTimeoutMs: this.#o.revalidateTimeoutMs,
            }
          : {},
      );
    } catch (err) {
      return this.#failed(name, url, err, stale);
    }
    const now = this.#o.now();
    if (r.status === 304 && stale) {
      r.body.resume();
      stale.validatedAt = now;
      this.counters.count('upstream-revalidated');
      void this.#writeMeta(stale).catch(() => undefined);
      return { kind: 'entry', entry: stale, label: 'hit' };
    }
    if (r.status !== 200) {
      r.body.destroy();
      return this.#failed(name, url, new UpstreamError('error', url, `${url}: unexpected HTTP ${r.status}`), stale);
    }
    // Changed upstream: the old copy goes now (readers keep their descriptor), the new one replaces it.
    if (stale) await this.#remove(stale);
    const room = this.#o.maxBytes - this.#reserved;
    if (r.length !== undefined && r.length > room) {
      r.body.destroy();
      const why =
        r.length > this.#o.maxBytes
          ? `larger (${r.length} bytes) than the cache (--cache-max-size ${this.#o.maxBytes})`
          : `${r.length} bytes do not fit beside the downloads in progress`;
      return this.#failed(name, url, new UpstreamError('error', url, `${url}: ${why}`));
    }
    // Promised before the first await, so two downloads cannot both take the same room.
    if (r.length !== undefined) this.#reserve(r.length);
    let dl: Download;
    try {
      dl = await this.#startDownload(name, r);
    } catch (err) {
      r.body.destroy();
      if (r.length !== undefined) this.#reserved -= r.length;
      return this.#failed(name, url, new UpstreamError('error', url, `${url}: cannot write the cache: ${String(err)}`));
    }
    if (dl.size !== undefined) return { kind: 'download', dl };
    // No length: the size must be known before the first answer (tsize, Content-Length), so wait.
    try {
      await dl.finished;
    } catch {
      return { kind: 'refused', reason: 'upstream-error' };
    }
    const entry = this.#entries.get(name);
    return entry ? { kind: 'entry', entry, label: 'miss' } : { kind: 'refused', reason: 'upstream-error' };
  }

  /** A request that gave no file: a 404 is remembered; otherwise the stale copy, if any, is served. */
  #failed(name: string, url: string, err: unknown, stale?: Entry): Fetched | Promise<Fetched> {
    const e =
      err instanceof UpstreamError ? err : new UpstreamError('error', url, `${url}: ${(err as Error).message ?? err}`);
    const now = this.#o.now();
    if (e.kind === 'not-found') {
      this.counters.count('upstream-not-found');
      this.#rememberNotFound(name, now);
      this.#lines.line('debug', 'not found upstream', { url, error: printable(e.message) });
      return stale
        ? this.#remove(stale).then(() => ({ kind: 'refused', reason: 'not-found' }) as const)
        : { kind: 'refused', reason: 'not-found' };
    }
    this.#downUntil = now + this.#o.downHoldMs;
    if (stale) {
      this.#servedStale(stale, e.message);
      return { kind: 'entry', entry: stale, label: 'hit' };
    }
    this.counters.count('upstream-error');
    this.#warnOnce(url, 'upstream error', { url, error: printable(e.message, 300) });
    return { kind: 'refused', reason: 'upstream-error' };
  }

  #servedStale(entry: Entry, why: string): void {
    this.counters.count('upstream-stale-served');
    const url = this.upstream.urlOf(entry.name) ?? entry.name;
    this.#warnOnce(url, 'upstream unreachable: serving the cached copy', {
      url,
      'age-seconds': Math.round((this.#o.now() - entry.validatedAt) / 1000),
      error: printable(why, 300),
    });
  }

  #rememberNotFound(name: string, now: number): void {
    const ttl = Math.min(this.#o.notFoundTtlMs, this.#o.ttlMs);
    if (ttl <= 0) return;
    this.#notFound.delete(name);
    if (this.#notFound.size >= MAX_NOT_FOUND) this.#notFound.delete(this.#notFound.keys().next().value!);
    this.#notFound.set(name, now + ttl);
  }

  /** Log a line about `url` once (again only after a while), through the peer-line cap. */
  #warnOnce(url: string, message: string, fields: Record<string, unknown>): void {
    const now = this.#o.now();
    const last = this.#warned.get(url);
    if (last !== undefined && now - last < WARN_AGAIN_MS) return;
    this.#warned.delete(url);
    if (this.#warned.size >= MAX_WARNED) this.#warned.delete(this.#warned.keys().next().value!);
    this.#warned.set(url, now);
    this.#lines.line('warn', message, fields);
  }

  async #startDownload(name: string, r: UpstreamResponse): Promise<Download> {
    const key = keyOf(name);
    const tmpPath = join(this.#tmp, `${key}.${randomBytes(6).toString('hex')}.part`);
    const handle = await open(
      tmpPath,
      constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o640,
    );
    const dl = new Download(name, key, r, tmpPath, handle);
    this.#downloads.add(dl);
    void this.#pump(dl, r);
    return dl;
  }

  #reserve(n: number): void {
    this.#reserved += n;
    this.#evict();
  }

  /**
   * Copy the body into the temporary file, chunk by chunk as it arrives (the async iterator holds the
   * upstream back while a write is pending), then verify, rename and index it.
   */
  async #pump(dl: Download, r: UpstreamResponse): Promise<void> {
    const body = r.body;
    const timer = setTimeout(
      () =>
        body.destroy(
          new UpstreamError('error', dl.url, `${dl.url}: download took longer than ${this.#o.maxDownloadMs / 1000} s`),
        ),
      this.#o.maxDownloadMs,
    );
    let pos = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (dl.state !== 'running') throw dl.error ?? new Error('stopped');
        if (dl.size === undefined) {
          if (pos + chunk.length > this.#o.maxBytes - (this.#reserved - pos)) {
            throw new UpstreamError('error', dl.url, `${dl.url}: larger than the cache (--cache-max-size)`);
          }
          this.#reserve(chunk.length);
        }
        await writeAll(dl.handle, chunk, pos);
        pos += chunk.length;
        this.counters.count('upstream-bytes', chunk.length);
        dl.progress(chunk.length);
      }
      if (dl.state !== 'running') throw dl.error ?? new Error('stopped');
      if (dl.size !== undefined && pos !== dl.size) {
        throw new UpstreamError('error', dl.url, `${dl.url}: got ${pos} of ${dl.size} bytes`);
      }
      await dl.handle.datasync();
      await this.#removing.get(dl.key);
      if (dl.state !== 'running') throw dl.error ?? new Error('stopped');
      await rename(dl.tmpPath, join(this.#files, dl.key));
      const entry: Entry = {
        name: dl.name,
        key: dl.key,
        size: pos,
        ...(dl.etag !== undefined ? { etag: dl.etag } : {}),
        ...(dl.lastModified !== undefined ? { lastModified: dl.lastModified } : {}),
        mtime: dl.mtime,
        validatedAt: this.#o.now(),
        touchedAt: this.#o.now(),
      };
      await this.#writeMeta(entry);
      clearTimeout(timer);
      this.#downloads.delete(dl);
      this.#reserved -= dl.size ?? pos;
      const old = this.#entries.get(dl.name);
      if (old) this.#total -= old.size;
      this.#entries.delete(dl.name);
      this.#entries.set(dl.name, entry);
      this.#total += entry.size;
      this.#notFound.delete(dl.name);
      this.#evict();
      // From now on a request finds the entry, not this download.
      this.#inflight.delete(dl.name);
      dl.end();
      this.#lines.line('info', 'upstream download complete', {
        url: dl.url,
        bytes: pos,
        seconds: Number(((performance.now() - dl.started) / 1000).toFixed(3)),
      });
    } catch (err) {
      clearTimeout(timer);
      body.destroy();
      this.#downloads.delete(dl);
      this.#reserved -= dl.size ?? pos;
      const closing = this.#closed;
      const e = err instanceof Error ? err : new Error(String(err));
      // The next request tries again; those that joined this one get the error, once the part is gone.
      this.#inflight.delete(dl.name);
      await rm(dl.tmpPath, { force: true }).catch(() => undefined);
      dl.end(e);
      if (closing) return;
      this.counters.count('upstream-download-failed');
      const message = e instanceof UpstreamError ? e.message : `${dl.url}: ${describeBodyError(e)}`;
      this.#warnOnce(dl.url, 'upstream download failed', { url: dl.url, bytes: pos, error: printable(message, 300) });
    }
  }

  async #writeMeta(e: Entry): Promise<void> {
    const meta: Meta = {
      v: 1,
      name: e.name,
      size: e.size,
      ...(e.etag !== undefined ? { etag: e.etag } : {}),
      ...(e.lastModified !== undefined ? { lastModified: e.lastModified } : {}),
      mtime: e.mtime.getTime(),
      validatedAt: e.validatedAt,
    };
    const tmp = join(this.#tmp, `${e.key}.${randomBytes(6).toString('hex')}.meta`);
    await writeFile(tmp, JSON.stringify(meta), { mode: 0o640 });
    await rename(tmp, join(this.#files, `${e.key}.meta`));
  }

  /** Least recently used out until cached plus promised bytes fit. */
  #evict(): void {
    for (const entry of this.#entries.values()) {
      if (this.#total + this.#reserved <= this.#o.maxBytes) return;
      this.counters.count('upstream-evicted');
      void this.#remove(entry);
    }
  }

  /** Forget an entry and delete its files (open descriptors keep reading the old bytes). */
  #remove(entry: Entry): Promise<void> {
    if (this.#entries.get(entry.name) === entry) {
      this.#entries.delete(entry.name);
      this.#total -= entry.size;
    }
    const before = this.#removing.get(entry.key) ?? Promise.resolve();
    const p = before
      .then(() =>
        Promise.all([
          unlink(join(this.#files, `${entry.key}.meta`)).catch(() => undefined),
          unlink(join(this.#files, entry.key)).catch(() => undefined),
        ]),
      )
      .then(() => undefined);
    this.#removing.set(entry.key, p);
    void p.then(() => {
      if (this.#removing.get(entry.key) === p) this.#removing.delete(entry.key);
    });
    return p;
  }

  /** A cached file as an `OpenFile`; null when its file is gone (evicted between lookup and open). */
  async #openEntry(entry: Entry, label: 'hit' | 'miss'): Promise<OpenResult | null> {
    let handle: FileHandle;
    try {
      handle = await open(join(this.#files, entry.key), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      if (this.#entries.get(entry.name) === entry) void this.#remove(entry);
      return null;
    }
    if (this.#entries.get(entry.name) === entry) {
      // Most recently used: to the end of the LRU order.
      this.#entries.delete(entry.name);
      this.#entries.set(entry.name, entry);
    }
    const now = this.#o.now();
    if (now - entry.touchedAt >= TOUCH_MS) {
      entry.touchedAt = now;
      const path = join(this.#files, entry.key);
      void utimes(path, now / 1000, entry.mtime.getTime() / 1000).catch(() => undefined);
    }
    this.counters.count(label === 'hit' ? 'upstream-hit' : 'upstream-miss');
    let closed: Promise<void> | null = null;
    const file: OpenFile = {
      name: entry.name,
      size: entry.size,
      mtime: entry.mtime,
      cache: label,
      fd: handle.fd,
      readv: async (buffers, position) => (await handle.readv(buffers, position)).bytesRead,
      stream: (start, end) => handle.createReadStream({ start, end, autoClose: false, emitClose: false }),
      close: () => (closed ??= handle.close().catch(() => undefined)),
    };
    return { ok: true, file };
  }

  /** A file still arriving: its reads wait for their bytes. */
  #downloadFile(dl: Download): OpenFile {
    dl.ref();
    const size = dl.size!;
    let closed = false;
    return {
      name: dl.name,
      size,
      mtime: dl.mtime,
      cache: 'miss',
      get arriving() {
        return dl.state === 'running';
      },
      readv: async (buffers, position) => {
        let want = 0;
        for (const b of buffers) want += b.length;
        await dl.waitFor(Math.min(position + want, size));
        return (await dl.handle.readv(buffers, position)).bytesRead;
      },
      stream: (start, end) => new GrowingStream(dl, start, end),
      close: () => {
        if (!closed) {
          closed = true;
          dl.unref();
        }
        return Promise.resolve();
      },
    };
  }
}

function describeBodyError(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || e.message === 'aborted') return 'the upstream closed the connection mid-file';
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') return 'the upstream closed the connection mid-file';
  return e.message;
}
