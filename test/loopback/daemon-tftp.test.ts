import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../src/cli/args.js';
import type { Config } from '../../src/daemon/config.js';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { decodeDhcp } from '../../src/wire/dhcp-packet.js';
import { startTestDaemon, TestClient, type TestDaemon } from '../helpers/daemon.js';
import { have } from '../helpers/netns.js';
import { fixture } from '../helpers/packets.js';
import { pattern, tempRoot } from '../helpers/tftp.js';

const run = promisify(execFile);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const NBP = pattern(200_000, 21);
const root = tempRoot({ 'pxelinux.0': NBP });
const empty = tempRoot();
const out = tempRoot();

/**
 * A config from a real command line (so `--no-tftp` and `-t` go through the CLI), on loopback with
 * ephemeral DHCP ports; replies go to `clientPort`.
 */
function cliConfig(args: string, clientPort: number): Config {
  const base = '-d -l 127.0.0.1 -b 127.0.0.1 --bind-address 127.0.0.1 --dhcp-port 0 --proxy-port 0 --log-level debug';
  const r = parseArgs(`${base} --client-port ${clientPort} ${args}`.split(' ').filter(Boolean));
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

/** A UDP port on 127.0.0.1 that is free right now. */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(r));
  return port;
}

/** True when nothing holds `port` on 127.0.0.1 (we can bind it ourselves). */
async function portFree(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

const warnings = (t: TestDaemon): Record<string, unknown>[] => t.lines.filter((l) => l.level === 'warn');

/**
 * Send a BIOS ROM's DISCOVER to the daemon's port 67 socket and return the proxy offer (a BIOS offer
 * names the TFTP server in siaddr; a BINL-shaped UEFI offer names us instead).
 */
async function discover(t: TestDaemon, client: TestClient): Promise<ReturnType<typeof decodeDhcp>> {
  const start = client.received.length;
  await client.send(fixture('ipxe-bios-rom-discover'), t.daemon.ports.dhcp[0]!);
  await client.waitFor(start + 1);
  const offer = decodeDhcp(client.received[start]!.msg);
  assert.deepEqual([...offer.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.OFFER]);
  return offer;
}

void describe('the daemon with its bundled TFTP server (loopback)', () => {
  let client: TestClient;
  before(async () => {
    assert.ok(have('curl'), 'curl is not installed (CI installs it: see .ci/run)');
    client = await TestClient.open();
  });
  after(() => {
    client.close();
    root.remove();
    empty.remove();
    out.remove();
  });

  void it('binds ports.tftp and serves the NBP to curl with the right sha256', async () => {
    const t = await startTestDaemon(
      cliConfig(`-t 127.0.0.1 --tftp-root ${root.dir} --tftp-port 0 pxelinux.0`, client.port),
    );
    try {
      assert.equal(t.daemon.ports.tftp.length, 1);
      const port = t.daemon.ports.tftp[0]!;
      assert.ok(port > 0);
      assert.ok(!(await portFree(port)), 'the TFTP port is held by the daemon');
      const dest = join(out.dir, 'pxelinux.0');
      await run(
        'curl',
        ['-sS', '--max-time', '30', '--tftp-blksize', '1468', '-o', dest, `tftp://127.0.0.1:${port}/pxelinux.0`],
        { timeout: 40_000 },
      );
      assert.equal(sha(readFileSync(dest)), sha(NBP));
      assert.equal(warnings(t).length, 0, 'the NBP is in the root: no start-up warning');
      assert.ok(t.lines.some((l) => l.message === 'TFTP server listening' && l.ports === String(port)));
      const done = t.lines.find((l) => l.message === 'TFTP transfer complete');
      assert.ok(done, 'one info line per finished transfer');
      assert.equal(done.level, 'info');
      assert.equal(done.file, 'pxelinux.0');
      assert.equal(done.bytes, NBP.length);
      assert.equal(done.blksize, 1468);
    } finally {
      await t.daemon.close();
    }
  });

  void it('a TFTP port already in use: exactly one warning, and proxyDHCP still answers', async () => {
    const holder: Socket = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
    const taken = holder.address().port;
    try {
      const t = await startTestDaemon(
        cliConfig(`-t 127.0.0.1 --tftp-root ${root.dir} --tftp-port ${taken} pxelinux.0`, client.port),
      );
      try {
        assert.deepEqual(t.daemon.ports.tftp, []);
        const w = warnings(t);
        assert.equal(w.length, 1, `one warning line, got ${JSON.stringify(w)}`);
        assert.match(String(w[0]!.message), /already in use/);
        assert.match(String(w[0]!.message), /proxyDHCP/);
        assert.ok(!t.lines.some((l) => l.level === 'error'), 'no error lines');
        const offer = await discover(t, client);
        assert.equal(offer.nextServer, '127.0.0.1');
      } finally {
        await t.daemon.close();
      }
    } finally {
      holder.close();
    }
  });

  void it('-t naming a foreign address: TFTP is not started, clients are sent there', async () => {
    const port = await freePort();
    const t = await startTestDaemon(
      cliConfig(`-t 192.0.2.10 --tftp-root ${root.dir} --tftp-port ${port} pxelinux.0`, client.port),
    );
    try {
      assert.deepEqual(t.daemon.ports.tftp, []);
      assert.ok(await portFree(port), 'nothing listens on the TFTP port');
      const line = t.lines.find((l) => l.message === 'TFTP server not started');
      assert.ok(line);
      assert.match(String(line.reason), /192\.0\.2\.10/);
      assert.equal(warnings(t).length, 0);
      assert.equal((await discover(t, client)).nextServer, '192.0.2.10');
    } finally {
      await t.daemon.close();
    }
  });

  void it('--no-tftp: TFTP is not started', async () => {
    const port = await freePort();
    const config = cliConfig(
      `-t 127.0.0.1 --no-tftp --tftp-root ${root.dir} --tftp-port ${port} pxelinux.0`,
      client.port,
    );
    assert.equal(config.tftp.enabled, false);
    const t = await startTestDaemon(config);
    try {
      assert.deepEqual(t.daemon.ports.tftp, []);
      assert.ok(await portFree(port), 'nothing listens on the TFTP port');
      const line = t.lines.find((l) => l.message === 'TFTP server not started');
      assert.match(String(line?.reason), /--no-tftp/);
      assert.equal((await discover(t, client)).nextServer, '127.0.0.1');
    } finally {
      await t.daemon.close();
    }
  });

  void it('an NBP missing from the root gives one start-up warning naming it', async () => {
    const t = await startTestDaemon(
      cliConfig(`-t 127.0.0.1 --tftp-root ${empty.dir} --tftp-port 0 bootx64.efi`, client.port),
    );
    try {
      assert.equal(t.daemon.ports.tftp.length, 1, 'the server runs all the same');
      // The check runs after the privilege drop, beside serving: wait for its line, then count.
      await t.log.waitFor((l) => l.message === 'boot file is not in the TFTP root');
      const w = warnings(t);
      assert.equal(w.length, 1, `one warning line, got ${JSON.stringify(w)}`);
      assert.equal(w[0]!.message, 'boot file is not in the TFTP root');
      assert.equal(w[0]!.file, 'bootx64.efi');
      assert.equal(w[0]!.root, empty.dir);
    } finally {
      await t.daemon.close();
    }
  });
});
