import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { warnMissingBootFiles } from '../../../src/daemon/boot-files.js';
import { FileRoot } from '../../../src/files/root.js';
import { memoryLogger, tempRoot } from '../../helpers/tftp.js';

const root = tempRoot({ 'pxelinux.0': 'boot' });
after(() => root.remove());

void describe('boot-file warnings at start-up', () => {
  void it('warns about a missing NBP, not about present files or URLs', async () => {
    const { log, lines } = memoryLogger();
    const files = ['pxelinux.0', 'ipxe.efi', 'http://10.0.0.1/boot.ipxe'];
    assert.deepEqual(await warnMissingBootFiles(new FileRoot(root.dir), files, log), ['ipxe.efi']);
    assert.ok(lines.some((l) => l.level === 'warn' && l.file === 'ipxe.efi'));
  });

  void it('a missing root makes every file missing, one line each', async () => {
    const { log, lines } = memoryLogger();
    assert.deepEqual(await warnMissingBootFiles(new FileRoot('/nonexistent-root'), ['a', 'b'], log), ['a', 'b']);
    assert.equal(lines.filter((l) => l.level === 'warn').length, 2);
  });
});
