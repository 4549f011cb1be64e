/**
 * --upstream against a real web server: Debian's nginx-light serves a Debian netboot tree on a
 * "mirror" host, the built daemon serves an empty TFTP root on a "server" host, and real TFTP and HTTP
 * clients (tftp-hpa, curl) ask from a "client" host, all on a LAN of network namespaces. nginx's
 * `limit_rate` makes the slow mirror and its access log counts the downloads.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { have, Lab, waitForOutput, type Host } from '../helpers/netns.js';
import { Nginx } from '../helpers/nginx.js';
import { pattern } from '../helpers/tftp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const TIMED = join(ROOT, 'test/helpers/tftp-timed.ts');
const MIRROR = { cidr: '10.78.0.1/24', ip: '10.78.0.1' };
const SERVER = { cidr: '10.78.0.2/24', ip: '10.78.0.2' };
const CLIENT = { cidr: '10.78.0.10/24' };
const MIRROR_URL = `http://${MIRROR.ip}:8080/`;
const HTTP = `http://${SERVER.ip}:8081`;
const MAX_CACHE = 4 * 1024 * 1024;
/** nginx's limit_rate for the kernel, the initrd and /slow/ (bytes per second). */
const RATE = 400 * 1024;
const D_I = 'debian-installer/amd64';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('--upstream with nginx-light as the mirror (network namespaces)', () => {
  let lab: Lab;
  let mirrorHost: Host;
  let client: Host;
  let nginx: Nginx;
  let daemon: ChildProcess;
  let daemonLog = '';
  let work: string;
  let tree: string;
  let n = 0;

  /** The files of the tree, by their name under the mirror's root. */
  const file = (name: string): Buffer => readFileSync(join(tree, name));
  /** Lines of nginx's access log (`METHOD URI STATUS BYTES`). */
  const access = (): string[] => nginx.access();
  const downloads = (uri: string): number => access().filter((l) => l.startsWith(`GET /${uri} 200 `)).length;
  const cachedBytes = (): number =>
    readdirSync(join(work, 'cache', 'files'))
      .filter((f) => !f.endsWith('.meta'))
      .reduce((s, f) => s + statSync(join(work, 'cache', 'files', f)).size, 0);

  /** Resolves once the daemon's log (so far or to come) matches `re`. */
  async function logged(re: RegExp, ms = 5000): Promise<void> {
    for (const end = Date.now() + ms; !re.test(daemonLog); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > end) assert.fail(`no log line matching ${String(re)}:\n${daemonLog}`);
    }
  }

  /** Size of a file that may vanish (renamed or deleted) meanwhile: 0 then. */
  const sizeOf = (path: string): number => {
    try {
      return statSync(path).size;
    } catch {
      return 0;
    }
  };

  /** curl's TFTP client: the file, and how long it took (seconds). */
  async function curlTftp(name: string): Promise<{ data: Buffer; total: number }> {
    const dest = join(work, 'out', `${++n}`);
    const r = await lab.exec(client.ns, 'curl', [
      '-sS',
      '--max-time',
      '60',
      '--tftp-blksize',
      '1468',
      '-o',
      dest,
      '-w',
      '%{time_total}',
      `tftp://${SERVER.ip}/${name}`,
    ]);
    assert.equal(r.code, 0, `curl tftp://…/${name}: ${r.stderr}\n${daemonLog}`);
    return { data: readFileSync(dest), total: Number(r.stdout) };
  }

  /** tftp-hpa: the file, or the error it printed. */
  async function tftpHpa(name: string): Promise<{ data?: Buffer; out: string }> {
    const dest = join(work, 'out', `${++n}`);
    const r = await lab.exec(client.ns, 'tftp', ['-m', 'binary', SERVER.ip, '-c', 'get', name, dest], 60_000);
    const out = `${r.stdout}${r.stderr}`;
    return /Error code/.test(out) || !existsSync(dest) ? { out } : { data: readFileSync(dest), out };
  }

  async function curlHttp(path: string): Promise<{ status: number; xcache?: string; data: Buffer }> {
    const dest = join(work, 'out', `${++n}`);
    const r = await lab.exec(client.ns, 'curl', ['-sS', '-D', '-', '-o', dest, `${HTTP}/${path}`]);
    const status = Number(/^HTTP\/1\.1 (\d+)/m.exec(r.stdout)?.[1]);
    const xcache = /^x-cache: (\S+)/im.exec(r.stdout)?.[1];
    return { status, ...(xcache ? { xcache } : {}), data: existsSync(dest) ? readFileSync(dest) : Buffer.alloc(0) };
  }

  before(async () => {
    for (const tool of ['ip', 'nginx', 'curl', 'tftp']) {
      assert.ok(have(tool), `${tool} is not installed (Debian: iproute2, nginx-light, curl, tftp-hpa; make deps)`);
    }
    assert.ok(existsSync(MAIN), `${MAIN} is missing: run make build first`);
    assert.ok(existsSync('/usr/lib/PXELINUX/pxelinux.0'), 'Debian pxelinux is not installed (make deps)');
    work = mkdtempSync(join(tmpdir(), 'pxe-upstream-'));
    // nginx's workers and the daemon after its privilege drop run as nobody.
    chmodSync(work, 0o755);
    tree = join(work, 'mirror');
    // The Debian netboot layout (installer-amd64/current/images/netboot/): the files live under
    // debian-installer/amd64/, and the top-level names pxelinux is asked for are symlinks into it.
    const put = (name: string, data: Buffer | string): void => {
      mkdirSync(dirname(join(tree, name)), { recursive: true });
      writeFileSync(join(tree, name), data);
    };
    put(`${D_I}/pxelinux.0`, readFileSync('/usr/lib/PXELINUX/pxelinux.0'));
    for (const c32 of ['ldlinux.c32', 'vesamenu.c32']) {
      put(`${D_I}/boot-screens/${c32}`, readFileSync(`/usr/lib/syslinux/modules/bios/${c32}`));
    }
    put(
      `${D_I}/boot-screens/syslinux.cfg`,
      `path ${D_I}/boot-screens/\ndefault install\nlabel install\n  kernel ${D_I}/linux\n  append initrd=${D_I}/initrd.gz vga=788 --- quiet\n`,
    );
    mkdirSync(join(tree, `${D_I}/pxelinux.cfg`));
    symlinkSync('../boot-screens/syslinux.cfg', join(tree, `${D_I}/pxelinux.cfg/default`));
    put(`${D_I}/linux`, pattern(1200 * 1024, 1));
    put(`${D_I}/initrd.gz`, pattern(800 * 1024, 2));
    symlinkSync(`${D_I}/pxelinux.0`, join(tree, 'pxelinux.0'));
    symlinkSync(`${D_I}/boot-screens/ldlinux.c32`, join(tree, 'ldlinux.c32'));
    symlinkSync(`${D_I}/pxelinux.cfg`, join(tree, 'pxelinux.cfg'));
    for (let i = 0; i < 6; i++) put(`big/f${i}.img`, pattern(1024 * 1024, 10 + i));
    put('slow/killed.img', pattern(1500 * 1024, 20));
    put('uncached.efi', pattern(5000, 21));
    chmodSync(tree, 0o755);
    for (const dir of [join(work, 'root'), join(work, 'out')]) mkdirSync(dir, { mode: 0o755 });
    lab = await Lab.create('upstream');
    mirrorHost = await lab.addHost('mirror', MIRROR.cidr);
    const server = await lab.addHost('server', SERVER.cidr);
    client = await lab.addHost('client', CLIENT.cidr);
    nginx = await Nginx.start(lab, mirrorHost.ns, {
      work,
      listen: `${MIRROR.ip}:8080`,
      root: tree,
      server: `location ~ (/linux|/initrd\\.gz|^/slow/.*)$ { limit_rate ${RATE}; }`,
    });
    daemon = lab.spawn(
      server.ns,
      process.execPath,
      [
        MAIN,
        '-d',
        '-i',
        'eth0',
        '--tftp-root',
        join(work, 'root'),
        '--upstream',
        MIRROR_URL,
        '--cache-dir',
        join(work, 'cache'),
        '--cache-max-size',
        String(MAX_CACHE),
        '--cache-ttl',
        '3s',
        '--http',
        '--http-port',
        '8081',
        'pxelinux.0',
      ],
      { cwd: ROOT },
    );
    daemon.stderr?.on('data', (c: Buffer) => (daemonLog += c.toString()));
    daemon.stdout?.on('data', (c: Buffer) => (daemonLog += c.toString()));
    await waitForOutput(daemon, /HTTP server listening/, 15_000);
  });

  after(async () => {
    await lab?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('starts as root, gives the cache to nobody, and finds the boot file upstream (HEAD)', async () => {
    assert.equal(statSync(join(work, 'cache')).uid, 65534);
    assert.match(daemonLog, /upstream url=http:\/\/10\.78\.0\.1:8080\/ /);
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(daemonLog, /boot file is not in the TFTP root/);
    assert.equal(access().filter((l) => l.startsWith('HEAD /pxelinux.0 200')).length, 1);
  });

  it("pxelinux's files come whole from the Debian netboot tree, through the mirror's symlinks (tftp-hpa)", async () => {
    for (const [name, real] of [
      ['pxelinux.0', `${D_I}/pxelinux.0`],
      ['ldlinux.c32', `${D_I}/boot-screens/ldlinux.c32`],
      ['pxelinux.cfg/default', `${D_I}/boot-screens/syslinux.cfg`],
      [`${D_I}/boot-screens/vesamenu.c32`, `${D_I}/boot-screens/vesamenu.c32`],
    ] as const) {
      const r = await tftpHpa(name);
      assert.ok(r.data, `${name}: ${r.out}`);
      assert.equal(sha(r.data), sha(file(real)), name);
    }
  });

  it('the kernel streams: its first TFTP block comes long before the rate-limited mirror ends', async (t) => {
    const dest = join(work, 'out', 'kernel');
    const run = await lab.exec(client.ns, process.execPath, [
      '--import',
      'tsx',
      TIMED,
      SERVER.ip,
      `${D_I}/linux`,
      dest,
    ]);
    const r = JSON.parse(run.stdout) as { ok: boolean; tsize?: number; firstDataMs: number; ms: number };
    assert.ok(r.ok, `${run.stdout}${run.stderr}`);
    t.diagnostic(`first block after ${r.firstDataMs.toFixed(0)} ms, whole kernel after ${r.ms.toFixed(0)} ms`);
    assert.equal(sha(readFileSync(dest)), sha(file(`${D_I}/linux`)));
    assert.equal(r.tsize, file(`${D_I}/linux`).length, "tsize is the mirror's Content-Length");
    assert.ok(r.ms > 2000, `the whole kernel took ${r.ms} ms (limit_rate ${RATE})`);
    assert.ok(r.firstDataMs < r.ms / 4, `first block after ${r.firstDataMs} ms of ${r.ms}`);
  });

  it('the second fetch is a hit: one download in the access log, X-Cache: hit over HTTP', async () => {
    const t = await curlTftp(`${D_I}/linux`);
    assert.equal(sha(t.data), sha(file(`${D_I}/linux`)));
    assert.ok(t.total < 2, `a hit took ${t.total} s`);
    const h = await curlHttp(`${D_I}/linux`);
    assert.equal(h.status, 200);
    assert.equal(h.xcache, 'hit');
    assert.equal(sha(h.data), sha(file(`${D_I}/linux`)));
    assert.equal(downloads(`${D_I}/linux`), 1, access().join('\n'));
  });

  it('10 clients at once (tftp-hpa, curl over TFTP and HTTP) make one download', async () => {
    const name = `${D_I}/initrd.gz`;
    const want = sha(file(name));
    const got = await Promise.all([
      ...Array.from({ length: 4 }, () => tftpHpa(name).then((r) => r.data)),
      ...Array.from({ length: 4 }, () => curlTftp(name).then((r) => r.data)),
      ...Array.from({ length: 2 }, () => curlHttp(name).then((r) => r.data)),
    ]);
    for (const g of got) assert.equal(g && sha(g), want);
    assert.equal(downloads(name), 1, access().join('\n'));
  });

  it('a name the mirror does not have: TFTP error 1, HTTP 404', async () => {
    const r = await tftpHpa('pxelinux.cfg/01-52-54-00-12-34-56');
    assert.match(r.out, /Error code 1: File not found/);
    assert.equal((await curlHttp('pxelinux.cfg/01-52-54-00-12-34-56')).status, 404);
  });

  it(`the cache stays under --cache-max-size (${MAX_CACHE} bytes)`, async () => {
    for (let i = 0; i < 6; i++) {
      const r = await curlTftp(`big/f${i}.img`);
      assert.equal(sha(r.data), sha(file(`big/f${i}.img`)));
      await logged(new RegExp(`upstream download complete url=\\S+/big/f${i}\\.img`));
      for (let w = 0; w < 100 && cachedBytes() > MAX_CACHE; w++) await new Promise((res) => setTimeout(res, 10));
      assert.ok(cachedBytes() <= MAX_CACHE, `${cachedBytes()} bytes cached`);
    }
  });

  it('a mirror killed mid-download: the client gets an error, nothing partial is kept', async () => {
    assert.ok((await tftpHpa('pxelinux.0')).data, 'pxelinux.0 cached before the mirror dies');
    const dest = join(work, 'out', 'killed');
    const transfer = lab.exec(client.ns, 'curl', [
      '-sS',
      '--max-time',
      '60',
      '-o',
      dest,
      `tftp://${SERVER.ip}/slow/killed.img`,
    ]);
    // Until the daemon has a part of it on disk.
    for (let i = 0; i < 200; i++) {
      const parts = readdirSync(join(work, 'cache', 'tmp'));
      if (parts.some((p) => sizeOf(join(work, 'cache', 'tmp', p)) > 100_000)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await nginx.stop();
    const r = await transfer;
    assert.notEqual(r.code, 0, 'curl must not get the file');
    const got = existsSync(dest) ? readFileSync(dest) : Buffer.alloc(0);
    assert.ok(got.length < 1500 * 1024, 'not the whole file');
    assert.deepEqual(readdirSync(join(work, 'cache', 'tmp')), []);
    const size = file('slow/killed.img').length;
    assert.ok(!readdirSync(join(work, 'cache', 'files')).some((f) => sizeOf(join(work, 'cache', 'files', f)) === size));
    await logged(/upstream download failed url=\S+\/slow\/killed\.img/);
  });

  it('the mirror dead: an uncached file is TFTP error 0 and HTTP 502, logged once; a cached one is still served', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await tftpHpa('uncached.efi');
      assert.match(r.out, /Error code 0: Upstream error/);
      assert.equal((await curlHttp('uncached.efi')).status, 502);
    }
    const lines = daemonLog.split('\n').filter((l) => /upstream error url=\S+\/uncached\.efi/.test(l));
    assert.equal(lines.length, 1, daemonLog);
    assert.match(lines[0]!, /connection refused by 10\.78\.0\.1:8080/);
    await new Promise((res) => setTimeout(res, 3100)); // past --cache-ttl
    const stale = await tftpHpa('pxelinux.0');
    assert.equal(sha(stale.data ?? Buffer.alloc(0)), sha(file(`${D_I}/pxelinux.0`)), stale.out);
    await logged(/upstream unreachable: serving the cached copy url=\S+\/pxelinux\.0/);
  });
});
