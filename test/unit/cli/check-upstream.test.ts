import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import { runCheck, type CheckDeps, type CheckLine } from '../../../src/cli/check.js';
import type { Config } from '../../../src/daemon/config.js';
import { fakeInterfaces } from '../../helpers/interfaces.js';
import { FakeUpstream } from '../../helpers/upstream.js';

const interfaces = fakeInterfaces({
  eth0: { v4: { address: '192.168.1.10', netmask: '255.255.255.0' }, sys: { ifindex: '2', mtu: '1500' } },
});
const free: CheckDeps = { interfaces, portHolders: () => [] };

function config(argv: string[]): Config {
  const r = parseArgs(argv);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

const texts = (lines: CheckLine[]): string[] => lines.map((l) => `${l.ok ? 'ok' : 'FAIL'} ${l.text}`);

describe('--check with --upstream: a HEAD for every boot file that is not local', () => {
  let mirror: FakeUpstream;
  const base = mkdtempSync(join(tmpdir(), 'check-upstream-'));
  const root = join(base, 'root');
  const cache = join(base, 'cache');
  before(async () => {
    mirror = await FakeUpstream.start();
    mirror.files.set('/pxelinux.0', { body: Buffer.alloc(42_000) });
    mirror.files.set('/busy.efi', { body: Buffer.alloc(0), status: 503 });
  });
  after(async () => {
    await mirror.close();
    rmSync(base, { recursive: true, force: true });
  });

  const run = (...argv: string[]): Promise<CheckLine[]> =>
    runCheck(
      config(['-i', 'eth0', '--tftp-root', root, '--upstream', mirror.url, '--cache-dir', cache, ...argv]),
      free,
    );

  it('an absent root is fine; the boot file is found upstream with its size; the cache will be made', async () => {
    const lines = await run('pxelinux.0');
    assert.deepEqual(texts(lines).slice(-4), [
      `ok TFTP root ${root} does not exist: every file comes from the upstream`,
      `ok upstream ${mirror.url}`,
      `ok cache directory ${cache} does not exist yet; the daemon makes it`,
      `ok boot file pxelinux.0 is not local; the upstream has it (42000 bytes): ${mirror.url}pxelinux.0`,
    ]);
    assert.equal(mirror.count('/pxelinux.0', 'HEAD'), 1);
    assert.equal(mirror.count('/pxelinux.0', 'GET'), 0, 'nothing is downloaded');
  });

  it('a local file is not asked for; a missing or failing one is a FAIL naming the URL', async () => {
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'local.0'), 'x');
    const lines = await run(
      '--boot',
      'arch=efi-x64,file=missing.efi',
      '--boot',
      'arch=efi-ia32,file=busy.efi',
      'local.0',
    );
    const boot = texts(lines).filter((t) => t.includes('boot file'));
    assert.equal(boot.length, 3);
    assert.ok(boot.some((t) => t === 'ok boot file local.0 is readable (1 bytes)'));
    assert.ok(
      boot.some((t) =>
        /^FAIL boot file missing\.efi is neither in the TFTP root nor upstream \(.*missing\.efi: HTTP 404\)$/.test(t),
      ),
      boot.join('\n'),
    );
    assert.ok(
      boot.some((t) => /^FAIL boot file busy\.efi is not local and the upstream failed: .*busy\.efi: HTTP 503/.test(t)),
      boot.join('\n'),
    );
    assert.equal(mirror.count('/local.0', 'HEAD'), 0);
  });

  it('a dead upstream is one FAIL line per boot file', async () => {
    const lines = await runCheck(
      config(['-i', 'eth0', '--tftp-root', root, '--upstream', 'http://127.0.0.1:1/', 'pxelinux.0']),
      free,
    );
    const fails = texts(lines).filter((t) => t.startsWith('FAIL'));
    assert.deepEqual(fails, [
      'FAIL boot file pxelinux.0 is not local and the upstream failed: http://127.0.0.1:1/pxelinux.0: connection refused by 127.0.0.1:1',
    ]);
  });
});
