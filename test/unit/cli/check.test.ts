import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import { checkReport, runCheck, type CheckDeps, type CheckLine } from '../../../src/cli/check.js';
import type { Config } from '../../../src/daemon/config.js';
import { FileRoot } from '../../../src/files/root.js';
import { fakeInterfaces } from '../../helpers/interfaces.js';
import { tempRoot } from '../../helpers/tftp.js';

const root = tempRoot({ 'pxelinux.0': 'boot', 'syslinux.efi': 'efi!!' });
const outside = tempRoot({ secret: 'do not serve' });
mkdirSync(join(root.dir, 'sub'));
writeFileSync(join(root.dir, 'sub', 'ldlinux.c32'), 'c32');
symlinkSync(join(outside.dir, 'secret'), join(root.dir, 'escape'));
symlinkSync(outside.dir, join(root.dir, 'outdir'));
symlinkSync('sub/ldlinux.c32', join(root.dir, 'inner'));
execFileSync('mkfifo', [join(root.dir, 'fifo')]);
writeFileSync(join(root.dir, 'locked'), 'x');
chmodSync(join(root.dir, 'locked'), 0o000);
after(() => {
  root.remove();
  outside.remove();
});

const interfaces = fakeInterfaces({
  eth0: { v4: { address: '192.168.1.10', netmask: '255.255.255.0' }, sys: { ifindex: '2', mtu: '1500' } },
});
const free: CheckDeps = { interfaces, portHolders: () => [] };

function config(argv: string[], patch: Partial<Config> = {}): Config {
  const r = parseArgs(argv);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return { ...r.config, ...patch };
}

/** The config of `pxe-pdhcp -i eth0 --tftp-root <root> <nbp>`. */
function serving(nbp: string, patch: Partial<Config> = {}): Config {
  return config(['-i', 'eth0', '--tftp-root', root.dir, nbp], patch);
}

function texts(lines: CheckLine[]): string[] {
  return lines.map((l) => `${l.ok ? 'ok' : 'FAIL'} ${l.text}`);
}

/** The one line about boot file `nbp`. */
async function bootLine(nbp: string): Promise<CheckLine> {
  const lines = (await runCheck(serving(nbp), free)).filter((l) => l.text.startsWith('boot file '));
  assert.equal(lines.length, 1, JSON.stringify(lines));
  return lines[0]!;
}

describe('--check on a good setup', () => {
  it('reports every item ok, in order, and passes', async () => {
    const lines = await runCheck(serving('pxelinux.0'), free);
    assert.deepEqual(texts(lines), [
      'ok configuration parses',
      'ok interface eth0: 192.168.1.10/255.255.255.0, mtu 1500',
      'ok UDP port 67 (proxyDHCP) is free',
      'ok UDP port 4011 (PXE boot server) is free',
      'ok UDP port 69 (TFTP) is free',
      `ok TFTP root ${root.dir} is a readable directory`,
      'ok boot file pxelinux.0 is readable (4 bytes)',
    ]);
    assert.match(checkReport(lines), /^ok {3}configuration parses\n[^]*\ncheck passed\n$/);
  });

  it('checks every file of the boot rules once, and skips URLs', async () => {
    const c = config([
      '-i',
      'eth0',
      '--tftp-root',
      root.dir,
      '--boot',
      'arch=efi-x64,file=syslinux.efi',
      '--boot',
      'arch=efi-x64,user-class=iPXE,file=http://10.0.0.1/boot.ipxe',
      '--boot',
      'mac=52:54:00:12:34:56,file=pxelinux.0',
      'pxelinux.0',
    ]);
    const lines = texts(await runCheck(c, free)).filter((t) => t.includes('boot file'));
    assert.deepEqual(lines, [
      'ok boot file pxelinux.0 is readable (4 bytes)',
      'ok boot file syslinux.efi is readable (5 bytes)',
      'ok boot file http://10.0.0.1/boot.ipxe is a URL: not checked',
    ]);
  });

  it('names the config file it parsed', async () => {
    const lines = await runCheck(serving('pxelinux.0', { configFile: '/etc/pxe-pdhcp.json' }), free);
    assert.equal(lines[0]!.text, 'configuration parses (/etc/pxe-pdhcp.json)');
  });
});

describe('--check reports what would stop the server', () => {
  it('a missing interface and a listen address that is not ours', async () => {
    const c = config(['-i', 'eth0', '-i', 'eth9', '-l', '192.168.1.99', '--tftp-root', root.dir, 'pxelinux.0']);
    const lines = texts(await runCheck(c, free));
    assert.ok(lines.includes('FAIL interface eth9 does not exist'), lines.join('\n'));
    assert.ok(lines.includes('FAIL listen address 192.168.1.99 is not an address of this host'), lines.join('\n'));
    const ours = texts(await runCheck(serving('pxelinux.0', { listenAddress: '192.168.1.10' }), free));
    assert.ok(ours.includes('ok listen address 192.168.1.10 is ours'));
  });

  it('ports in use, naming each holder once, or saying it may not be inspected', async () => {
    const deps: CheckDeps = {
      interfaces,
      portHolders: (port) =>
        port === 67
          ? [
              { address: '0.0.0.0', owner: { pid: 42, name: 'dnsmasq' } },
              { address: '0.0.0.0', owner: { pid: 42, name: 'dnsmasq' } },
            ]
          : port === 69
            ? [{ address: '192.168.1.10' }]
            : [],
    };
    const lines = await runCheck(serving('pxelinux.0'), deps);
    assert.deepEqual(
      texts(lines).filter((t) => t.includes('UDP port')),
      [
        'FAIL UDP port 67 (proxyDHCP) is in use by dnsmasq (pid 42) on 0.0.0.0',
        'ok UDP port 4011 (PXE boot server) is free',
        'FAIL UDP port 69 (TFTP) is in use by a process we may not inspect (run as root to name it) on 192.168.1.10',
      ],
    );
    assert.match(checkReport(lines), /\ncheck failed: 2 problems\n$/);
  });

  it('asks about the configured ports, and not about TFTP when it is off', async () => {
    const asked: number[] = [];
    const deps: CheckDeps = { interfaces, portHolders: (p) => (asked.push(p), []) };
    const moved = serving('pxelinux.0');
    await runCheck({ ...moved, ports: { ...moved.ports, dhcp: 1067, proxy: 5011 } }, deps);
    assert.deepEqual(asked, [1067, 5011, 69]);
    asked.length = 0;
    const off = serving('pxelinux.0');
    const lines = await runCheck({ ...off, tftp: { ...off.tftp, enabled: false } }, deps);
    assert.deepEqual(asked, [67, 4011]);
    assert.equal(lines.at(-1)!.text, 'bundled TFTP off: not checking pxelinux.0 (served elsewhere)');
    assert.ok(lines.every((l) => l.ok));
  });

  it('a TFTP root that does not exist or is not a directory, and no boot-file lines after it', async () => {
    const missing = join(root.dir, 'nope');
    const a = await runCheck(config(['-i', 'eth0', '--tftp-root', missing, 'pxelinux.0']), free);
    assert.equal(texts(a).at(-1), `FAIL TFTP root ${missing} does not exist`);
    const file = join(root.dir, 'pxelinux.0');
    const b = await runCheck(config(['-i', 'eth0', '--tftp-root', file, 'pxelinux.0']), free);
    assert.equal(texts(b).at(-1), `FAIL TFTP root ${file} is not a directory`);
    assert.match(checkReport(b), /\ncheck failed: 1 problem\n$/);
  });
});

describe('--check judges boot files with the server resolver (FileRoot)', () => {
  const cases: [string, boolean, string][] = [
    ['pxelinux.0', true, 'is readable (4 bytes)'],
    ['/pxelinux.0', true, 'is readable (4 bytes)'],
    ['\\sub\\ldlinux.c32', true, 'is readable (3 bytes)'],
    ['inner', true, 'is readable (3 bytes)'],
    ['missing.efi', false, 'does not exist'],
    ['sub', false, 'is not a regular file'],
    ['fifo', false, 'is not a regular file'],
    ['escape', false, 'points outside the TFTP root'],
    ['outdir/secret', false, 'points outside the TFTP root'],
    ['../secret', false, "is not served: the server refuses names with '..' or control characters"],
    // The old check resolved `..` away and passed this; the server refuses it, so --check must too.
    ['sub/../pxelinux.0', false, "is not served: the server refuses names with '..' or control characters"],
  ];
  for (const [name, ok, words] of cases) {
    it(`${name} → ${ok ? 'ok' : 'FAIL'} ${words}`, async () => {
      assert.deepEqual(await bootLine(name), { ok, text: `boot file ${name} ${words}` });
    });
  }

  it('a symlink out of the root is reported as not served, though its target is readable', async () => {
    const line = await bootLine('escape');
    assert.equal(line.ok, false);
    const report = checkReport(await runCheck(serving('escape'), free));
    assert.match(report, /^FAIL boot file escape points outside the TFTP root$/m);
    assert.match(report, /\ncheck failed: 1 problem\n$/);
  });

  it('a `..` name is reported as not served, even when it would land inside the root', async () => {
    for (const name of ['../' + 'secret', 'sub/../pxelinux.0', '..\\pxelinux.0']) {
      const line = await bootLine(name);
      assert.equal(line.ok, false, name);
      assert.match(line.text, /is not served/);
    }
  });

  it('an unreadable file is not readable (unless we are root, who reads it)', async () => {
    const line = await bootLine('locked');
    if (process.getuid?.() === 0) assert.deepEqual(line, { ok: true, text: 'boot file locked is readable (1 bytes)' });
    else assert.deepEqual(line, { ok: false, text: 'boot file locked is not readable' });
  });

  it('passes exactly the names FileRoot opens', async () => {
    const files = new FileRoot(root.dir);
    for (const [name] of cases) {
      const opened = await files.open(name);
      if (opened.ok) await opened.file.close();
      assert.equal((await bootLine(name)).ok, opened.ok, name);
    }
  });
});
