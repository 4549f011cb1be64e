/**
 * `pxe-probe --status` in network namespaces, the built commands end to end: a PXE-less dnsmasq as
 * the router; the daemon with `--upstream` (a mirror on its host), `--decide-url` (a decision
 * service on its host) and `--metrics` on its LAN address; the probe on a client host fetches the
 * pxelinux chain and reads the daemon's /status. It must show that the decision URL chose the boot
 * file (or that the rules answered after it failed), and for each file whether it was local, a
 * cache miss or a cache hit; a status URL with nothing behind it is a warning, not a failure.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ProbeResult } from '../../src/probe/run.js';
import { have, Lab, startRouter, waitForOutput, type Host } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROBE = join(ROOT, 'dist/bin/pxe-probe.js');
const DAEMON = join(ROOT, 'dist/bin/pxe-pdhcp.js');

const CLIENT_MAC = '52:54:00:7d:00:01';
const BROKEN_MAC = '52:54:00:7d:00:02';
const STATUS = 'http://10.81.0.2:9187';
const DECIDE = 'http://127.0.0.1:8000/pxe';

/** The mirror: files of a directory over HTTP on 127.0.0.1:8081, 404 for the rest. */
const MIRROR_JS = `
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
const dir = process.argv[2];
createServer(async (req, res) => {
  const name = decodeURIComponent(req.url.split('?')[0]).replace(/^\\/+/, '');
  if (name.includes('..')) return res.writeHead(404).end();
  try {
    const body = await readFile(join(dir, name));
    res.writeHead(200, { 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404).end();
  }
}).listen(8081, '127.0.0.1', () => console.log('mirror ready'));
`;

/** The decision service on 127.0.0.1:8000: pxelinux.0 for the client, an error for BROKEN_MAC, 404 else. */
const DECIDE_JS = `
import { createServer } from 'node:http';
createServer((req, res) => {
  const mac = new URL(req.url, 'http://x').searchParams.get('mac');
  if (mac === '${CLIENT_MAC}') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ file: 'pxelinux.0' }));
  }
  res.writeHead(mac === '${BROKEN_MAC}' ? 503 : 404).end();
}).listen(8000, '127.0.0.1', () => console.log('decide ready'));
`;

for (const tool of ['ip', 'dnsmasq']) {
  if (!have(tool)) throw new Error(`${tool} is not installed (Debian packages iproute2, dnsmasq-base)`);
}

describe('pxe-probe --status against the daemon with --upstream and --decide-url (namespaces)', () => {
  let lab: Lab;
  let client: Host;
  let dir: string;

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'network namespaces need root');
    dir = mkdtempSync(join(tmpdir(), 'probe-status-'));
    chmodSync(dir, 0o755); // the daemon reads as nobody
    const root = join(dir, 'tftp');
    const mirror = join(dir, 'mirror');
    for (const d of [root, join(root, 'pxelinux.cfg'), mirror]) mkdirSync(d, { mode: 0o755 });
    // Local: what an administrator keeps (ldlinux beside the NBP, the config); the rest from the mirror.
    writeFileSync(join(root, 'ldlinux.c32'), randomBytes(2000), { mode: 0o644 });
    writeFileSync(
      join(root, 'pxelinux.cfg', 'default'),
      'DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img\n',
      { mode: 0o644 },
    );
    writeFileSync(join(mirror, 'pxelinux.0'), randomBytes(30_000));
    writeFileSync(join(mirror, 'vmlinuz'), randomBytes(400_000));
    writeFileSync(join(mirror, 'initrd.img'), randomBytes(300_000));
    writeFileSync(join(dir, 'mirror.mjs'), MIRROR_JS);
    writeFileSync(join(dir, 'decide.mjs'), DECIDE_JS);

    lab = await Lab.create('pstat');
    const router = await lab.addHost('rtr', '10.81.0.1/24');
    const server = await lab.addHost('srv', '10.81.0.2/24');
    client = await lab.addHost('cli', null, CLIENT_MAC);
    await startRouter(lab, router.ns, '10.81.0.100,10.81.0.150', join(dir, 'leases'));
    await waitForOutput(lab.spawn(server.ns, process.execPath, [join(dir, 'mirror.mjs'), mirror]), /ready/, 10_000);
    await waitForOutput(lab.spawn(server.ns, process.execPath, [join(dir, 'decide.mjs')]), /ready/, 10_000);
    const daemon = lab.spawn(server.ns, process.execPath, [
      ...[DAEMON, '-d', '-i', 'eth0', '--tftp-root', root],
      ...['--upstream', 'http://127.0.0.1:8081/', '--cache-dir', join(dir, 'cache')],
      ...['--decide-url', DECIDE, '--metrics', '10.81.0.2:9187'],
      'pxelinux.0',
    ]);
    await waitForOutput(daemon, /metrics listening/, 15_000);
  });
  after(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function probe(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const r = await lab.exec(client.ns, process.execPath, [PROBE, '-i', 'eth0', '--timeout', '2', ...args], 90_000);
    return { ...r, stderr: r.stderr.replace(/.*nodedir.*\n?/g, '') };
  }
  async function probeJson(...args: string[]): Promise<{ code: number; result: ProbeResult }> {
    const r = await probe('--json', ...args);
    assert.equal(r.stderr, '', 'no stderr');
    return { code: r.code, result: JSON.parse(r.stdout) as ProbeResult };
  }
  const origins = (r: ProbeResult): [string, string | undefined][] => r.fetch!.transfers.map((t) => [t.file, t.origin]);

  it('first boot: the decision URL chose pxelinux.0; the mirrored files were cache misses, the others local', async () => {
    const { code, result } = await probeJson('--fetch', '--status', STATUS);
    assert.equal(code, 0, JSON.stringify(result.findings));
    assert.deepEqual(result.findings, []);
    assert.ok(result.status?.ok, JSON.stringify(result.status));
    const c = result.status.client!;
    assert.equal(c.decidedBy, 'decide-url');
    assert.equal(c.rule, 'decide-url (file=pxelinux.0)');
    assert.equal(c.file, 'pxelinux.0');
    assert.deepEqual([c.decide?.url, c.decide?.status, c.decide?.outcome], [DECIDE, 200, 'answer']);
    assert.deepEqual(origins(result), [
      ['pxelinux.0', 'cache-miss'],
      ['ldlinux.c32', 'local'],
      ['pxelinux.cfg/default', 'local'],
      ['vmlinuz', 'cache-miss'],
      ['initrd.img', 'cache-miss'],
    ]);
  });

  it('second boot, as text: the same decision, the mirrored files now cache hits', async () => {
    const r = await probe('--fetch', '--status', STATUS);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    const shown = lines.filter((l) => /^Decided by: |\[(local|cache hit|cache miss|unknown source)\]$/.test(l));
    process.stdout.write(shown.map((l) => `# ${l}\n`).join(''));
    assert.match(
      r.stdout,
      /^Decided by: decide-url http:\/\/127\.0\.0\.1:8000\/pxe \(HTTP 200 in \d+ ms\): file=pxelinux\.0 \[port 67, file pxelinux\.0\]$/m,
    );
    assert.match(r.stdout, /^ {2}boot file pxelinux\.0: .* \[cache hit\]$/m);
    assert.match(r.stdout, /^ {2}ldlinux {3}ldlinux\.c32: .* \[local\]$/m);
    assert.match(r.stdout, /^ {2}config {4}pxelinux\.cfg\/default: .* \[local\]$/m);
    assert.match(r.stdout, /^ {2}kernel {4}vmlinuz: .* \[cache hit\]$/m);
    assert.match(r.stdout, /^ {2}initrd {4}initrd\.img: .* \[cache hit\]$/m);
    assert.match(r.stdout, /RESULT: OK/);
  });

  it('a machine the decision URL fails for: the local rules answered, and a warning says so', async () => {
    const { code, result } = await probeJson('--mac', BROKEN_MAC, '--status', STATUS);
    assert.equal(code, 0, JSON.stringify(result.findings));
    assert.ok(result.status?.ok);
    assert.equal(result.status.client?.decidedBy, 'fallback');
    assert.equal(result.status.client?.decide?.status, 503);
    assert.deepEqual(
      result.findings.map((f) => f.code),
      ['decide-url-fell-back'],
    );
  });

  it('a status URL with nothing behind it: one warning, the boot still judged on its own, no stack', async () => {
    const { code, result } = await probeJson('--fetch', '--status', 'http://10.81.0.2:9999');
    assert.equal(code, 0, JSON.stringify(result.findings));
    assert.equal(result.status?.ok, false);
    assert.deepEqual(
      result.findings.map((f) => f.code),
      ['status-unreadable'],
    );
    assert.ok(result.fetch!.transfers.every((t) => t.origin === 'unknown'));
    const text = await probe('--status', 'http://10.81.0.2:9999');
    assert.equal(text.code, 0, text.stdout);
    assert.equal(text.stderr, '');
    const line = text.stdout.split('\n').find((l) => l.startsWith('Decided by: '));
    process.stdout.write(`# ${line}\n`);
    assert.match(
      line ?? '',
      /^Decided by: unknown \(status http:\/\/10\.81\.0\.2:9999\/status not read: connect ECONNREFUSED 10\.81\.0\.2:9999\)$/,
    );
    assert.match(
      text.stdout,
      /^WARNING: The daemon's status page http:\/\/10\.81\.0\.2:9999\/status could not be read/m,
    );
  });
});
