import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../src/cli/args.js';
import type { Config } from '../../src/daemon/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { decodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';
import { startTestDaemon, TestClient, type TestDaemon } from '../helpers/daemon.js';
import { memoryLogger } from '../helpers/log.js';
import { requestBytes, type RequestSpec } from '../helpers/packets.js';
import { pattern, tempRoot } from '../helpers/tftp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const KERNEL = pattern(300_000, 3);
const INITRD = pattern(700_000, 4);
const IPXE_EFI = pattern(90_000, 5);
const root = tempRoot({ 'ipxe.efi': IPXE_EFI, 'undionly.kpxe': 'x', 'boot.ipxe': '#!ipxe\nshell\n' });
mkdirSync(join(root.dir, 'debian'));
writeFileSync(join(root.dir, 'debian', 'linux'), KERNEL);
writeFileSync(join(root.dir, 'debian', 'initrd.gz'), INITRD);

const MAC = '52:54:00:77:00:09';

/** A config from a real command line; `args` is split on spaces unless given as a list. */
function cliConfig(args: string | string[], clientPort: number): Config {
  const base =
    '-d -l 127.0.0.1 -t 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 --no-tftp --http-port 0';
  const list = typeof args === 'string' ? args.split(' ') : args;
  const r = parseArgs([...`${base} --client-port ${clientPort}`.split(' '), ...list].filter(Boolean));
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

function get(url: string): Promise<{ status: number; body: Buffer; type?: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: Buffer.concat(chunks), type: res.headers['content-type'] }),
      );
    })
      .on('error', reject)
      .end();
  });
}

/** The boot file of a reply: `file`, else option 67 without its NUL. */
const bootFileOf = (p: DhcpPacket): string =>
  p.bootFile || (p.options.get(DhcpOption.BOOTFILE_NAME)?.toString('latin1').replace(/\0$/, '') ?? '');

describe('the daemon with its HTTP server (loopback)', () => {
  let client: TestClient;
  let t: TestDaemon;
  let httpPort: number;

  async function offer(spec: RequestSpec): Promise<DhcpPacket | undefined> {
    const start = client.received.length;
    await client.send(requestBytes(spec), t.daemon.ports.dhcp[0]!);
    try {
      await client.waitFor(start + 1, 500);
    } catch {
      return undefined;
    }
    const p = decodeDhcp(client.received[start]!.msg);
    assert.deepEqual([...p.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.OFFER]);
    return p;
  }

  before(async () => {
    client = await TestClient.open();
    t = await startTestDaemon(
      cliConfig(
        [
          '--http-boot',
          '--http-root',
          root.dir,
          '--boot',
          'arch=efi-x64-http,file=ipxe.efi',
          '--boot',
          `mac=${MAC},file=undionly.kpxe,kernel=debian/linux,initrd=debian/initrd.gz,cmdline=console=ttyS0,115200 auto=true`,
          '--boot',
          'user-class=iPXE,file=http:///boot.ipxe',
          'undionly.kpxe',
        ],
        client.port,
      ),
    );
    httpPort = t.daemon.ports.http[0]!;
  });
  after(async () => {
    await t.daemon.close();
    client.close();
    root.remove();
  });

  it('binds ports.http and says where it listens', () => {
    assert.equal(t.daemon.ports.http.length, 1);
    assert.ok(httpPort > 0);
    const line = t.lines.find((l) => l.message === 'HTTP server listening');
    assert.ok(line);
    assert.equal(line.addresses, `127.0.0.1:${httpPort}`);
    assert.equal(t.lines.filter((l) => l.level === 'warn').length, 0, 'every file the rules name is there');
  });

  it('iPXE with a kernel rule: a script URL on our server, the script, then kernel and initrd', async () => {
    const bios = await offer({ mac: MAC, arch: 0 });
    assert.equal(bootFileOf(bios!), 'undionly.kpxe', 'the ROM first gets the file of the same rule');
    const p = await offer({ mac: MAC, arch: 7, userClass: 'iPXE' });
    assert.ok(p);
    const url = bootFileOf(p);
    assert.match(
      url,
      new RegExp(
        `^http://127\\.0\\.0\\.1:${httpPort}/pxe-pdhcp/boot/52-54-00-77-00-09\\.ipxe\\?arch=7&uuid=[0-9a-f]{32}$`,
      ),
    );
    const script = await get(url);
    assert.equal(script.status, 200);
    const lines = script.body.toString().split('\n');
    const base = `http://127.0.0.1:${httpPort}`;
    assert.equal(lines[0], '#!ipxe');
    assert.equal(lines[2], `kernel ${base}/debian/linux initrd=initrd.gz console=ttyS0,115200 auto=true`);
    assert.equal(lines[3], `initrd ${base}/debian/initrd.gz`);
    assert.equal(lines[4], 'boot');
    assert.equal(sha((await get(`${base}/debian/linux`)).body), sha(KERNEL));
    assert.equal(sha((await get(`${base}/debian/initrd.gz`)).body), sha(INITRD));
    const logged = await t.log.waitFor((l) => l.message === 'HTTP' && l.path === '/debian/initrd.gz');
    assert.equal(logged.bytes, INITRD.length);
  });

  it('http:/// in a rule is this interface’s HTTP server; other iPXE clients get it', async () => {
    const p = await offer({ mac: '52:54:00:77:00:0a', arch: 0, userClass: 'iPXE' });
    assert.equal(bootFileOf(p!), `http://127.0.0.1:${httpPort}/boot.ipxe`);
    assert.equal((await get(bootFileOf(p!))).body.toString(), '#!ipxe\nshell\n');
  });

  it('--http-boot: an HTTPClient DISCOVER gets option 60 HTTPClient and a URL', async () => {
    const p = await offer({ arch: 16, vendor: 'HTTPClient:Arch:00016:UNDI:003001', mac: '52:54:00:77:00:0b' });
    assert.ok(p, 'answered');
    assert.equal(p.options.get(DhcpOption.VENDOR_CLASS_ID)?.toString('latin1'), 'HTTPClient');
    assert.equal(p.yourIp, '0.0.0.0');
    assert.equal(p.options.has(DhcpOption.VENDOR_SPECIFIC), false, 'no PXE option 43');
    const url = bootFileOf(p);
    assert.equal(url, `http://127.0.0.1:${httpPort}/ipxe.efi`);
    const got = await get(url);
    assert.equal(sha(got.body), sha(IPXE_EFI));
    assert.equal(got.type, 'application/octet-stream');
  });

  it('an HTTPClient whose rule is a TFTP path gets that path on our HTTP server', async () => {
    const p = await offer({ arch: 19, vendor: 'HTTPClient:Arch:00019:UNDI:003000', mac: '52:54:00:77:00:0c' });
    assert.equal(bootFileOf(p!), `http://127.0.0.1:${httpPort}/undionly.kpxe`, 'the default <nbp>, as a URL');
  });
});

describe('HTTP server start-up and HTTPClient without --http-boot', () => {
  it('without --http-boot an HTTPClient DISCOVER stays unanswered', async () => {
    const client = await TestClient.open();
    const t = await startTestDaemon(cliConfig(`--http --http-root ${root.dir} undionly.kpxe`, client.port));
    try {
      await client.send(
        requestBytes({ arch: 16, vendor: 'HTTPClient:Arch:00016:UNDI:003001' }),
        t.daemon.ports.dhcp[0]!,
      );
      await assert.rejects(client.waitFor(1, 400));
      assert.equal(t.daemon.stats.get('not-pxe-client'), 1);
      assert.equal(t.daemon.ports.http.length, 1, 'the HTTP server runs all the same');
    } finally {
      await t.daemon.close();
      client.close();
    }
  });

  it('an HTTP port in use stops start-up with one line naming it', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const taken = (holder.address() as { port: number }).port;
    try {
      const config = cliConfig(`--http --http-root ${root.dir} undionly.kpxe`, 68);
      const { log } = memoryLogger();
      await assert.rejects(startDaemon({ ...config, http: { ...config.http!, port: taken } }, { log }), {
        name: 'UserError',
        message: `HTTP port 127.0.0.1:${taken} is in use by another program`,
      });
    } finally {
      holder.close();
    }
  });

  it('a missing kernel is one warning at start-up', async () => {
    const client = await TestClient.open();
    const t = await startTestDaemon(
      cliConfig(`--http --http-root ${root.dir} --boot user-class=iPXE,kernel=nope/linux undionly.kpxe`, client.port),
    );
    try {
      const w = await t.log.waitFor((l) => l.level === 'warn');
      assert.equal(w.message, 'file named by a boot rule is not in the HTTP root');
      assert.equal(w.file, 'nope/linux');
    } finally {
      await t.daemon.close();
      client.close();
    }
  });
});
