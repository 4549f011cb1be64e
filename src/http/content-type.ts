import { posix } from 'node:path';

/**
 * Content-Type of a served file, from its name. Boot firmware ignores it, but curl, wget, browsers
 * and installers show or check it. Anything not listed is `application/octet-stream`.
 */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  // Network boot programs and boot-loader modules.
  '.efi': 'application/octet-stream',
  '.kpxe': 'application/octet-stream',
  '.kkpxe': 'application/octet-stream',
  '.pxe': 'application/octet-stream',
  '.lkrn': 'application/octet-stream',
  '.0': 'application/octet-stream',
  '.c32': 'application/octet-stream',
  '.e32': 'application/octet-stream',
  '.e64': 'application/octet-stream',
  '.img': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  // Scripts and configs: text, so a person can read them in a browser.
  '.ipxe': 'text/plain; charset=utf-8',
  '.cfg': 'text/plain; charset=utf-8',
  '.conf': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.seed': 'text/plain; charset=utf-8',
  '.preseed': 'text/plain; charset=utf-8',
  '.ks': 'text/plain; charset=utf-8',
  '.sh': 'text/plain; charset=utf-8',
  '.yaml': 'text/plain; charset=utf-8',
  '.yml': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  // Images and archives.
  '.iso': 'application/x-iso9660-image',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.xz': 'application/x-xz',
  '.zst': 'application/zstd',
  '.bz2': 'application/x-bzip2',
  '.cpio': 'application/x-cpio',
  '.tar': 'application/x-tar',
  '.squashfs': 'application/octet-stream',
  '.sig': 'application/pgp-signature',
  '.asc': 'application/pgp-signature',
};

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** The Content-Type for a file name (`vmlinuz`, `initrd.img-6.1`, `linux` are octet-stream). */
export function contentTypeOf(name: string): string {
  const ext = posix.extname(name).toLowerCase();
  return BY_EXTENSION[ext] ?? DEFAULT_CONTENT_TYPE;
}
