import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ProbeResult } from '../../src/probe/run.js';
import { have, Lab, waitForOutput, type Host } from '../helpers/netns.js';

/** What dnsmasq (`DHCP, IP range …`, `DHCP, proxy on subnet …`) and pxe-pdhcp print once they serve. */
const READY = /DHCP, (IP range|proxy on subnet)|TFTP server listening|TFTP server not started/;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROBE = join(ROOT, 'dist/bin/pxe-probe.js');
const DAEMON = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

for (const tool of ['ip', 'dnsmasq', 'in.tftpd']) {
  if (!have(tool)) throw new Error(`${tool} is not installed (Debian packages iproute2, dnsmasq-base, tftpd-hpa)`);
}

describe('pxe-probe in network namespaces', () => {
  let lab: Lab;
  let router: Host;
  let server: Host;
  let client: Host;
  let checker: Host;
  let tftpRoot: string;
  const files = { nbp: randomBytes(20_000), kernel: randomBytes(700_000), initrd: randomBytes(300_000) };

  before(async () => {
    tftpRoot = mkdtempSync(join(tmpdir(), 'probe-tftp-'));
    chmodSync(tftpRoot, 0o755); // in.tftpd reads as nobody
    mkdirSync(join(tftpRoot, 'pxelinux.cfg'));
    writeFileSync(join(tftpRoot, 'pxelinux.0'), files.nbp);
    writeFileSync(join(tftpRoot, 'ldlinux.c32'), randomBytes(1000)); // fetched before any config
    writeFileSync(join(tftpRoot, 'vmlinuz'), files.kernel);
    writeFileSync(join(tftpRoot, 'initrd.img'), files.initrd);
    // A chain: the 01-MAC file only includes the real one.
    writeFileSync(join(tftpRoot, 'pxelinux.cfg/01-52-54-00-7a-00-09'), 'INCLUDE pxelinux.cfg/linux.cfg\n');
    writeFileSync(
      join(tftpRoot, 'pxelinux.cfg/linux.cfg'),
      'DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img quiet\n',
    );
    lab = await Lab.create('probe');
    router = await lab.addHost('rtr', '10.78.0.1/24');
    server = await lab.addHost('srv', '10.78.0.2/24');
    client = await lab.addHost('cli', null, '52:54:00:7a:00:09');
    // A host of its own for --check, so no transfer still draining on the server holds a port.
    checker = await lab.addHost('chk', '10.78.0.3/24');
  });
  after(async () => {
    await lab?.cleanup();
    rmSync(tftpRoot, { recursive: true, force: true });
  });

  async function withRouter<T>(extra: string[], body: () => Promise<T>): Promise<T> {
    const leases = join(tftpRoot, `leases-${Math.random()}`);
    const child = lab.spawn(router.ns, 'dnsmasq', [
      '-d',
      '-C',
      '/dev/null',
      '--port=0',
      '-i',
      'eth0',
      '--no-ping',
      '--dhcp-range=10.78.0.100,10.78.0.150,1h',
      `--dhcp-leasefile=${leases}`,
      ...extra,
    ]);
    await waitForOutput(child, READY, 10_000);
    try {
      return await body();
    } finally {
      await lab.stop(child);
    }
  }

  async function withProxy<T>(cmd: string, args: string[], body: () => Promise<T>): Promise<T> {
    const child = lab.spawn(server.ns, cmd, args);
    await waitForOutput(child, READY, 10_000);
    try {
      return await body();
    } finally {
      await lab.stop(child);
    }
  }

  async function probe(...args: string[]): Promise<{ code: number; result: ProbeResult }> {
    const r = await lab.exec(
      client.ns,
      process.execPath,
      [PROBE, '-i', 'eth0', '--timeout', '2', '--json', ...args],
      60_000,
    );
    assert.equal(r.stderr.replace(/.*nodedir.*\n?/g, ''), '', 'no stderr');
    const addrs = await lab.exec(client.ns, 'ip', ['-4', 'addr', 'show', 'dev', 'eth0']);
    assert.doesNotMatch(addrs.stdout, /inet /, 'the borrowed address is removed');
    return { code: r.code, result: JSON.parse(r.stdout) as ProbeResult };
  }

  const dnsmasqProxy = [
    '-d',
    '-C',
    '/dev/null',
    '--port=0',
    '-i',
    'eth0',
    '--dhcp-range=10.78.0.0,proxy',
    '--pxe-service=x86PC,Boot,pxelinux',
    '--pxe-service=x86-64_EFI,Boot,bootx64',
  ];

  it('against dnsmasq in proxy mode: menu, boot-server discovery on 4011, --fetch of a pxelinux chain with known sha256', async () => {
    await withRouter([], () =>
      withProxy('dnsmasq', [...dnsmasqProxy, '--enable-tftp', `--tftp-root=${tftpRoot}`], async () => {
        const { code, result } = await probe('--fetch');
        assert.equal(code, 0, JSON.stringify(result.findings));
        assert.equal(result.ok, true);
        const proxy = result.offers.find((o) => o.kind === 'proxy')!;
        assert.equal(proxy.vendorShape, 'menu');
        assert.equal(proxy.uuidEcho, 'echoed');
        assert.equal(result.lease?.acked, true);
        assert.equal(result.bootRequest?.answered, true);
        assert.equal(result.final?.file, 'pxelinux.0');
        assert.equal(result.released, true);
        const byFile = new Map(result.fetch!.transfers.map((t) => [t.file, t]));
        assert.equal(byFile.get('pxelinux.0')?.sha256, sha(files.nbp));
        assert.equal(byFile.get('vmlinuz')?.sha256, sha(files.kernel));
        assert.equal(byFile.get('initrd.img')?.sha256, sha(files.initrd));
        assert.equal(byFile.get('vmlinuz')?.tsize, files.kernel.length);
        assert.equal(result.fetch!.pxelinux?.config, 'pxelinux.cfg/01-52-54-00-7a-00-09');
        assert.deepEqual(
          result.fetch!.pxelinux?.searched.map((s) => s.found),
          [false, true],
        );
      }),
    );
  });

  it('against our own daemon and its bundled TFTP server (BIOS bypass, UEFI through 4011)', async () => {
    await withRouter([], () =>
      withProxy(process.execPath, [DAEMON, '-d', '-i', 'eth0', '--tftp-root', tftpRoot, 'pxelinux.0'], async () => {
        const bios = await probe('--fetch');
        assert.equal(bios.code, 0, JSON.stringify(bios.result.findings));
        assert.equal(bios.result.offers.find((o) => o.kind === 'proxy')?.vendorShape, 'bypass');
        assert.equal(bios.result.bootRequest, undefined);
        assert.equal(bios.result.fetch?.ok, true);
        assert.equal(bios.result.fetch?.transfers.find((t) => t.role === 'kernel')?.sha256, sha(files.kernel));
        const efi = await probe('--arch', 'efi-x64');
        assert.equal(efi.code, 0, JSON.stringify(efi.result.findings));
        assert.equal(efi.result.firmware, 'edk2');
        assert.equal(efi.result.bootRequest?.answered, true);
        assert.equal(efi.result.bootRequest?.sourcePort, 4011);
        assert.deepEqual(efi.result.final, { nextServer: '10.78.0.2', file: 'pxelinux.0', from: '10.78.0.2' });
      }),
    );
  });

  it('`sudo make run` as a new user runs it: LOCALBOOT default is a good boot (BIOS, UEFI); no ldlinux is an error', async () => {
    // The TFTP root `make run` builds (`make tftproot`: Debian's pxelinux, syslinux.efi, ldlinux.*,
    // a pxelinux.cfg/default whose default entry is LOCALBOOT 0), served with `make run`'s ARGS.
    const dir = mkdtempSync(join(tmpdir(), 'probe-make-tftproot-'));
    chmodSync(dir, 0o755);
    const root = join(dir, 'srv-tftp');
    try {
      execFileSync('make', ['-C', ROOT, '--no-print-directory', '-s', 'tftproot', `TFTP_ROOT=${root}`], {
        stdio: 'pipe',
      });
      const makeRun = [
        '-d',
        '-i',
        'eth0',
        '--tftp-root',
        root,
        '--boot',
        'arch=efi-x64,file=syslinux.efi',
        'pxelinux.0',
      ];
      await withRouter([], () =>
        withProxy(process.execPath, [DAEMON, ...makeRun], async () => {
          for (const [arch, ldlinux] of [
            ['bios', 'ldlinux.c32'],
            ['efi-x64', 'ldlinux.e64'],
          ] as const) {
            const { code, result } = await probe('--arch', arch, '--fetch');
            assert.equal(code, 0, `${arch}: ${JSON.stringify(result.findings)}`);
            assert.deepEqual(result.findings, []);
            const px = result.fetch?.pxelinux;
            assert.deepEqual(px?.ldlinux, { file: ldlinux, found: true });
            assert.equal(px?.config, 'pxelinux.cfg/default');
            assert.deepEqual(px?.entry, { label: 'local', initrd: [], localBoot: 0 });
            assert.deepEqual(
              result.fetch?.transfers.map((t) => t.role),
              ['boot file', 'ldlinux', 'config'],
            );
          }
          const text = await lab.exec(client.ns, process.execPath, [PROBE, '-i', 'eth0', '--timeout', '2', '--fetch']);
          assert.equal(text.code, 0, text.stdout);
          assert.match(text.stdout, /default entry: local boot/);
          assert.match(text.stdout, /RESULT: OK/);
          // The classic trap: pxelinux.0 without ldlinux.c32 beside it.
          rmSync(join(root, 'ldlinux.c32'));
          const bad = await probe('--fetch');
          assert.equal(bad.code, 1);
          assert.deepEqual(
            bad.result.findings.map((f) => f.code),
            ['tftp-file-missing', 'pxelinux-no-ldlinux'],
          );
          assert.deepEqual(bad.result.fetch?.pxelinux?.searched, []);
        }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with no proxy at all: exit 1, "no proxy" diagnosis', async () => {
    await withRouter([], async () => {
      const { code, result } = await probe();
      assert.equal(code, 1);
      assert.equal(result.lease?.acked, true);
      assert.ok(result.findings.some((f) => f.code === 'no-proxy'));
      assert.equal(result.released, true);
    });
  });

  it('with a router sending option 60 PXEClient: UEFI goes to the router on 4011 and fails; BIOS warns', async () => {
    await withRouter(['--dhcp-option-force=60,PXEClient'], () =>
      withProxy('dnsmasq', dnsmasqProxy, async () => {
        const efi = await probe('--arch', 'efi-x64');
        assert.equal(efi.code, 1);
        assert.equal(efi.result.bootRequest?.target, '10.78.0.1');
        assert.deepEqual(
          efi.result.findings.map((f) => f.code),
          ['router-sends-pxeclient', 'no-4011-answer'],
        );
        const bios = await probe();
        assert.equal(bios.code, 0);
        assert.ok(bios.result.findings.some((f) => f.code === 'router-sends-pxeclient'));
      }),
    );
  });

  it('--check passes on a good setup and fails naming the holder of port 67, a missing file and interface', async () => {
    const good = await lab.exec(checker.ns, process.execPath, [
      DAEMON,
      '--check',
      '-i',
      'eth0',
      '--tftp-root',
      tftpRoot,
      'pxelinux.0',
    ]);
    assert.equal(good.code, 0, good.stdout);
    assert.match(good.stdout, /check passed/);
    const holder = lab.spawn(checker.ns, 'dnsmasq', dnsmasqProxy);
    // dnsmasq prints its proxy line once its sockets (67 and 4011) are bound.
    await waitForOutput(holder, READY, 10_000);
    {
      const bad = await lab.exec(checker.ns, process.execPath, [
        DAEMON,
        '--check',
        '-i',
        'eth0',
        '-i',
        'eth9',
        '--tftp-root',
        tftpRoot,
        'missing.efi',
      ]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /FAIL UDP port 67 \(proxyDHCP\) is in use by dnsmasq \(pid \d+\)/);
      assert.match(bad.stdout, /FAIL interface eth9 does not exist/);
      assert.match(bad.stdout, /FAIL boot file missing.efi does not exist/);
      assert.match(bad.stdout, /FAIL UDP port 4011 \(PXE boot server\) is in use by dnsmasq/);
      assert.match(bad.stdout, /check failed: 4 problems/);
    }
    await lab.stop(holder);
    const noRoot = await lab.exec(checker.ns, process.execPath, [
      DAEMON,
      '--check',
      '-i',
      'eth0',
      '--tftp-root',
      join(tftpRoot, 'nope'),
      'pxelinux.0',
    ]);
    assert.equal(noRoot.code, 1);
    assert.match(noRoot.stdout, /FAIL TFTP root .*nope does not exist/);
  });
});
