/**
 * --upstream on loopback: our TFTP and HTTP servers over an empty local root, a cache, and a local
 * node:http mirror that can be slow, missing, failing, dead or cut off mid-file.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UpstreamCache } from '../../src/files/cache.js';
import { FileRoot, type FileSource } from '../../src/files/root.js';
import { Upstream } from '../../src/files/upstream.js';
import { HttpServer } from '../../src/http/server.js';
import type { TftpServer } from '../../src/tftp/server.js';
import { MemoryLogger } from '../helpers/log.js';
import { pattern, startTestTftp } from '../helpers/tftp.js';
import { timedTftpGet, type TimedTftp } from '../helpers/tftp-timed.js';
import { FakeUpstream } from '../helpers/upstream.js';

/** A lockstep TFTP read from our server on loopback (test/helpers/tftp-timed.ts). */
const tftpGet = (port: number, name: string): Promise<TimedTftp> => timedTftpGet('127.0.0.1', name, port);

interface HttpGot {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  complete: boolean;
  firstByteMs: number;
  ms: number;
}

function httpGet(port: number, path: string): Promise<HttpGot> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let firstByteMs = -1;
      res.on('data', (c: Buffer) => {
        if (firstByteMs < 0) firstByteMs = performance.now() - t0;
        chunks.push(c);
      });
      const done = (complete: boolean): void =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks),
          complete,
          firstByteMs,
          ms: performance.now() - t0,
        });
      res.on('end', () => done(true));
      res.on('error', () => done(false));
      res.on('aborted', () => done(false));
    }).on('error', reject);
  });
}

function assertData(r: TimedTftp, want: Buffer): asserts r is Extract<TimedTftp, { ok: true }> {
  assert.ok(r.ok, r.ok ? '' : `TFTP error ${r.code} ${r.message}`);
  assert.equal(r.data.length, want.length);
  assert.ok(r.data.equals(want), 'the bytes differ');
}

describe('--upstream: TFTP and HTTP over an empty local root (loopback)', () => {
  const base = mkdtempSync(join(tmpdir(), 'upstream-loopback-'));
  const rootDir = join(base, 'root');
  const cacheDir = join(base, 'cache');
  const MAX = 4 * 1024 * 1024;
  const log = new MemoryLogger('info');
  let mirror: FakeUpstream;
  let cache: UpstreamCache;
  /** The source behind both roots; a test may swap in another cache (a dead upstream). */
  let current: FileSource;
  let tftp: TftpServer;
  let http: HttpServer;
  let tftpPort: number;
  let httpPort: number;
  const caches: UpstreamCache[] = [];

  const newCache = (url: string): UpstreamCache => {
    const c = new UpstreamCache({
      dir: cacheDir,
      maxBytes: MAX,
      ttlMs: 60_000,
      upstream: new Upstream(url, { headersTimeoutMs: 2000 }),
      log,
    });
    caches.push(c);
    return c;
  };
  const cached = (): string[] => readdirSync(join(cacheDir, 'files')).filter((f) => !f.endsWith('.meta'));
  const cachedBytes = (): number => cached().reduce((n, f) => n + statSync(join(cacheDir, 'files', f)).size, 0);
  const parts = (): string[] => readdirSync(join(cacheDir, 'tmp'));

  before(async () => {
    mirror = await FakeUpstream.start();
    cache = newCache(mirror.url);
    await cache.init();
    current = cache;
    const source: FileSource = { open: (n) => current.open(n), check: (n) => current.check(n) };
    mkdirSync(rootDir);
    writeFileSync(join(rootDir, 'local.bin'), 'from the local root\n');
    const root = new FileRoot(rootDir, source);
    ({ server: tftp } = await startTestTftp({
      root: rootDir,
      listen: [{ address: '127.0.0.1', port: 0, transferAddress: '127.0.0.1', mtu: 1500 }],
      maxTransfers: 64,
      idleTimeoutMs: 10_000,
      log,
      extra: { root },
    }));
    tftpPort = tftp.ports[0]!;
    http = await HttpServer.start({ root, listen: [{ address: '127.0.0.1', port: 0 }], log });
    httpPort = http.ports[0]!;
  });

  after(async () => {
    await tftp.close();
    await http.close();
    for (const c of caches) await c.close();
    await mirror.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('a slow mirror: the first TFTP block arrives long before the upstream ends; tsize is its length', async () => {
    const body = pattern(600_000, 1);
    mirror.files.set('/debian-installer/amd64/linux', { body, rate: 400_000, slice: 8192 }); // 1.5 s
    const r = await tftpGet(tftpPort, 'debian-installer/amd64/linux');
    assertData(r, body);
    assert.equal(r.tsize, body.length);
    assert.ok(r.ms > 1200, `the whole file took ${r.ms} ms`);
    assert.ok(r.firstDataMs < r.ms / 4, `first block after ${r.firstDataMs} ms of ${r.ms}`);
  });

  it('the second fetch is a hit, over TFTP and over HTTP (X-Cache: hit)', async () => {
    const body = mirror.files.get('/debian-installer/amd64/linux')!.body;
    await log.waitFor((l) => l.message === 'upstream download complete');
    const r = await tftpGet(tftpPort, 'debian-installer/amd64/linux');
    assertData(r, body);
    const h = await httpGet(httpPort, '/debian-installer/amd64/linux');
    assert.equal(h.status, 200);
    assert.equal(h.headers['x-cache'], 'hit');
    assert.ok(h.body.equals(body));
    assert.equal(mirror.count('/debian-installer/amd64/linux'), 1);
  });

  it('HTTP streams a first fetch too: the first bytes long before the end, X-Cache: miss', async () => {
    const body = pattern(400_000, 2);
    mirror.files.set('/initrd.gz', { body, rate: 400_000, slice: 8192 });
    const h = await httpGet(httpPort, '/initrd.gz');
    assert.equal(h.status, 200);
    assert.equal(h.headers['x-cache'], 'miss');
    assert.equal(Number(h.headers['content-length']), body.length);
    assert.ok(h.body.equals(body));
    assert.ok(h.firstByteMs < h.ms / 4, `first byte after ${h.firstByteMs} ms of ${h.ms}`);
  });

  it('10 TFTP clients and an HTTP client at once: one upstream request', async () => {
    const body = pattern(500_000, 3);
    mirror.files.set('/shared.img', { body, rate: 1_000_000 });
    const [h, ...t] = await Promise.all([
      httpGet(httpPort, '/shared.img'),
      ...Array.from({ length: 10 }, () => tftpGet(tftpPort, 'shared.img')),
    ]);
    for (const r of t) assertData(r, body);
    assert.ok(h.body.equals(body));
    assert.equal(mirror.count('/shared.img'), 1);
  });

  it('the local root wins', async () => {
    mirror.files.set('/local.bin', { body: Buffer.from('from the mirror\n') });
    const r = await tftpGet(tftpPort, 'local.bin');
    assertData(r, Buffer.from('from the local root\n'));
    const h = await httpGet(httpPort, '/local.bin');
    assert.equal(h.headers['x-cache'], undefined);
    assert.equal(mirror.count('/local.bin'), 0);
  });

  it('404 upstream: TFTP error 1 "File not found", HTTP 404', async () => {
    const r = await tftpGet(tftpPort, 'pxelinux.cfg/01-52-54-00-12-34-56');
    assert.deepEqual(r.ok ? r : { code: r.code, message: r.message }, { code: 1, message: 'File not found' });
    assert.equal((await httpGet(httpPort, '/pxelinux.cfg/01-52-54-00-12-34-56')).status, 404);
  });

  it('a mirror answering 503: TFTP error 0 "Upstream error", HTTP 502, one log line for the URL', async () => {
    mirror.files.set('/busy.efi', { body: Buffer.alloc(0), status: 503 });
    const r = await tftpGet(tftpPort, 'busy.efi');
    assert.deepEqual(r.ok ? r : { code: r.code, message: r.message }, { code: 0, message: 'Upstream error' });
    assert.equal((await httpGet(httpPort, '/busy.efi')).status, 502);
    await tftpGet(tftpPort, 'busy.efi');
    const lines = log.lines.filter((l) => l.message === 'upstream error' && String(l.url).endsWith('/busy.efi'));
    assert.equal(lines.length, 1);
    assert.match(String(lines[0]!.error), /HTTP 503/);
  });

  it('a dead mirror: TFTP error 0, HTTP 502, "connection refused" logged once', async () => {
    const dead = newCache('http://127.0.0.1:1/');
    current = dead;
    try {
      const r = await tftpGet(tftpPort, 'ipxe.efi');
      assert.deepEqual(r.ok ? r : { code: r.code, message: r.message }, { code: 0, message: 'Upstream error' });
      assert.equal((await httpGet(httpPort, '/ipxe.efi')).status, 502);
      const lines = log.lines.filter((l) => l.message === 'upstream error' && String(l.url).endsWith(':1/ipxe.efi'));
      assert.equal(lines.length, 1);
      assert.match(String(lines[0]!.error), /connection refused by 127\.0\.0\.1:1$/);
    } finally {
      current = cache;
    }
  });

  it('a download killed mid-way: TFTP gets an ERROR, HTTP a cut response, nothing is kept; the next one is whole', async () => {
    const body = pattern(800_000, 4);
    mirror.files.set('/killed.bin', { body, rate: 800_000, cutAfter: 300_000 });
    const [t, h] = await Promise.all([tftpGet(tftpPort, 'killed.bin'), httpGet(httpPort, '/killed.bin')]);
    assert.equal(t.ok, false, 'the TFTP client must not get the file');
    assert.ok(!t.ok && t.code === 0, JSON.stringify(t));
    assert.equal(h.complete, false, 'the HTTP response must be cut');
    assert.ok(h.body.length < body.length);
    assert.ok(!cached().some((f) => statSync(join(cacheDir, 'files', f)).size === 300_000));
    assert.deepEqual(parts(), []);
    assert.equal(cache.names.includes('killed.bin'), false);
    mirror.files.set('/killed.bin', { body });
    assertData(await tftpGet(tftpPort, 'killed.bin'), body);
    assert.equal(mirror.count('/killed.bin'), 2);
  });

  it(`the cache stays under its size (${MAX} bytes) while files come and go`, async () => {
    for (let i = 0; i < 6; i++) {
      const body = pattern(1024 * 1024, 10 + i);
      mirror.files.set(`/big${i}.img`, { body });
      assertData(await tftpGet(tftpPort, `big${i}.img`), body);
      await log.waitFor((l) => l.message === 'upstream download complete' && String(l.url).endsWith(`/big${i}.img`));
      assert.ok(cache.size <= MAX, `index says ${cache.size}`);
      for (let w = 0; w < 100 && cachedBytes() > MAX; w++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cachedBytes() <= MAX, `${cachedBytes()} bytes on disk`);
    }
    assert.ok(cache.names.includes('big5.img'));
    assert.equal(cache.names.includes('big0.img'), false, 'the least recently used went first');
  });
});
