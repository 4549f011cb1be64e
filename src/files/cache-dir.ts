/**
 * The upstream cache's directory (src/files/cache.ts keeps the index in memory; this is what lies on
 * disk). Layout under `dir`: `files/<sha256 of the name>` (the bytes) and `files/<same>.meta` (JSON:
 * the name, size, validators), `tmp/` (downloads in progress and meta files being written, emptied at
 * start). A file's atime is its place in the LRU order across restarts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';

/** One cached file. */
export interface Entry {
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

/** The file name of a cached name. */
export const keyOf = (name: string): string => createHash('sha256').update(name).digest('hex');

export class CacheDir {
  readonly dir: string;
  readonly #files: string;
  readonly #tmp: string;

  constructor(dir: string) {
    this.dir = dir;
    this.#files = join(dir, 'files');
    this.#tmp = join(dir, 'tmp');
  }

  /** Where the bytes of a cached file are. */
  dataPath(key: string): string {
    return join(this.#files, key);
  }

  /** A new temporary name for a download of `key`. */
  partPath(key: string): string {
    return join(this.#tmp, `${key}.${randomBytes(6).toString('hex')}.part`);
  }

  /**
   * Make the directories, delete what a killed run left in `tmp/`, read the index and drop what does
   * not check out (a file without its meta, or of another size). Entries least recently used first.
   * @throws UserError when the directory cannot be used
   */
  async load(): Promise<Entry[]> {
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
    return found.map(({ entry }) => entry);
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

  /** Write an entry's meta file: to `tmp/` first, then renamed over the old one. */
  async writeMeta(e: Entry): Promise<void> {
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

  /** Delete a cached file and its meta; never rejects (what is already gone is fine). */
  remove(key: string): Promise<void> {
    return Promise.all([
      unlink(join(this.#files, `${key}.meta`)).catch(() => undefined),
      unlink(join(this.#files, key)).catch(() => undefined),
    ]).then(() => undefined);
  }
}
