/**
 * Real HTTP clients (curl, wget) against the daemon's HTTP server, in-process on loopback: ranges,
 * HEAD, conditional GET, keep-alive, resumed downloads, parallel downloads and traversal attempts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../src/cli/args.js';
import { startTestDaemon, TestClient, type TestDaemon } from '../helpers/daemon.js';
import { have } from '../helpers/netns.js';
import { pattern, tempRoot } from '../helpers/tftp.js';

const run = promisify(execFile);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const IMAGE = pattern(8 * 1024 * 1024 + 3, 11);
const SECRET = 'TOPSECRET-not-to-be-served';
const outside = tempRoot({ secret: SECRET });
const root = tempRoot({ 'image.bin': IMAGE, 'boot.ipxe': '#!ipxe\nshell\n' });
mkdirSync(join(root.dir, 'debian'));
writeFileSync(join(root.dir, 'debian', 'linux'), pattern(100_000, 2));
symlinkSync(join(outside.dir, 'secret'), join(root.dir, 'escape'));
// A fixed modification time, for the conditional requests.
const MTIME = new Date('2026-01-02T03:04:05Z');
utimesSync(join(root.dir, 'image.bin'), MTIME, MTIME);
const out = tempRoot();

async function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('curl', ['-sS', '--max-time', '60', ...args], { timeout: 90_000, maxBuffer: 64 << 20 });
}

describe('curl and wget against the HTTP server', () => {
  let t: TestDaemon;
  let client: TestClient;
  let base: string;

  before(async () => {
    assert.ok(have('curl'), 'curl is not installed (make deps installs it)');
    assert.ok(have('wget'), 'wget is not installed (make deps installs it)');
    client = await TestClient.open();
    const r = parseArgs([
      ...'-d -l 127.0.0.1 -t 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 --no-tftp'.split(
        ' ',
      ),
      ...['--client-port', String(client.port), '--http', '--http-port', '0', '--http-root', root.dir],
      ...['--boot', 'user-class=iPXE,kernel=debian/linux,cmdline=quiet', 'undionly.kpxe'],
    ]);
    assert.equal(r.kind, 'run');
    if (r.kind !== 'run') return;
    t = await startTestDaemon(r.config, 'info');
    base = `http://127.0.0.1:${t.daemon.ports.http[0]}`;
  });
  after(async () => {
    await t?.daemon.close();
    client?.close();
    for (const d of [root, outside, out]) d.remove();
  });

  it('curl: GET with the right sha256, HEAD headers', async () => {
    const dest = join(out.dir, 'image.bin');
    const { stdout } = await curl([
      '-o',
      dest,
      '-w',
      '%{http_code} %{size_download} %{content_type}',
      `${base}/image.bin`,
    ]);
    assert.equal(stdout, `200 ${IMAGE.length} application/octet-stream`);
    assert.equal(sha(readFileSync(dest)), sha(IMAGE));
    const head = await curl(['-I', `${base}/image.bin`]);
    assert.match(head.stdout, /^HTTP\/1\.1 200 OK\r$/m);
    assert.match(head.stdout, new RegExp(`^Content-Length: ${IMAGE.length}\r$`, 'mi'));
    assert.match(head.stdout, /^Last-Modified: Fri, 02 Jan 2026 03:04:05 GMT\r$/im);
    assert.match(head.stdout, /^Accept-Ranges: bytes\r$/im);
  });

  it('curl: a range gives 206 and exactly those bytes; past the end 416', async () => {
    const dest = join(out.dir, 'part');
    const { stdout } = await curl(['-r', '1000000-1999999', '-o', dest, '-w', '%{http_code}', `${base}/image.bin`]);
    assert.equal(stdout, '206');
    assert.deepEqual(readFileSync(dest), IMAGE.subarray(1_000_000, 2_000_000));
    const bad = await curl(['-r', `${IMAGE.length}-`, '-o', '/dev/null', '-w', '%{http_code}', `${base}/image.bin`]);
    assert.equal(bad.stdout, '416');
  });

  it('curl: conditional GET (-z) gives 304 for an unchanged file, 200 for a changed one', async () => {
    const later = await curl([
      '-z',
      'Sat, 03 Jan 2026 00:00:00 GMT',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base}/image.bin`,
    ]);
    assert.equal(later.stdout, '304');
    const earlier = await curl([
      '-z',
      'Thu, 01 Jan 2026 00:00:00 GMT',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${base}/image.bin`,
    ]);
    assert.equal(earlier.stdout, '200');
  });

  it('curl: two URLs in one run share one kept-alive connection', async () => {
    const r = await curl(['-v', '-o', '/dev/null', '-o', '/dev/null', `${base}/boot.ipxe`, `${base}/debian/linux`]);
    assert.match(r.stderr, /Re-?using existing connection/i);
    assert.equal(r.stderr.match(/Connected to 127\.0\.0\.1/g)?.length, 1, 'one TCP connection');
  });

  it('curl: 50 parallel downloads, every sha256 right', async () => {
    const args = ['-Z', '--parallel-max', '50'];
    for (let i = 0; i < 50; i++) args.push('-o', join(out.dir, `p${i}`), `${base}/image.bin?n=${i}`);
    await curl(args);
    const want = sha(IMAGE);
    for (let i = 0; i < 50; i++) assert.equal(sha(readFileSync(join(out.dir, `p${i}`))), want, `download ${i}`);
  });

  it('curl: traversal attempts get 404 and nothing from outside', async () => {
    for (const path of [
      '/../secret',
      '/%2e%2e/secret',
      '/..%2fsecret',
      '/%2e%2e%2f%2e%2e%2fetc/passwd',
      '/escape',
      `/${outside.dir}/secret`,
      '/debian/',
      '/..\\secret',
    ]) {
      const r = await curl(['--path-as-is', '-o', '-', '-w', '\n%{http_code}', `${base}${path}`]);
      assert.ok(r.stdout.endsWith('\n404'), `${path}: ${r.stdout.slice(-20)}`);
      assert.ok(!r.stdout.includes(SECRET), `${path} leaked the outside file`);
    }
  });

  it('curl: the generated iPXE script names the kernel on our server', async () => {
    const r = await curl([`${base}/pxe-pdhcp/boot/52-54-00-00-00-05.ipxe?arch=0`]);
    assert.match(r.stdout, new RegExp(`^kernel ${base}/debian/linux quiet$`, 'm'));
  });

  it('wget: a download, then a resumed one (-c) that uses a range', async () => {
    const dest = join(out.dir, 'wget.bin');
    await run('wget', ['-q', '-O', dest, `${base}/image.bin`], { timeout: 60_000 });
    assert.equal(sha(readFileSync(dest)), sha(IMAGE));
    const partial = join(out.dir, 'resume', 'image.bin');
    mkdirSync(join(out.dir, 'resume'));
    writeFileSync(partial, IMAGE.subarray(0, 3_000_000));
    await run('wget', ['-q', '-c', '-P', join(out.dir, 'resume'), `${base}/image.bin`], { timeout: 60_000 });
    assert.equal(statSync(partial).size, IMAGE.length);
    assert.equal(sha(readFileSync(partial)), sha(IMAGE));
    const line = await t.log.waitFor(
      (l) => l.message === 'HTTP' && l.status === 206 && l.bytes === IMAGE.length - 3_000_000,
    );
    assert.match(String(line.client), /^127\.0\.0\.1:/);
  });
});
