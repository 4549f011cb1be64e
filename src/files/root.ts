import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { remapName, type NameContext, type RemapRule } from './remap.js';

/**
 * The one place that turns a name from the network into an open file. TFTP, HTTP, `--check` and
 * the upstream cache all go through `FileRoot`, so a name one of them serves is a name all of them
 * serve, and a name one refuses, all refuse.
 */

/** A file opened for one transfer: positional reads only, so many transfers share the page cache. */
export interface OpenFile {
  /** Path relative to the root, with `/` separators, as logged. */
  readonly name: string;
  readonly size: number;
  /** Last modification, for HTTP `Last-Modified`. */
  readonly mtime: Date;
  /**
   * The descriptor of a file complete on disk, for positional reads on another thread (TFTP's
   * transfer workers); absent for a file still arriving. Only the owner closes it, through `close`.
   */
  readonly fd?: number;
  /** Fill `buffers` in order from `position`; resolves with the bytes read (short at end of file). */
  readv(buffers: Buffer[], position: number): Promise<number>;
  /** Bytes `start`..`end` (inclusive) as a stream with backpressure; does not close the file. */
  stream(start: number, end: number): Readable;
  close(): Promise<void>;
  /** Set for a file from `--upstream`: `hit` when it came from the cache, `miss` when fetched for this request. */
  readonly cache?: 'hit' | 'miss';
  /**
   * True while the file is still arriving from upstream: reads wait for their bytes, so a reader
   * should ask for small pieces to get the first ones early (src/tftp/chunks.ts does).
   */
  readonly arriving?: boolean;
}

/**
 * Why a name was refused: the counter name and log field. Callers answer every one of them as
 * "not found" except `no-permission`, so a client cannot tell a name outside the root from a
 * missing one, and `upstream-error` (the upstream failed: TFTP "Upstream error", HTTP 502).
 */
export type Refusal = 'bad-name' | 'outside-root' | 'not-found' | 'not-a-file' | 'no-permission' | 'upstream-error';

export type OpenResult = { ok: true; file: OpenFile } | { ok: false; reason: Refusal };

export type CheckResult = { ok: true; size: number } | { ok: false; reason: Refusal };

/**
 * Where names missing from the root come from (`--upstream`: src/files/cache.ts). Names it gets are
 * already cleaned and joined with `/`. It refuses with `not-found` (the upstream has no such file)
 * or `upstream-error` (timeout, 5xx, TLS failure: "file not found" would be a lie).
 */
export interface FileSource {
  open(name: string): Promise<OpenResult>;
  /** Whether `name` would be served, without fetching it (a HEAD upstream). */
  check(name: string): Promise<CheckResult>;
}

// NUL and other control characters have no place in a file name and confuse logs and C libraries.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Longest name taken from a client: PATH_MAX. */
export const MAX_NAME_LENGTH = 4096;

/**
 * Turn a requested name into path components under the root, or null when it must be refused.
 * A leading `/` is stripped and `\` read as `/` (Windows-style clients ask `\boot\bcd`; dnsmasq does
 * the same); `..` and control characters (NUL included) are refused outright rather than
 * normalised away, so a name means one thing everywhere.
 */
export function cleanName(requested: string): string[] | null {
  if (requested.length > MAX_NAME_LENGTH || CONTROL.test(requested)) return null;
  const parts = requested
    .replaceAll('\\', '/')
    .split('/')
    .filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return null;
  return parts;
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

function errnoReason(err: unknown): Refusal {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'no-permission';
  // ELOOP: the last component became a symlink after the check (O_NOFOLLOW); ENXIO: a socket.
  if (code === 'ELOOP') return 'outside-root';
  return 'not-found';
}

/**
 * O_NOFOLLOW: a last component swapped for a symlink after the real-path check fails to open.
 * O_NONBLOCK: a FIFO opens at once instead of holding one of libuv's four file threads until a
 * writer appears; it is then refused as not a regular file without a single read.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function openFile(handle: FileHandle, name: string, size: number, mtime: Date): OpenFile {
  let closed: Promise<void> | null = null;
  return {
    name,
    size,
    mtime,
    fd: handle.fd,
    readv: async (buffers, position) => (await handle.readv(buffers, position)).bytesRead,
    stream: (start, end) => handle.createReadStream({ start, end, autoClose: false, emitClose: false }),
    close: () => (closed ??= handle.close().catch(() => undefined)),
  };
}

/** A directory that files are served from, read-only, with every name contained inside it. */
export class FileRoot {
  /** Absolute path, as configured (it may itself be a symlink). */
  readonly path: string;
  /** Names the root does not hold are asked of this (`--upstream`); the root wins. */
  readonly upstream: FileSource | undefined;

  /** @param path an absolute directory (the command line makes paths absolute when parsing) */
  constructor(path: string, upstream?: FileSource) {
    if (!isAbsolute(path)) throw new TypeError(`FileRoot needs an absolute path, got ${path}`);
    this.path = path;
    this.upstream = upstream;
  }

  /** `--remap` rules in force: a function, so a reload applies to the next request. */
  #remap: () => readonly RemapRule[] = () => [];

  /** Rewrite requested names with these rules before resolving them (`--remap`). */
  setRemap(rules: () => readonly RemapRule[]): this {
    this.#remap = rules;
    return this;
  }

  /** The name `requested` stands for after `--remap` (itself when no rule applies); not yet cleaned. */
  rename(requested: string, client?: NameContext): string {
    const rules = this.#remap();
    return rules.length === 0 ? requested : remapName(rules, requested, client).name;
  }

  /**
   * Open `requested` for reading, as `client` asks for it (for `--remap`; remapping comes first, and
   * its result is treated as any requested name). The name is cleaned (`cleanName`), its real path must lie inside
   * the root's real path, the open refuses a symlink in the last place and a FIFO cannot block it,
   * what was opened must be a regular file, and the descriptor's own path (/proc/self/fd) must still
   * lie inside the root: so a directory swapped for a symlink between the check and the open serves
   * nothing.
   */
  async open(requested: string, client?: NameContext): Promise<OpenResult> {
    const parts = cleanName(this.rename(requested, client));
    if (parts === null) return { ok: false, reason: 'bad-name' };
    if (parts.length === 0) return { ok: false, reason: 'not-a-file' };
    const local = await this.#openLocal(parts);
    // Only a name missing here goes upstream: one refused for any other reason stays refused.
    if (local.ok || local.reason !== 'not-found' || !this.upstream) return local;
    return this.upstream.open(parts.join('/'));
  }

  async #openLocal(parts: string[]): Promise<OpenResult> {
    let root: string;
    let real: string;
    try {
      root = await realpath(this.path);
      real = await realpath(join(root, ...parts));
    } catch (err) {
      return { ok: false, reason: errnoReason(err) };
    }
    if (!inside(root, real)) return { ok: false, reason: 'outside-root' };
    let handle: FileHandle;
    try {
      handle = await open(real, OPEN_FLAGS);
    } catch (err) {
      return { ok: false, reason: errnoReason(err) };
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { refusal: 'not-a-file' });
      const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => real);
      if (!inside(root, opened)) throw Object.assign(new Error('escaped'), { refusal: 'outside-root' });
      return { ok: true, file: openFile(handle, parts.join('/'), st.size, st.mtime) };
    } catch (err) {
      await handle.close().catch(() => undefined);
      const refusal = (err as { refusal?: Refusal }).refusal;
      return { ok: false, reason: refusal ?? errnoReason(err) };
    }
  }

  /** Whether `requested` would be served, with the reason when not (`--check`, start-up warnings). */
  async check(requested: string, client?: NameContext): Promise<CheckResult> {
    const parts = cleanName(this.rename(requested, client));
    if (parts === null) return { ok: false, reason: 'bad-name' };
    if (parts.length === 0) return { ok: false, reason: 'not-a-file' };
    // Upstream, a HEAD (or the cache's entry): checking never downloads.
    const r = await this.#openLocal(parts);
    if (!r.ok) return r.reason === 'not-found' && this.upstream ? this.upstream.check(parts.join('/')) : r;
    const { size } = r.file;
    await r.file.close();
    return { ok: true, size };
  }
}

/** Names that are URLs (iPXE `http://…`) are fetched from elsewhere, not from a root. */
export function isUrl(name: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(name);
}
