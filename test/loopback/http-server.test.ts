import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, get, request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Counters } from '../../src/core/counters.js';
import { FileRoot } from '../../src/files/root.js';
import { HttpServer, type HttpCounter, type HttpLimits } from '../../src/http/server.js';
import type { BootPolicy } from '../../src/pxe/boot.js';
import { parseRule } from '../../src/pxe/rules.js';
import { MemoryLogger } from '../helpers/log.js';
import { pattern } from '../helpers/tftp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const SECRET = Buffer.from('TOPSECRET-outside-the-root-0123456789');
const BIG = pattern(3 * 1024 * 1024 + 17, 7);
const SMALL = Buffer.from('#!ipxe\necho hello from the HTTP root\n');

const base = mkdtempSync(join(tmpdir(), 'http-root-'));
const rootDir = join(base, 'root');
const outside = join(base, 'outside');
mkdirSync(rootDir);
mkdirSync(outside);
writeFileSync(join(base, 'secret'), SECRET);
writeFileSync(join(outside, 'secret'), SECRET);
writeFileSync(join(rootDir, 'big.bin'), BIG);
writeFileSync(join(rootDir, 'boot.ipxe'), SMALL);
writeFileSync(join(rootDir, 'empty'), '');
mkdirSync(join(rootDir, 'dir'));
writeFileSync(join(rootDir, 'dir', 'inner.txt'), 'inner\n');
symlinkSync(join(base, 'secret'), join(rootDir, 'escape'));
symlinkSync(outside, join(rootDir, 'out'));
symlinkSync('big.bin', join(rootDir, 'inside-link'));

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  reused: boolean;
}

function fetch(
  port: number,
  path: string,
  o: { method?: string; headers?: Record<string, string>; agent?: Agent } = {},
) {
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers, agent: o.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(chunks),
            reused: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Send raw bytes on a fresh connection and collect everything until the server closes it. */
function raw(port: number, text: string, localAddress = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => s.write(text));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('raw request timed out')));
  });
}

const statusOf = (response: Buffer): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response.toString('latin1'))?.[1]);

const policy: BootPolicy = {
  efiMode: 'binl',
  defaultFile: 'undionly.kpxe',
  rules: [
    parseRule('mac=52:54:00:00:00:01,kernel=debian/linux,initrd=debian/initrd.gz,cmdline=console=ttyS0,115200 auto'),
    parseRule('user-class=iPXE,file=boot.ipxe'),
  ],
  deny: [],
  allow: [],
};

describe('the HTTP server on loopback', () => {
  let server: HttpServer;
  let port: number;
  const log = new MemoryLogger('debug');
  const counters = new Counters<HttpCounter>();

  before(async () => {
    server = await HttpServer.start({
      root: new FileRoot(rootDir),
      listen: [{ address: '127.0.0.1', port: 0 }],
      log,
      counters,
      policy: () => policy,
    });
    port = server.ports[0]!;
  });
  after(async () => {
    await server.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('GET: the file with its length, type and date', async () => {
    const r = await fetch(port, '/boot.ipxe');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, SMALL);
    assert.equal(r.headers['content-length'], String(SMALL.length));
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.ok(Date.parse(r.headers['last-modified']!) > 0);
    const big = await fetch(port, '/big.bin');
    assert.equal(big.headers['content-type'], 'application/octet-stream');
    assert.equal(sha(big.body), sha(BIG));
    const empty = await fetch(port, '/empty');
    assert.equal(empty.status, 200);
    assert.equal(empty.body.length, 0);
    assert.equal((await fetch(port, '/inside-link')).body.length, BIG.length, 'a symlink inside the root is served');
    assert.deepEqual((await fetch(port, '/dir/inner.txt')).body, Buffer.from('inner\n'));
  });

  it('HEAD: the headers and no body', async () => {
    const r = await fetch(port, '/big.bin', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(BIG.length));
    assert.equal(r.body.length, 0);
  });

  it('If-Modified-Since: 304 when unchanged, 200 when older', async () => {
    const first = await fetch(port, '/boot.ipxe');
    const lm = first.headers['last-modified']!;
    const r = await fetch(port, '/boot.ipxe', { headers: { 'If-Modified-Since': lm } });
    assert.equal(r.status, 304);
    assert.equal(r.body.length, 0);
    const old = await fetch(port, '/boot.ipxe', { headers: { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:01 GMT' } });
    assert.equal(old.status, 200);
    const junk = await fetch(port, '/boot.ipxe', { headers: { 'If-Modified-Since': 'yesterday' } });
    assert.equal(junk.status, 200);
  });

  it('Range: 206 for one range, 416 when unsatisfiable, the whole file for several', async () => {
    const r = await fetch(port, '/big.bin', { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-1999/${BIG.length}`);
    assert.equal(r.headers['content-length'], '1000');
    assert.deepEqual(r.body, BIG.subarray(1000, 2000));
    const tail = await fetch(port, '/big.bin', { headers: { Range: 'bytes=-17' } });
    assert.equal(tail.status, 206);
    assert.deepEqual(tail.body, BIG.subarray(BIG.length - 17));
    const open = await fetch(port, '/big.bin', { headers: { Range: `bytes=${BIG.length - 5}-` } });
    assert.deepEqual(open.body, BIG.subarray(BIG.length - 5));
    const bad = await fetch(port, '/big.bin', { headers: { Range: `bytes=${BIG.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${BIG.length}`);
    assert.equal(bad.body.length, 0);
    const multi = await fetch(port, '/boot.ipxe', { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(multi.status, 200);
    assert.deepEqual(multi.body, SMALL);
    const headRange = await fetch(port, '/big.bin', { method: 'HEAD', headers: { Range: 'bytes=0-9' } });
    assert.equal(headRange.status, 206);
    assert.equal(headRange.headers['content-length'], '10');
  });

  it('If-Range: the range only while the file is unchanged', async () => {
    const lm = (await fetch(port, '/big.bin', { method: 'HEAD' })).headers['last-modified']!;
    const same = await fetch(port, '/big.bin', { headers: { Range: 'bytes=0-9', 'If-Range': lm } });
    assert.equal(same.status, 206);
    const changed = await fetch(port, '/boot.ipxe', {
      headers: { Range: 'bytes=0-9', 'If-Range': 'Thu, 01 Jan 1970 00:00:01 GMT' },
    });
    assert.equal(changed.status, 200);
    assert.deepEqual(changed.body, SMALL);
  });

  it('every other method: 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'PROPFIND']) {
      const r = await fetch(port, '/boot.ipxe', { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    assert.equal(statusOf(await raw(port, 'TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')), 405);
  });

  it('keep-alive: two requests on one connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const a = await fetch(port, '/boot.ipxe', { agent });
      const b = await fetch(port, '/big.bin', { agent, headers: { Range: 'bytes=0-99' } });
      assert.equal(a.status, 200);
      assert.equal(b.status, 206);
      assert.equal(a.reused, false);
      assert.equal(b.reused, true, 'the second request went over the first one’s connection');
      assert.equal(a.headers.connection, 'keep-alive');
    } finally {
      agent.destroy();
    }
    // Pipelined on one raw connection: both answers come back in order.
    const both = await raw(
      port,
      'GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\nGET /dir/inner.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const text = both.toString('latin1');
    assert.equal(text.match(/^HTTP\/1\.1 200/gm)?.length, 2);
    assert.ok(text.endsWith('inner\n'));
  });

  it('traversal and probing: 404 and not one byte of what lies outside', async () => {
    const targets = [
      '/../secret',
      '/../../../../../../etc/passwd',
      '/%2e%2e/secret',
      '/%2E%2E/%2e%2e/secret',
      '/..%2fsecret',
      '/%2e%2e%2fsecret',
      '/dir/..%2f..%2fsecret',
      '/..%5csecret',
      '/..\\secret',
      '/dir\\..\\..\\secret',
      '/secret%00.txt',
      '/boot.ipxe%00',
      `/${join(base, 'secret')}`,
      `//${join(base, 'secret')}`,
      `http://127.0.0.1:${port}/../secret`,
      '/escape',
      '/out/secret',
      '/out',
      '/dir',
      '/dir/',
      '/',
      '/nonexistent',
    ];
    for (const t of targets) {
      const response = await raw(port, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const status = statusOf(response);
      assert.ok(status === 404 || status === 400, `${t}: status ${status}`);
      assert.equal(response.includes(SECRET), false, `${t} leaked the outside file`);
      assert.equal(response.includes(Buffer.from('inner')), false, `${t} listed a directory`);
    }
    const nul = await raw(port, 'GET /boot.ipxe\0 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(nul.includes(SMALL), false);
  });

  it('50 parallel downloads, each checked by sha256', async () => {
    const want = sha(BIG);
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            get({ host: '127.0.0.1', port, path: `/big.bin?n=${i}`, agent: false }, (res) => {
              const h = createHash('sha256');
              res.on('data', (c: Buffer) => h.update(c));
              res.on('end', () => resolve(h.digest('hex')));
              res.on('error', reject);
            }).on('error', reject);
          }),
      ),
    );
    assert.equal(results.filter((r) => r === want).length, 50);
  });

  it('a client that goes away mid-file: the response is cut, logged as aborted, and the server serves on', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = get({ host: '127.0.0.1', port, path: '/big.bin?mark=cut', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no data')), 5000);
    });
    const line = await log.waitFor((l) => l.message === 'HTTP' && l.path === '/big.bin?mark=cut');
    assert.equal(line.aborted, true);
    assert.ok(Number(line.bytes) < BIG.length);
    assert.ok(counters.get('http-aborted') >= 1);
    assert.equal(sha((await fetch(port, '/big.bin')).body), sha(BIG));
  });

  it('one info line per request: client, path, status, bytes, seconds', async () => {
    await fetch(port, '/big.bin?mark=line', { headers: { Range: 'bytes=0-99' } });
    const line = await log.waitFor((l) => l.message === 'HTTP' && l.path === '/big.bin?mark=line');
    assert.equal(line.status, 206);
    assert.equal(line.level, 'info');
    assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
    assert.equal(line.method, 'GET');
    assert.equal(line.bytes, 100);
    assert.equal(typeof line.seconds, 'number');
    await raw(port, 'GET /%2e%2e/secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const refused = await log.waitFor((l) => l.message === 'HTTP' && l.path === '/%2e%2e/secret');
    assert.equal(refused.status, 404);
    assert.equal(refused.refused, 'dot-dot');
    assert.ok(counters.get('http-not-found') > 0);
    assert.ok(counters.get('http-bytes') >= BIG.length * 50);
  });

  it('a generated iPXE script for a machine with a kernel rule, 404 for the others', async () => {
    const r = await fetch(port, '/pxe-pdhcp/boot/52-54-00-00-00-01.ipxe?arch=7');
    assert.equal(r.status, 200);
    const url = `http://127.0.0.1:${port}`;
    assert.equal(
      r.body.toString(),
      [
        '#!ipxe',
        '# pxe-pdhcp: 52:54:00:00:00:01 efi-x64, rule 1 (mac=52:54:00:00:00:01,kernel=debian/linux,initrd=debian/initrd.gz,cmdline=console=ttyS0,115200 auto)',
        `kernel ${url}/debian/linux initrd=initrd.gz console=ttyS0,115200 auto`,
        `initrd ${url}/debian/initrd.gz`,
        'boot',
        '',
      ].join('\n'),
    );
    assert.equal(r.headers['cache-control'], 'no-store');
    // Another machine matches the script-less iPXE rule: no script.
    assert.equal((await fetch(port, '/pxe-pdhcp/boot/52-54-00-00-00-02.ipxe?arch=7')).status, 404);
    assert.equal((await fetch(port, '/pxe-pdhcp/boot/nonsense.ipxe')).status, 404);
    assert.equal((await fetch(port, '/pxe-pdhcp/boot/52-54-00-00-00-01.ipxe?arch=x')).status, 404);
  });
});

describe('HTTP bounds: connection caps and timeouts', () => {
  const limits: Partial<HttpLimits> = {
    maxConnections: 100,
    maxPerAddress: 20,
    headersTimeoutMs: 400,
    requestTimeoutMs: 800,
    keepAliveTimeoutMs: 300,
    idleTimeoutMs: 700,
    checkIntervalMs: 100,
    // A budget this small gives every response the smallest chunk, 64 KiB.
    bufferBudget: 100 * 1024,
  };
  let server: HttpServer;
  let port: number;
  const root = mkdtempSync(join(tmpdir(), 'http-bounds-'));
  writeFileSync(join(root, 'f'), 'file\n');
  const MEDIUM = pattern(1_000_003, 5);
  writeFileSync(join(root, 'medium'), MEDIUM);
  const counters = new Counters<HttpCounter>();

  before(async () => {
    server = await HttpServer.start({
      root: new FileRoot(root),
      listen: [{ address: '127.0.0.1', port: 0 }],
      limits,
      log: new MemoryLogger('info'),
      counters,
    });
    port = server.ports[0]!;
  });
  after(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  const idle = (localAddress: string): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
      s.resume(); // reading, so the server's close is seen
      s.on('error', () => undefined);
      s.once('error', reject);
    });

  it('200 idle sockets from one host do not block a new client from another', async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => idle('127.0.0.2')));
    const closed = new Set<Socket>();
    for (const s of sockets) s.once('close', () => closed.add(s));
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(server.connections <= 20, `${server.connections} connections held: the per-address cap is 20`);
      const started = performance.now();
      const r = await fetch(port, '/f');
      assert.equal(r.status, 200);
      assert.ok(performance.now() - started < 300, 'the new client was served at once');
      assert.ok(counters.get('http-connection-refused') >= 180);
      // The idle ones are dropped by the idle timeout.
      const deadline = Date.now() + 3000;
      while (closed.size < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(closed.size, 200, 'every idle socket was closed');
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('the total cap refuses the connection past it, and frees up as connections end', async () => {
    const hosts = Array.from({ length: 6 }, (_, i) => `127.0.1.${i + 1}`);
    const sockets = (
      await Promise.all(hosts.map((h) => Promise.all(Array.from({ length: 20 }, () => idle(h)))))
    ).flat();
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(server.connections, 100);
      await assert.rejects(fetch(port, '/f'), 'a 101st connection is closed at once');
    } finally {
      for (const s of sockets) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await fetch(port, '/f')).status, 200);
  });

  it('a client that trickles its headers is cut off by the header timeout', async () => {
    const started = performance.now();
    const got = await new Promise<Buffer>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.write('GET /f HTTP/1.1\r\nHost: x\r\n'));
      const chunks: Buffer[] = [];
      const drip = setInterval(() => s.writable && s.write('X-Slow: 1\r\n'), 100);
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', () => undefined);
      s.on('close', () => {
        clearInterval(drip);
        resolve(Buffer.concat(chunks));
      });
    });
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `closed after ${Math.round(ms)} ms`);
    assert.equal(got.includes(Buffer.from('file\n')), false);
    assert.match(got.toString(), /^(HTTP\/1\.1 408|$)/);
  });

  it('with the smallest chunks, parallel downloads and ranges are still whole and right', async () => {
    const bodies = await Promise.all(Array.from({ length: 5 }, () => fetch(port, '/medium')));
    for (const b of bodies) assert.equal(sha(b.body), sha(MEDIUM));
    const part = await fetch(port, '/medium', { headers: { Range: 'bytes=65530-200000' } });
    assert.deepEqual(part.body, MEDIUM.subarray(65530, 200001));
  });

  it('request line and headers past maxHeaderSize: 431, nothing served', async () => {
    const response = await raw(port, `GET /f HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`);
    assert.equal(statusOf(response), 431);
    const longUrl = await raw(port, `GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(statusOf(longUrl), 431);
  });
});
