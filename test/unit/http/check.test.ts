import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import { runCheck, type CheckDeps } from '../../../src/cli/check.js';
import type { Config } from '../../../src/daemon/config.js';
import { tcpListenHoldersFrom } from '../../../src/net/port-owner.js';
import { fakeInterfaces } from '../../helpers/interfaces.js';
import { tempRoot } from '../../helpers/tftp.js';

const tftp = tempRoot({ 'undionly.kpxe': 'x' });
const www = tempRoot({ 'ipxe.efi': 'efi' });
const outside = tempRoot({ secret: 'no' });
mkdirSync(join(www.dir, 'debian'));
writeFileSync(join(www.dir, 'debian', 'linux'), 'kernel!');
symlinkSync(join(outside.dir, 'secret'), join(www.dir, 'escape'));
after(() => [tftp, www, outside].forEach((d) => d.remove()));

const interfaces = fakeInterfaces({
  eth0: { v4: { address: '192.168.1.10', netmask: '255.255.255.0' }, sys: { ifindex: '2', mtu: '1500' } },
});

function config(argv: string[]): Config {
  const r = parseArgs(argv);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  return (r as { config: Config }).config;
}

const base = ['-i', 'eth0', '--tftp-root', tftp.dir, '--http', '--http-root', www.dir];

describe('--check covers the HTTP server', () => {
  it('the TCP port, the HTTP root and every file the rules name for HTTP', async () => {
    const c = config([
      ...base,
      '--boot',
      'user-class=iPXE,kernel=debian/linux,initrd=debian/missing.gz',
      '--boot',
      'arch=efi-x64,file=http:///escape',
      '--boot',
      'arch=efi-arm64,file=http:///ipxe.efi',
      'undionly.kpxe',
    ]);
    const deps: CheckDeps = { interfaces, portHolders: () => [], tcpHolders: () => [] };
    const texts = (await runCheck(c, deps)).map((l) => `${l.ok ? 'ok' : 'FAIL'} ${l.text}`);
    assert.ok(texts.includes('ok TCP port 80 (HTTP) is free'), texts.join('\n'));
    assert.ok(texts.includes(`ok HTTP root ${www.dir} is a readable directory`));
    assert.ok(texts.includes('ok HTTP file debian/linux is readable (7 bytes)'));
    assert.ok(texts.includes('FAIL HTTP file debian/missing.gz does not exist'), texts.join('\n'));
    assert.ok(texts.includes('FAIL HTTP file escape points outside the HTTP root'), texts.join('\n'));
    assert.ok(texts.includes('ok HTTP file ipxe.efi is readable (3 bytes)'));
  });

  it('a port held by another program is named; without --http nothing is said about HTTP', async () => {
    const held: CheckDeps = {
      interfaces,
      portHolders: () => [],
      tcpHolders: (port) => (port === 80 ? [{ address: '0.0.0.0', owner: { pid: 77, name: 'nginx' } }] : []),
    };
    const lines = await runCheck(config([...base, 'undionly.kpxe']), held);
    assert.ok(lines.some((l) => !l.ok && l.text === 'TCP port 80 (HTTP) is in use by nginx (pid 77) on 0.0.0.0'));
    const off = await runCheck(config(['-i', 'eth0', '--tftp-root', tftp.dir, 'undionly.kpxe']), held);
    assert.equal(off.filter((l) => /HTTP/.test(l.text)).length, 0);
  });

  it('/proc/net/tcp: only listening sockets hold a port', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1',
      '   1: 0100007F:0050 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1',
      '   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1',
    ].join('\n');
    const procs = [{ pid: 9, comm: 'nginx', fdLinks: ['socket:[4242]'] }];
    assert.deepEqual(tcpListenHoldersFrom(80, text, procs, true), [
      { address: '0.0.0.0', owner: { pid: 9, name: 'nginx' } },
    ]);
    assert.deepEqual(tcpListenHoldersFrom(8080, text, procs, true), [{ address: '127.0.0.1' }]);
    assert.deepEqual(tcpListenHoldersFrom(81, text, procs, true), []);
  });
});
