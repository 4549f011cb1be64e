/*
 * Over 300 lines on purpose: the index, the LRU with its byte budget (cached plus promised), the
 * fetches in flight that requests join, revalidation and the copy of a body into the cache all move
 * the same counts and maps, and read best in one class. The directory and its meta files are
 * cache-dir.ts; one download in progress and its readers, download.ts.
 */
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
 */
import { constants } from 'node:fs';
import { open, rename, rm, utimes, type FileHandle } from 'node:fs/promises';
import { Counters, type CounterSink } from '../core/counters.js';
import { PeerLog, type Logger } from '../core/logger.js';
import { printable } from '../core/text.js';
import { CacheDir, keyOf, type Entry } from './cache-dir.js';
import { arrivingFile, describeBodyError, Download, writeAll } from './download.js';
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
  readonly #disk: CacheDir;
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
    this.#disk = new CacheDir(o.dir);
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
    for (const entry of await this.#disk.load()) {
      this.#entries.set(entry.name, entry);
      this.#total += entry.size;
    }
    this.#evict();
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
          return { ok: true, file: arrivingFile(dl) };
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
      void this.#disk.writeMeta(stale).catch(() => undefined);
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
    const dl = await Download.create(name, key, r, this.#disk.partPath(key));
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
      await rename(dl.tmpPath, this.#disk.dataPath(dl.key));
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
      await this.#disk.writeMeta(entry);
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
    const p = before.then(() => this.#disk.remove(entry.key));
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
      handle = await open(this.#disk.dataPath(entry.key), constants.O_RDONLY | constants.O_NOFOLLOW);
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
      const path = this.#disk.dataPath(entry.key);
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
}
