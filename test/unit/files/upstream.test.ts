import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseUpstreamUrl, Upstream, UpstreamError, upstreamUrl } from '../../../src/files/upstream.js';
import { FakeUpstream } from '../../helpers/upstream.js';

const base = parseUpstreamUrl(
  'http://mirror.example/debian/dists/bookworm/main/installer-amd64/current/images/netboot',
);

async function failure(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof UpstreamError, `not an UpstreamError: ${String(err)}`);
    return err;
  }
  assert.fail('the request succeeded');
}

describe('upstream URLs: only contained, normalised, encoded names', () => {
  it('appends the name under the base (which gains a trailing slash)', () => {
    assert.equal(base.pathname.endsWith('/netboot/'), true);
    assert.equal(
      upstreamUrl(base, 'debian-installer/amd64/linux'),
      'http://mirror.example/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux',
    );
  });

  it('normalises as the root does: leading /, \\ as /, empty and . segments', () => {
    const a = upstreamUrl(base, '/a//b/./c');
    assert.equal(a, upstreamUrl(base, 'a/b/c'));
    assert.equal(upstreamUrl(base, '\\a\\b\\c'), a);
  });

  it('refuses .., control characters and the empty name', () => {
    for (const bad of ['../etc/passwd', 'a/../../b', 'a\u0000b', 'a\nb', '', '/', '.']) {
      assert.equal(upstreamUrl(base, bad), null, JSON.stringify(bad));
    }
  });

  it('encodes each segment, so no name reaches a query, fragment, other host or parent', () => {
    const u = upstreamUrl(base, 'x y/%2e%2e/a?b#c/http:/@evil')!;
    assert.ok(u.startsWith(base.href));
    const parsed = new URL(u);
    assert.equal(parsed.host, 'mirror.example');
    assert.equal(parsed.search, '');
    assert.equal(parsed.hash, '');
    assert.ok(parsed.pathname.startsWith(base.pathname));
    assert.equal(u.slice(base.href.length), 'x%20y/%252e%252e/a%3Fb%23c/http%3A/%40evil');
  });

  it('accepts http and https bases only, without credentials, query or fragment', () => {
    assert.equal(parseUpstreamUrl('https://deb.debian.org/debian').href, 'https://deb.debian.org/debian/');
    for (const bad of ['ftp://m/x', 'file:///srv', 'mirror/x', 'http://u:p@m/', 'http://m/?a=1', 'http://m/#x']) {
      assert.throws(() => parseUpstreamUrl(bad), TypeError, bad);
    }
  });
});

describe('the upstream fetcher against a local mirror', () => {
  let mirror: FakeUpstream;
  let up: Upstream;
  before(async () => {
    mirror = await FakeUpstream.start();
    up = new Upstream(mirror.url, { headersTimeoutMs: 300, maxRedirects: 5 });
  });
  after(async () => {
    up.close();
    await mirror.close();
  });

  it('200: length and validators, body as sent', async () => {
    mirror.files.set('/a/file', {
      body: Buffer.from('hello'),
      etag: '"e1"',
      lastModified: 'Tue, 01 Apr 2025 10:00:00 GMT',
    });
    const r = await up.request('a/file');
    assert.equal(r.status, 200);
    assert.equal(r.length, 5);
    assert.equal(r.etag, '"e1"');
    assert.equal(r.lastModified, 'Tue, 01 Apr 2025 10:00:00 GMT');
    const chunks: Buffer[] = [];
    for await (const c of r.body) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'hello');
  });

  it('a conditional request gets its 304', async () => {
    const r = await up.request('a/file', { etag: '"e1"' });
    assert.equal(r.status, 304);
    r.body.resume();
  });

  it('404 is not-found; 503 and 403 are errors naming the URL and status', async () => {
    const nf = await failure(up.request('missing'));
    assert.equal(nf.kind, 'not-found');
    assert.equal(nf.status, 404);
    mirror.files.set('/busy', { body: Buffer.alloc(0), status: 503 });
    const e = await failure(up.request('busy'));
    assert.equal(e.kind, 'error');
    assert.match(e.message, /^http:\/\/127\.0\.0\.1:\d+\/busy: HTTP 503/);
    mirror.files.set('/private', { body: Buffer.alloc(0), status: 403 });
    assert.equal((await failure(up.request('private'))).kind, 'error');
  });

  it('follows up to 5 redirects, not 6, and only to http or https', async () => {
    for (let i = 0; i < 6; i++) mirror.files.set(`/r${i}`, { body: Buffer.alloc(0), redirect: `/r${i + 1}` });
    mirror.files.set('/r6', { body: Buffer.from('end') });
    const ok = await up.request('r1');
    assert.equal(ok.status, 200);
    assert.match(ok.url, /\/r6$/);
    ok.body.resume();
    const tooMany = await failure(up.request('r0'));
    assert.match(tooMany.message, /more than 5 redirects/);
    mirror.files.set('/to-file', { body: Buffer.alloc(0), redirect: 'file:///etc/passwd' });
    assert.match((await failure(up.request('to-file'))).message, /redirect to file: refused/);
  });

  it('a mirror that never answers: one line after the headers timeout', async () => {
    mirror.files.set('/hang', { body: Buffer.alloc(0), hang: true });
    const t0 = performance.now();
    const e = await failure(up.request('hang'));
    assert.ok(performance.now() - t0 < 2000);
    assert.match(e.message, /no answer from 127\.0\.0\.1:\d+ within 0\.3 s$/);
    assert.doesNotMatch(e.message, /\n/);
  });

  it('a dead mirror: connection refused, one line', async () => {
    const dead = new Upstream('http://127.0.0.1:1/');
    const e = await failure(dead.request('x'));
    assert.equal(e.kind, 'error');
    assert.match(e.message, /^http:\/\/127\.0\.0\.1:1\/x: connection refused by 127\.0\.0\.1:1$/);
    dead.close();
  });

  it('a TLS failure is one clear line', async () => {
    // https:// to a plain HTTP port: the handshake fails (wrong version number).
    const tls = new Upstream(`https://127.0.0.1:${mirror.port}/`);
    const e = await failure(tls.request('a/file'));
    assert.match(e.message, /: TLS failure with 127\.0\.0\.1:\d+: .+/);
    assert.doesNotMatch(e.message, /\n/);
    assert.ok(e.message.length < 200, e.message);
    tls.close();
  });

  it('a self-signed certificate is one clear line; trusting its CA fetches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'upstream-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'));
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (_q, r) => r.end('secure'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://localhost:${(server.address() as { port: number }).port}/`;
    try {
      const untrusted = new Upstream(url);
      const e = await failure(untrusted.request('f'));
      assert.match(e.message, /: TLS failure with localhost:\d+: self[- ]signed certificate$/);
      untrusted.close();
      const trusted = new Upstream(url, {}, { ca: cert });
      const r = await trusted.request('f');
      assert.equal(r.status, 200);
      r.body.resume();
      trusted.close();
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('HEAD gives the length without a body', async () => {
    mirror.files.set('/h', { body: Buffer.alloc(1234) });
    const h = await up.head('h');
    assert.equal(h.length, 1234);
    assert.equal(mirror.count('/h', 'HEAD'), 1);
  });
});

describe('a kept-alive connection the mirror drops as it is reused', () => {
  it('the request goes again, once, on a fresh connection', async () => {
    let connections = 0;
    const server = createNetServer((sock) => {
      connections++;
      let requests = 0;
      sock.on('data', () => {
        // The first request of each connection is answered (kept alive); a second one is reset.
        if (++requests === 1) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
        else sock.resetAndDestroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const up = new Upstream(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    try {
      for (const name of ['a', 'b', 'c']) {
        const r = await up.request(name);
        r.body.resume();
        await new Promise((res) => r.body.once('end', res));
      }
      assert.equal(connections, 3, 'each reset was retried on a new connection');
    } finally {
      up.close();
      server.close();
    }
  });
});

describe('upstream connections are bounded', () => {
  let server: Server;
  let port: number;
  let open = 0;
  let most = 0;
  before(async () => {
    server = createServer((_req, res) => setTimeout(() => res.end('x'), 20));
    server.on('connection', (s: Socket) => {
      most = Math.max(most, ++open);
      s.once('close', () => open--);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('20 requests at once use at most maxConnections sockets', async () => {
    const up = new Upstream(`http://127.0.0.1:${port}/`, { maxConnections: 3 });
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const r = await up.request(`f${i}`);
        r.body.resume();
        await new Promise((res) => r.body.once('end', res));
      }),
    );
    up.close();
    assert.ok(most <= 3, `${most} connections at once`);
  });
});
