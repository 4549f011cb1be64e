import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { PxeEvent } from '../../src/core/events.js';
import { have, Lab, startRouter } from '../helpers/netns.js';
import { BUILT_MAIN } from '../helpers/process.js';
import { pattern, tempRoot } from '../helpers/tftp.js';

// test/make/Makefile: the daemon as a step of a build, ended by --exit-after once a client has
// fetched the boot file (exit 0), or by --exit-timeout (exit 1, so make fails). The built daemon
// (`make build` first); curl on loopback, and pxe-probe --fetch in network namespaces (root).

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAKEFILE = join(ROOT, 'test/make/Makefile');
const PROBE = join(ROOT, 'dist/bin/pxe-probe.js');
const root = tempRoot({ 'pxelinux.0': pattern(30_000, 9) });
chmodSync(root.dir, 0o755); // read as nobody after the privilege drop
const work = tempRoot();

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Run the Makefile's target; resolves with make's status and output. */
async function make(vars: Record<string, string>): Promise<{ code: number; out: string }> {
  const args = ['-f', MAKEFILE, 'boot-until-fetched', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)];
  try {
    const r = await run('make', args, { cwd: work.dir, timeout: 90_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const events = (file: string): PxeEvent[] =>
  readFileSync(join(work.dir, file), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as PxeEvent);

describe('test/make/Makefile: --exit-after as a build step', () => {
  after(() => {
    root.remove();
    work.remove();
  });

  const loopback = (tftpPort: number): string =>
    `-l 127.0.0.1 -t 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 --tftp-port ${tftpPort} --tftp-root ${root.dir} pxelinux.0`;

  it('succeeds once a client has fetched pxelinux.0 (curl over TFTP on loopback)', async () => {
    assert.ok(existsSync(BUILT_MAIN), 'run make build first');
    const port = await freeUdpPort();
    const r = await make({
      PXE_PDHCP: `${process.execPath} ${BUILT_MAIN}`,
      ARGS: loopback(port),
      CLIENT: `curl -s -o /dev/null tftp://127.0.0.1:${port}/pxelinux.0`,
      FETCHED: 'pxelinux.0',
      TIMEOUT: '30',
      EVENTS: 'loopback.jsonl',
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /pxe-pdhcp exited 0 after \d+ events/);
    const done = events('loopback.jsonl').filter((e) => e.type === 'transfer-done');
    assert.equal(done.length, 1);
    assert.ok('file' in done[0]! && done[0].file === 'pxelinux.0');
  });

  it('fails at the deadline when nobody fetches it', async () => {
    const port = await freeUdpPort();
    const t0 = Date.now();
    const r = await make({
      PXE_PDHCP: `${process.execPath} ${BUILT_MAIN}`,
      ARGS: loopback(port),
      CLIENT: 'true',
      TIMEOUT: '2',
      EVENTS: 'deadline.jsonl',
    });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /pxe-pdhcp exited 1/);
    assert.ok(Date.now() - t0 >= 2000);
  });

  it('succeeds once pxe-probe --fetch has booted through it (network namespaces, root)', async () => {
    // test/process is the root ring: without root or dnsmasq this fails, it never skips.
    assert.equal(process.getuid?.(), 0, 'this test must run as root (make test does)');
    assert.ok(have('dnsmasq'), 'dnsmasq is not installed (make deps installs it)');
    const lab = await Lab.create('mkexit');
    try {
      const router = await lab.addHost('rtr', '10.79.0.1/24');
      const server = await lab.addHost('srv', '10.79.0.2/24');
      const client = await lab.addHost('cli', null, '52:54:00:7b:00:01');
      const dnsmasq = await startRouter(lab, router.ns, '10.79.0.100,10.79.0.150', join(work.dir, 'leases'));
      const r = await make({
        PXE_PDHCP: `ip netns exec ${server.ns} ${process.execPath} ${BUILT_MAIN}`,
        ARGS: `-i eth0 --tftp-root ${root.dir} pxelinux.0`,
        CLIENT: `ip netns exec ${client.ns} ${process.execPath} ${PROBE} -i eth0 --fetch --timeout 3`,
        TIMEOUT: '60',
        EVENTS: 'netns.jsonl',
      });
      await lab.stop(dnsmasq);
      assert.equal(r.code, 0, `${r.out}\n${readFileSync(join(work.dir, 'boot-daemon.log'), 'utf8')}`);
      const types = events('netns.jsonl').map((e) => `${e.type}${e.mac ? ` ${e.mac}` : ''}`);
      assert.ok(types.includes('offer 52:54:00:7b:00:01'), types.join(', '));
      // The daemon learnt the probe's address from its DHCPREQUEST to dnsmasq: TFTP events carry its MAC.
      assert.ok(types.includes('transfer-done 52:54:00:7b:00:01'), types.join(', '));
    } finally {
      await lab.cleanup();
    }
  });
});
