import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { summarize } from './capture.js';
import { CLIENT_NAMES, CLIENTS } from './clients.js';
import {
  bootBystander,
  bootClient,
  bystanderProblems,
  diagnostics,
  formatTimings,
  problems,
  CLIENT_TIMEOUT_MS,
} from './scenario.js';
import { assembleTftpRoot, missingFiles } from './tftproot.js';
import { Lan, MAC, missingTools, REPO } from './topology.js';

/**
 * Real PXE firmware (SeaBIOS + iPXE ROM, OVMF's EDK2 PXE, iPXE chainloaded, OVMF with Secure Boot
 * through shim and GRUB, AAVMF on ARM64) boots through our built daemon beside dnsmasq acting as a
 * home router's DHCP server with no PXE options; an ordinary DHCP client on the same LAN hears
 * nothing from us. One configuration file, test/e2e/mixed-lab.json, serves them all. The clients
 * boot one after the other: about 4 minutes in all on 2 cores without KVM, so nothing is gained by
 * running two TCG guests side by side on a machine other tests share.
 */
describe('e2e: real PXE firmware boots through pxe-pdhcp', () => {
  let lan: Lan | undefined;
  let work = '';
  const figures: string[] = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'the e2e tests need root (network namespaces, tap devices): run sudo make e2e');
    const missing = [...missingTools(), ...missingFiles()];
    assert.deepEqual(missing, [], `missing tools or files; install them with make deps: ${missing.join(', ')}`);
    assert.ok(existsSync(join(REPO, 'dist/bin/pxe-pdhcp.js')), 'dist/bin/pxe-pdhcp.js is missing: run make build');
    work = mkdtempSync(join(tmpdir(), 'pxe-e2e-'));
    chmodSync(work, 0o755); // the daemon reads the TFTP root inside after dropping root
    const tftpRoot = join(work, 'tftp');
    assembleTftpRoot(tftpRoot);
    lan = await Lan.create({ work, tftpRoot, verbose: true });
    // Ctrl-C or a CI timeout: still end QEMU, dnsmasq and the daemon, and delete the namespaces.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => void lan?.cleanup().finally(() => process.exit(130)));
    }
    await lan.startRouter();
    await lan.startServer();
  });

  after(async () => {
    await lan?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
    if (figures.length > 0) console.log(`\nTimings (capture on the bridge):\n${figures.join('\n')}`);
  });

  for (const name of CLIENT_NAMES) {
    const spec = CLIENTS[name];
    it(spec.title, { timeout: CLIENT_TIMEOUT_MS + 60_000 }, async () => {
      assert.ok(lan, 'the LAN was not built');
      const run = await bootClient(lan, spec);
      const text = formatTimings(run);
      figures.push(text);
      console.log(text);
      const found = problems(lan, run);
      assert.deepEqual(found, [], `${spec.name} did not boot:\n- ${found.join('\n- ')}\n${diagnostics(lan, run)}`);
    });
  }

  it(
    'bystander: busybox udhcpc gets its lease from the router and not one packet from us',
    { timeout: 120_000 },
    async () => {
      assert.ok(lan, 'the LAN was not built');
      const run = await bootBystander(lan);
      const found = bystanderProblems(run, MAC.bystander, MAC.server);
      const log = lan.daemon.lines
        .slice(run.logFrom)
        .map((l) => l.text)
        .join('\n');
      assert.deepEqual(
        found,
        [],
        `bystander:\n- ${found.join('\n- ')}\n--- capture ---\n${summarize(run.frames, run.t0)}\n--- pxe-pdhcp log ---\n${log}\n--- udhcpc ---\n${run.output}`,
      );
    },
  );
});
