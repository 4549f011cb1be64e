import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { UserError } from '../../../src/core/errors.js';
import { UpstreamCache, type CacheOptions } from '../../../src/files/cache.js';
import type { OpenFile, OpenResult } from '../../../src/files/root.js';
import { Upstream } from '../../../src/files/upstream.js';
import { MemoryLogger } from '../../helpers/log.js';
import { pattern } from '../../helpers/tftp.js';
import { FakeUpstream } from '../../helpers/upstream.js';

function opened(r: OpenResult): OpenFile {
  assert.ok(r.ok, `refused: ${r.ok ? '' : r.reason}`);
  return r.file;
}

async function readAll(f: OpenFile): Promise<Buffer> {
  const buf = Buffer.alloc(f.size);
  let at = 0;
  while (at < f.size) {
    const n = await f.readv([buf.subarray(at, Math.min(f.size, at + 7000))], at);
    assert.ok(n > 0);
    at += n;
  }
  return buf;
}

async function streamAll(f: OpenFile, start = 0, end = f.size - 1): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of f.stream(start, end)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('the upstream cache', () => {
  let mirror: FakeUpstream;
  let dir: string;
  let log: MemoryLogger;
  let clock: number;
  const caches: UpstreamCache[] = [];

  function cache(o: Partial<CacheOptions> = {}): UpstreamCache {
    const c = new UpstreamCache({
      dir,
      maxBytes: 1 << 20,
      ttlMs: 60_000,
      upstream: new Upstream(mirror.url, { headersTimeoutMs: 500 }),
      log,
      now: () => clock,
      ...o,
    });
    caches.push(c);
    return c;
  }

  const onDisk = (sub: 'files' | 'tmp'): string[] => readdirSync(join(dir, sub)).sort();
  const dataBytes = (): number =>
    onDisk('files')
      .filter((f) => !f.endsWith('.meta'))
      .reduce((n, f) => n + statSync(join(dir, 'files', f)).size, 0);

  before(async () => {
    mirror = await FakeUpstream.start();
  });
  after(async () => {
    await mirror.close();
  });
  beforeEach(async () => {
    for (const c of caches.splice(0)) await c.close();
    dir = mkdtempSync(join(tmpdir(), 'upstream-cache-'));
    log = new MemoryLogger('debug');
    clock = 1_000_000;
    mirror.files.clear();
    mirror.requests.length = 0;
  });

  it('a miss is fetched once, renamed into the cache when whole, then served as a hit', async () => {
    const body = pattern(100_000, 3);
    mirror.files.set('/d/pxelinux.0', { body, etag: '"v1"' });
    const c = cache();
    const first = opened(await c.open('d/pxelinux.0'));
    assert.equal(first.cache, 'miss');
    assert.equal(first.size, body.length);
    assert.deepEqual(await readAll(first), body);
    await first.close();
    await log.waitFor((l) => l.message === 'upstream download complete');
    assert.deepEqual(onDisk('tmp'), []);
    assert.equal(onDisk('files').length, 2, 'the file and its meta');
    const second = opened(await c.open('d/pxelinux.0'));
    assert.equal(second.cache, 'hit');
    assert.deepEqual(await streamAll(second), body);
    await second.close();
    assert.equal(mirror.count('/d/pxelinux.0'), 1);
    assert.equal(c.size, body.length);
  });

  it('the first reader gets its bytes long before a slow download ends, through readv and stream', async () => {
    const body = pattern(200_000, 4);
    mirror.files.set('/slow', { body, rate: 200_000, slice: 8192 }); // about 1 s
    const c = cache();
    const t0 = performance.now();
    const f = opened(await c.open('slow'));
    assert.equal(f.size, body.length, 'the size is the upstream Content-Length');
    assert.equal(f.arriving, true);
    const head = Buffer.alloc(4096);
    assert.equal(await f.readv([head], 0), 4096);
    const firstBytes = performance.now() - t0;
    assert.deepEqual(head, body.subarray(0, 4096));
    const streamed = await streamAll(f, 10, body.length - 1);
    const whole = performance.now() - t0;
    assert.deepEqual(streamed, body.subarray(10));
    assert.ok(firstBytes < whole / 4, `first bytes after ${firstBytes} ms, whole file after ${whole} ms`);
    await f.close();
  });

  it('10 requests for a file being fetched share one download', async () => {
    const body = pattern(300_000, 5);
    mirror.files.set('/shared', { body, rate: 1_000_000 });
    const c = cache();
    const files = (await Promise.all(Array.from({ length: 10 }, () => c.open('shared')))).map(opened);
    const got = await Promise.all(files.map(readAll));
    for (const g of got) assert.deepEqual(g, body);
    await Promise.all(files.map((f) => f.close()));
    assert.equal(mirror.count('/shared'), 1);
  });

  it('a download cut mid-way fails its readers and leaves nothing in the cache; the next request fetches again', async () => {
    const body = pattern(200_000, 6);
    mirror.files.set('/cut', { body, rate: 2_000_000, cutAfter: 120_000 });
    const c = cache();
    const f = opened(await c.open('cut'));
    await assert.rejects(readAll(f));
    await assert.rejects(streamAll(f));
    await f.close();
    assert.deepEqual(onDisk('files'), []);
    assert.deepEqual(onDisk('tmp'), []);
    const warn = await log.waitFor((l) => l.message === 'upstream download failed');
    assert.match(String(warn.error), /mid-file|reset|aborted/);
    mirror.files.set('/cut', { body });
    const again = opened(await c.open('cut'));
    assert.deepEqual(await readAll(again), body);
    await again.close();
    assert.equal(mirror.count('/cut'), 2);
  });

  it('without a Content-Length the open waits for the whole file', async () => {
    const body = pattern(50_000, 7);
    mirror.files.set('/chunked', { body, noLength: true });
    const c = cache();
    const f = opened(await c.open('chunked'));
    assert.equal(f.size, body.length);
    assert.equal(f.arriving, undefined);
    assert.deepEqual(await readAll(f), body);
    await f.close();
  });

  it('least recently used files go first, and the cache stays under its size', async () => {
    for (const n of ['a', 'b', 'c', 'd']) mirror.files.set(`/${n}`, { body: pattern(1000, n.charCodeAt(0)) });
    const c = cache({ maxBytes: 3000 });
    for (const n of ['a', 'b', 'c']) {
      await opened(await c.open(n)).close();
      await log.waitFor(() => c.names.includes(n)); // in this order
    }
    await opened(await c.open('a')).close(); // a is now the most recently used
    await opened(await c.open('d')).close();
    await log.waitFor((l) => l.message === 'upstream download complete' && String(l.url).endsWith('/d'));
    assert.deepEqual(c.names, ['c', 'a', 'd']);
    assert.ok(c.size <= 3000);
    // Removal is asynchronous; wait until the disk agrees.
    for (let i = 0; i < 100 && dataBytes() > 3000; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dataBytes(), 3000);
  });

  it('a file larger than the cache is refused as an upstream error, and nothing is kept', async () => {
    mirror.files.set('/huge', { body: pattern(5000, 8) });
    const c = cache({ maxBytes: 4096 });
    const r = await c.open('huge');
    assert.deepEqual(r, { ok: false, reason: 'upstream-error' });
    assert.deepEqual(onDisk('files'), []);
    const w = await log.waitFor((l) => l.message === 'upstream error');
    assert.match(String(w.error), /larger \(5000 bytes\) than the cache/);
  });

  it('after the TTL: revalidated with If-None-Match (304 keeps it), a changed file is fetched anew', async () => {
    mirror.files.set('/cfg', { body: Buffer.from('v1\n'), etag: '"1"' });
    const c = cache({ ttlMs: 1000 });
    await opened(await c.open('cfg')).close();
    await log.waitFor(() => c.names.length === 1);
    clock += 2000;
    const hit = opened(await c.open('cfg'));
    assert.equal(hit.cache, 'hit');
    await hit.close();
    const conditional = mirror.requests.at(-1)!;
    assert.equal(conditional.headers['if-none-match'], '"1"');
    assert.equal(c.counters instanceof Object, true);
    clock += 500; // fresh again: no request
    await opened(await c.open('cfg')).close();
    assert.equal(mirror.requests.length, 2);
    clock += 2000;
    mirror.files.set('/cfg', { body: Buffer.from('version 2\n'), etag: '"2"' });
    const changed = opened(await c.open('cfg'));
    assert.equal(changed.cache, 'miss');
    assert.equal((await readAll(changed)).toString(), 'version 2\n');
    await changed.close();
    await log.waitFor(() => c.size === 10);
  });

  it('revalidation with If-Modified-Since when the upstream gives only a date', async () => {
    const date = 'Wed, 02 Apr 2025 08:00:00 GMT';
    mirror.files.set('/dated', { body: Buffer.from('x'), lastModified: date });
    const c = cache({ ttlMs: 1000 });
    const f = opened(await c.open('dated'));
    assert.equal(f.mtime.toUTCString(), date);
    await f.close();
    await log.waitFor(() => c.names.length === 1);
    clock += 2000;
    await opened(await c.open('dated')).close();
    assert.equal(mirror.requests.at(-1)!.headers['if-modified-since'], date);
    assert.equal(mirror.count('/dated'), 2);
  });

  it('a mirror that is down: the stale copy is served, with one warning', async () => {
    const body = Buffer.from('cached kernel');
    mirror.files.set('/k', { body, etag: '"k"' });
    const c = cache({ ttlMs: 1000, downHoldMs: 0 });
    await opened(await c.open('k')).close();
    await log.waitFor(() => c.names.length === 1);
    mirror.files.set('/k', { body, status: 503 });
    for (let i = 0; i < 3; i++) {
      clock += 2000;
      const f = opened(await c.open('k'));
      assert.deepEqual(await readAll(f), body);
      await f.close();
    }
    const warnings = log.lines.filter((l) => l.message === 'upstream unreachable: serving the cached copy');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.error), /HTTP 503/);
  });

  it('404: not found, remembered for a while; a cached file the upstream dropped is removed', async () => {
    const c = cache({ ttlMs: 1000 });
    assert.deepEqual(await c.open('pxelinux.cfg/01-52-54-00-00-00-01'), { ok: false, reason: 'not-found' });
    assert.deepEqual(await c.open('pxelinux.cfg/01-52-54-00-00-00-01'), { ok: false, reason: 'not-found' });
    assert.equal(mirror.requests.length, 1, 'the second 404 came from memory');
    mirror.files.set('/gone', { body: Buffer.from('soon gone') });
    await opened(await c.open('gone')).close();
    await log.waitFor(() => c.names.length === 1);
    mirror.files.delete('/gone');
    clock += 2000;
    assert.deepEqual(await c.open('gone'), { ok: false, reason: 'not-found' });
    assert.deepEqual(c.names, []);
  });

  it('an upstream error without a cached copy is an upstream-error refusal, logged once per URL', async () => {
    mirror.files.set('/busy', { body: Buffer.alloc(0), status: 502 });
    const c = cache();
    for (let i = 0; i < 3; i++) assert.deepEqual(await c.open('busy'), { ok: false, reason: 'upstream-error' });
    assert.equal(mirror.count('/busy'), 3);
    assert.equal(log.lines.filter((l) => l.message === 'upstream error').length, 1);
  });

  it('a restart keeps whole files and drops partial, orphaned and mismatched ones', async () => {
    mirror.files.set('/keep', { body: pattern(2000, 9) });
    mirror.files.set('/spoil', { body: pattern(3000, 10) });
    const c1 = cache();
    await opened(await c1.open('keep')).close();
    await opened(await c1.open('spoil')).close();
    await log.waitFor(() => c1.names.length === 2);
    await c1.close();
    // What a killed run or a hand may leave: a partial download, a file without meta, a truncated file.
    writeFileSync(join(dir, 'tmp', 'abc.part'), 'partial');
    writeFileSync(join(dir, 'files', 'orphan'), 'no meta');
    const spoiled = onDisk('files').find((f) => !f.endsWith('.meta') && statSync(join(dir, 'files', f)).size === 3000)!;
    writeFileSync(join(dir, 'files', spoiled), 'short');
    mirror.requests.length = 0;
    const c2 = cache();
    await c2.init();
    assert.deepEqual(c2.names, ['keep']);
    assert.deepEqual(onDisk('tmp'), []);
    assert.equal(onDisk('files').length, 2);
    const f = opened(await c2.open('keep'));
    assert.equal(f.cache, 'hit');
    await f.close();
    assert.equal(mirror.requests.length, 0);
  });

  it('a cache directory that cannot be used is one clear error', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const c = cache({ dir: join(file, 'cache') });
    await assert.rejects(c.init(), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /^cache directory .*not-a-dir\/cache cannot be used.*ENOTDIR/);
      return true;
    });
    assert.deepEqual(await c.open('x'), { ok: false, reason: 'upstream-error' });
  });

  it('check() asks with HEAD and downloads nothing', async () => {
    mirror.files.set('/h', { body: pattern(777, 11) });
    const c = cache();
    assert.deepEqual(await c.check('h'), { ok: true, size: 777 });
    assert.deepEqual(await c.check('nope'), { ok: false, reason: 'not-found' });
    assert.equal(mirror.count('/h'), 0);
    assert.equal(mirror.count('/h', 'HEAD'), 1);
    mkdirSync(join(dir, 'x'), { recursive: true });
  });

  after(async () => {
    for (const c of caches.splice(0)) await c.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
