import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import { policyOf, restartOnlyChanges, type Config } from '../../../src/daemon/config.js';

function config(line: string): Config {
  const parsed = parseArgs(line.split(' '));
  assert.equal(parsed.kind, 'run', JSON.stringify(parsed));
  return (parsed as { config: Config }).config;
}

void describe('daemon config: what a reload can change', () => {
  void it('rules and the default file apply at once: no restart-only change', () => {
    const a = config('-i eth0 pxelinux.0');
    const b = config('-i eth0 --boot arch=efi-x64,file=ipxe.efi undionly.kpxe');
    assert.deepEqual(restartOnlyChanges(a, b), []);
    assert.equal(policyOf(b).defaultFile, 'undionly.kpxe');
  });

  void it('names each setting that needs a restart', () => {
    const a = config('-i eth0 --tftp-root /srv/tftp pxelinux.0');
    const b = config('-i eth1 --tftp-root /srv/other --tftp-max-transfers 9 --user daemon pxelinux.0');
    // The HTTP root follows the TFTP root unless it is given: it changes with it.
    assert.deepEqual(restartOnlyChanges(a, b), ['interface', 'tftp-root', 'tftp-max-transfers', 'http-root', 'user']);
  });

  void it('a relative TFTP root is made absolute once, when parsed', () => {
    assert.equal(config('-i eth0 --tftp-root rel/dir pxelinux.0').tftp.root, `${process.cwd()}/rel/dir`);
  });
});
