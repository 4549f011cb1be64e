/**
 * One download from the upstream in progress, as the cache (src/files/cache.ts) holds it: the
 * temporary file the body is written to, how much of it has arrived, and the readers waiting for
 * bytes that have not. Its `OpenFile` is served before the download ends; reads wait only for the
 * bytes they ask for. Copying the body in, and what becomes of the file at the end, is the cache's.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { OpenFile } from './root.js';
import type { UpstreamResponse } from './upstream.js';

/** Read size of a stream that follows a download. */
const STREAM_CHUNK = 64 * 1024;

export async function writeAll(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let off = 0; off < chunk.length;) {
    const { bytesWritten } = await handle.write(chunk, off, chunk.length - off, position + off);
    off += bytesWritten;
  }
}

/** Why a body stopped mid-file, in words for the log. */
export function describeBodyError(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || e.message === 'aborted') return 'the upstream closed the connection mid-file';
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') return 'the upstream closed the connection mid-file';
  return e.message;
}

/**
 * One download in progress: the temporary file (read and written through one descriptor), how much
 * of it has arrived, and who waits for which byte. The descriptor stays open while a reader holds
 * it, also after the rename into the cache (or the unlink of a failed download).
 */
export class Download {
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

  /** A download of `r` into a new file at `tmpPath` (which must not exist). */
  static async create(name: string, key: string, r: UpstreamResponse, tmpPath: string): Promise<Download> {
    const handle = await open(
      tmpPath,
      constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o640,
    );
    return new Download(name, key, r, tmpPath, handle);
  }

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

/** A download still arriving as one reader's `OpenFile`: its reads wait for their bytes. Needs a known `size`. */
export function arrivingFile(dl: Download): OpenFile {
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
