import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Logger } from '../core/logger.js';
import { TftpErrorCode } from '../wire/tftp-packet.js';

/** A file opened for one transfer: positional reads only, so many transfers share the page cache. */
export interface OpenFile {
  /** Path relative to the root, as logged. */
  name: string;
  size: number;
  /** Fill `buffers` in order from `position`; resolves with the bytes read (short at end of file). */
  readv(buffers: Buffer[], position: number): Promise<number>;
  close(): Promise<void>;
}

/** Why a name was refused, with the ERROR code the client gets (RFC 1350 appendix). */
export interface Refusal {
  code: typeof TftpErrorCode.FILE_NOT_FOUND | typeof TftpErrorCode.ACCESS_VIOLATION;
  /** Kebab-case reason: the counter name and log field. */
  reason: 'bad-name' | 'outside-root' | 'not-found' | 'not-a-file' | 'no-permission';
  message: string;
}

export type OpenResult = { ok: true; file: OpenFile } | { ok: false; refusal: Refusal };

// NUL and other control characters have no place in a file name and confuse logs and C libraries.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function refuse(reason: Refusal['reason']): { ok: false; refusal: Refusal } {
  const notFound = reason === 'not-found' || reason === 'not-a-file';
  return {
    ok: false,
    refusal: {
      code: notFound ? TftpErrorCode.FILE_NOT_FOUND : TftpErrorCode.ACCESS_VIOLATION,
      reason,
      message: notFound ? 'File not found' : 'Access violation',
    },
  };
}

/**
 * Turn a requested name into path components under the root, or null when it must be refused.
 * A leading `/` is stripped and `\` read as `/` (Windows-style clients; dnsmasq does the same);
 * `..` and control characters (NUL included) are refused outright rather than normalised away.
 */
export function cleanName(requested: string): string[] | null {
  if (CONTROL.test(requested)) return null;
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

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * Open a requested file inside `root` (itself already a real path) for reading. The real path is
 * checked, so a symlink that leads out of the root is refused (ERROR 2), and a missing file gets
 * ERROR 1 at once, since pxelinux and UEFI probe many names.
 */
export async function openInRoot(root: string, requested: string): Promise<OpenResult> {
  const parts = cleanName(requested);
  if (parts === null) return refuse('bad-name');
  if (parts.length === 0) return refuse('not-a-file');
  let real: string;
  try {
    real = await realpath(join(root, ...parts));
  } catch (err) {
    return refuse(errno(err) === 'EACCES' ? 'no-permission' : 'not-found');
  }
  if (!inside(root, real)) return refuse('outside-root');
  let handle: FileHandle;
  try {
    handle = await open(real, 'r');
  } catch (err) {
    return refuse(errno(err) === 'EACCES' ? 'no-permission' : 'not-found');
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    return refuse('not-a-file');
  }
  return {
    ok: true,
    file: {
      name: parts.join('/'),
      size: st.size,
      readv: async (buffers, position) => (await handle.readv(buffers, position)).bytesRead,
      close: () => handle.close(),
    },
  };
}

/**
 * RFC 764 netascii as RFC 1350 uses it: LF → CR LF, CR → CR NUL. Only text files travel this way,
 * so the converted copy is built in memory.
 */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (const b of data) if (b === 0x0a || b === 0x0d) extra++;
  const out = Buffer.allocUnsafe(data.length + extra);
  let j = 0;
  for (const b of data) {
    if (b === 0x0a) {
      out[j++] = 0x0d;
      out[j++] = 0x0a;
    } else if (b === 0x0d) {
      out[j++] = 0x0d;
      out[j++] = 0x00;
    } else out[j++] = b;
  }
  return out;
}

/** Serve a Buffer as an OpenFile (the netascii copy). */
export function memoryFile(name: string, data: Buffer): OpenFile {
  return {
    name,
    size: data.length,
    readv: (buffers, position) => {
      let pos = position;
      for (const b of buffers) {
        if (pos >= data.length) break;
        pos += data.copy(b, 0, pos);
      }
      return Promise.resolve(pos - position);
    },
    close: () => Promise.resolve(),
  };
}

/** Names that are URLs (iPXE `http://…`) are fetched from elsewhere, not from our root. */
function isUrl(name: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(name);
}

/**
 * Warn, once per name, about boot files that a client would ask for and not find in the root.
 * Returns the names found missing (for tests). Never throws.
 */
export async function warnMissingBootFiles(root: string, files: readonly string[], log: Logger): Promise<string[]> {
  let realRoot: string;
  try {
    realRoot = await realpath(root);
    if (!(await stat(realRoot)).isDirectory()) throw new Error('not a directory');
  } catch {
    log.warn('TFTP root is not a readable directory', { root });
    return [...new Set(files.filter((f) => !isUrl(f)))];
  }
  const missing: string[] = [];
  for (const name of new Set(files)) {
    if (isUrl(name)) continue;
    const r = await openInRoot(realRoot, name);
    if (r.ok) await r.file.close();
    else {
      missing.push(name);
      log.warn('boot file is not in the TFTP root', { file: name, root, reason: r.refusal.reason });
    }
  }
  return missing;
}
