import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { have } from '../helpers/netns.js';
import { Nginx } from '../helpers/nginx.js';
import { BIOS_UPSTREAM } from './clients.js';
import { bootClient, diagnostics, formatTimings, problems, CLIENT_TIMEOUT_MS } from './scenario.js';
import { assembleTftpRoot, missingFiles, NET } from './tftproot.js';
import { Lan, missingTools, REPO, serverArgs } from './topology.js';

/** nginx on the router, where the daemon's `--upstream` points. */
const MIRROR_PORT = 8080;
const MIRROR_URL = `http://${NET.router}:${MIRROR_PORT}/`;

/**
 * Every file of the BIOS boot: those the client spec names (pxelinux.0, ldlinux.c32, the config,
 * the kernel ipxe.lkrn and the script it fetches), and the config's `UI menu.c32`, which prints the
 * marker, with the one library it loads (syslinux 6.04: libutil.c32; libcom32 is in ldlinux.c32).
 */
const BOOT_FILES = [...BIOS_UPSTREAM.files, 'menu.c32', 'libutil.c32'];

/** Access log lines are written as each response ends: wait a little for the last ones. */
const ACCESS_LOG_WAIT_MS = 5_000;

/**
 * What nginx's access log says against "each boot file was downloaded once, whole": exactly one
 * GET per file, answered 200; and no other name downloaded twice. Empty when all is well.
 */
function mirrorProblems(access: string[], files: readonly string[]): string[] {
  const gets = access.map((l) => l.split(' ')).filter(([method]) => method === 'GET');
  const out: string[] = [];
  for (const f of files) {
    const mine = gets.filter(([, uri]) => uri === `/${f}`);
    if (mine.length !== 1 || mine[0]![2] !== '200') {
      out.push(`${f}: ${mine.length} GET(s) upstream (${mine.map((g) => g[2]).join(', ') || 'none'}), not one 200`);
    }
  }
  const seen = new Map<string, number>();
  for (const [, uri, status] of gets) if (status === '200') seen.set(uri!, (seen.get(uri!) ?? 0) + 1);
  for (const [uri, n] of seen) if (n > 1 && !files.includes(uri.slice(1))) out.push(`${uri} was downloaded ${n} times`);
  return out;
}

/**
 * The BIOS client (SeaBIOS + iPXE ROM) boots pxelinux from a daemon whose TFTP root is empty:
 * `--upstream` points at Debian's nginx-light on the router, which serves the same assembled boot
 * files as the other e2e clients use. Every file passes through the upstream cache; nginx's access
 * log shows each downloaded once, and the TFTP root stays empty. One boot, 30 to 60 seconds.
 */
describe('e2e: a BIOS client boots pxelinux entirely through --upstream', () => {
  let lan: Lan | undefined;
  let nginx: Nginx | undefined;
  let work = '';
  let tftpRoot = '';
  let figure = '';

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'the e2e tests need root (network namespaces, tap devices): run sudo make e2e');
    const missing = [
      ...missingTools(),
      ...(have('nginx') ? [] : ['nginx (Debian package nginx-light)']),
      ...missingFiles(),
    ];
    assert.deepEqual(missing, [], `missing tools or files; install them with make deps: ${missing.join(', ')}`);
    assert.ok(existsSync(join(REPO, 'dist/bin/pxe-pdhcp.js')), 'dist/bin/pxe-pdhcp.js is missing: run make build');
    work = mkdtempSync(join(tmpdir(), 'pxe-e2e-upstream-'));
    // The daemon (after dropping root to nobody) and nginx's workers (nobody) read below.
    chmodSync(work, 0o755);
    const mirror = join(work, 'mirror');
    assembleTftpRoot(mirror);
    tftpRoot = join(work, 'tftp');
    mkdirSync(tftpRoot, { mode: 0o755 });
    const nginxWork = join(work, 'nginx');
    mkdirSync(nginxWork, { mode: 0o755 });
    lan = await Lan.create({ work, tftpRoot, verbose: true });
    // Ctrl-C or a CI timeout: still end QEMU, nginx, dnsmasq and the daemon, and delete the namespaces.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => void lan?.cleanup().finally(() => process.exit(130)));
    }
    await lan.startRouter();
    nginx = await Nginx.start(lan.lab, lan.router.ns, {
      work: nginxWork,
      listen: `${NET.router}:${MIRROR_PORT}`,
      root: mirror,
    });
    // The daemon makes the cache directory and gives it to nobody before dropping root.
    await lan.startServer([...serverArgs(tftpRoot), '--upstream', MIRROR_URL, '--cache-dir', join(work, 'cache')]);
  });

  after(async () => {
    await nginx?.stop();
    await lan?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
    if (figure) console.log(`\nTimings (capture on the bridge):\n${figure}`);
  });

  it(BIOS_UPSTREAM.title, { timeout: CLIENT_TIMEOUT_MS + 60_000 }, async () => {
    assert.ok(lan && nginx, 'the LAN was not built');
    const run = await bootClient(lan, BIOS_UPSTREAM);
    figure = formatTimings(run);
    console.log(figure);
    const found = problems(lan, run);
    const mirror = nginx;
    const end = Date.now() + ACCESS_LOG_WAIT_MS;
    while (mirrorProblems(mirror.access(), BOOT_FILES).length > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const access = mirror.access();
    found.push(...mirrorProblems(access, BOOT_FILES));
    const left = readdirSync(tftpRoot);
    if (left.length > 0) found.push(`the TFTP root is not empty: ${left.join(', ')}`);
    assert.deepEqual(
      found,
      [],
      `${BIOS_UPSTREAM.name} did not boot through the upstream:\n- ${found.join('\n- ')}\n` +
        `--- nginx access log ---\n${access.join('\n')}\n--- nginx error log ---\n${mirror.errors()}\n` +
        diagnostics(lan, run),
    );
    console.log(`nginx access log (${MIRROR_URL}):\n${access.map((l) => `  ${l}`).join('\n')}`);
  });
});
