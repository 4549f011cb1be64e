import { chown, lchown, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CounterSink } from '../core/counters.js';
import { UserError } from '../core/errors.js';
import type { Logger, PeerLog } from '../core/logger.js';
import { UpstreamCache, type CacheCounter } from '../files/cache.js';
import { Upstream } from '../files/upstream.js';
import type { UpstreamConfig } from './config.js';
import { lookupAccount, type Account } from './privileges.js';

/** The cache behind `--upstream`; it touches the disk only in `init()`, after the privilege drop. */
export function createUpstreamCache(
  u: UpstreamConfig,
  deps: { log: Logger; lines: PeerLog; counters: CounterSink<CacheCounter> },
): UpstreamCache {
  return new UpstreamCache({
    dir: u.cacheDir,
    maxBytes: u.cacheMaxBytes,
    ttlMs: u.cacheTtl * 1000,
    upstream: new Upstream(u.url),
    log: deps.log,
    lines: deps.lines,
    counters: deps.counters,
  });
}

function why(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message;
}

/**
 * Before the privilege drop: make the cache directory (and its `files/` and `tmp/`) and, when
 * started as root, give them to the account the daemon will run as, which must write there once
 * root is gone. Only these directories change owner, never a file in them: a file some earlier
 * account left is unreadable to the new one, and the cache drops it at `init()` (it owns the
 * directory). Without root, nothing is chowned; `init()` says when the directory cannot be used.
 * @throws UserError one line, naming the directory and the cause
 */
export async function prepareCacheDir(
  dir: string,
  user: string,
  o: { isRoot?: boolean; account?: (user: string) => Account } = {},
): Promise<void> {
  const isRoot = o.isRoot ?? process.getuid?.() === 0;
  const subdirs = [join(dir, 'files'), join(dir, 'tmp')];
  try {
    for (const d of [dir, ...subdirs]) await mkdir(d, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new UserError(`cache directory ${dir} cannot be created: ${why(err)} (choose another with --cache-dir)`);
  }
  if (!isRoot) return;
  const account = (o.account ?? lookupAccount)(user);
  try {
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    // The top directory is the administrator's choice (it may be a symlink); what is inside is not followed.
    await chown(dir, account.uid, account.gid);
    for (const d of subdirs) await lchown(d, account.uid, account.gid);
  } catch (err) {
    throw new UserError(`cache directory ${dir} cannot be given to user ${account.name}: ${why(err)}`);
  }
}
