/**
 * The built daemon with `--http` beside a PXE-less dnsmasq, and the built `pxe-probe` as the client,
 * in network namespaces: an iPXE gets its generated script and fetches kernel and initrd over HTTP;
 * UEFI HTTP Boot (`--http-client`) gets an HTTPClient offer and fetches its URL.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ProbeResult } from '../../src/probe/run.js';
import { have, Lab, startRouter, waitForOutput, type Host } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROBE = join(ROOT, 'dist/bin/pxe-probe.js');
const DAEMON = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

for (const tool of ['ip', 'dnsmasq']) {
  if (!have(tool)) throw new Error(`${tool} is not installed (Debian packages iproute2, dnsmasq-base)`);
}

describe('pxe-probe against the daemon’s HTTP server (namespaces)', () => {
  let lab: Lab;
  let router: Host;
  let server: Host;
  let client: Host;
  let root: string;
  const files = { efi: randomBytes(50_000), kernel: randomBytes(900_000), initrd: randomBytes(2_000_000) };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'http-probe-'));
    chmodSync(root, 0o755); // the daemon reads as nobody
    mkdirSync(join(root, 'debian'), { mode: 0o755 });
    writeFileSync(join(root, 'ipxe.efi'), files.efi, { mode: 0o644 });
    writeFileSync(join(root, 'undionly.kpxe'), randomBytes(1000), { mode: 0o644 });
    writeFileSync(join(root, 'debian', 'linux'), files.kernel, { mode: 0o644 });
    writeFileSync(join(root, 'debian', 'initrd.gz'), files.initrd, { mode: 0o644 });
    lab = await Lab.create('hprobe');
    router = await lab.addHost('rtr', '10.79.0.1/24');
    server = await lab.addHost('srv', '10.79.0.2/24');
    client = await lab.addHost('cli', null, '52:54:00:7b:00:01');
    const leases = join(root, 'leases');
    await startRouter(lab, router.ns, '10.79.0.100,10.79.0.150', leases);
    const daemon = lab.spawn(server.ns, process.execPath, [
      ...[DAEMON, '-d', '-i', 'eth0', '--tftp-root', root, '--http-boot', '--http-port', '8080'],
      ...['--boot', 'arch=efi-x64-http,file=ipxe.efi'],
      ...['--boot', 'user-class=iPXE,kernel=debian/linux,initrd=debian/initrd.gz,cmdline=auto=true priority=critical'],
      'undionly.kpxe',
    ]);
    await waitForOutput(daemon, /HTTP server listening/, 15_000);
  });
  after(async () => {
    await lab?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  async function probe(...args: string[]): Promise<{ code: number; result: ProbeResult }> {
    const r = await lab.exec(
      client.ns,
      process.execPath,
      [PROBE, '-i', 'eth0', '--timeout', '2', '--json', ...args],
      90_000,
    );
    return { code: r.code, result: JSON.parse(r.stdout) as ProbeResult };
  }

  it('--user-class iPXE --fetch: the generated script, then kernel and initrd over HTTP', async () => {
    const { code, result } = await probe('--arch', 'efi-x64', '--user-class', 'iPXE', '--fetch');
    assert.equal(code, 0, JSON.stringify(result.findings));
    assert.match(result.final!.file, /^http:\/\/10\.79\.0\.2:8080\/pxe-pdhcp\/boot\/52-54-00-7b-00-01\.ipxe\?arch=7/);
    const t = result.fetch!.transfers;
    assert.deepEqual(
      t.map((x) => [x.role, x.ok]),
      [
        ['script', true],
        ['kernel', true],
        ['initrd', true],
      ],
    );
    assert.equal(t[1]!.file, 'http://10.79.0.2:8080/debian/linux');
    assert.equal(t[1]!.sha256, sha(files.kernel));
    assert.equal(t[2]!.sha256, sha(files.initrd));
    assert.equal(t[2]!.bytes, files.initrd.length);
  });

  it('--http-client --fetch: an HTTPClient offer with a URL, and the file over HTTP', async () => {
    const { code, result } = await probe('--http-client', '--fetch');
    assert.equal(code, 0, JSON.stringify(result.findings));
    const proxy = result.offers.find((o) => o.kind === 'proxy');
    assert.equal(proxy?.httpClient, true);
    assert.equal(proxy?.bootFile, 'http://10.79.0.2:8080/ipxe.efi');
    assert.equal(result.fetch!.transfers[0]!.sha256, sha(files.efi));
  });
});
