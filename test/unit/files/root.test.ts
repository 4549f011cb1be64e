import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanName, openInRoot, toNetascii, warnMissingBootFiles } from '../../../src/files/root.js';
import { memoryLogger, tempRoot } from '../../helpers/tftp.js';

const root = tempRoot({ 'pxelinux.0': 'boot' });
const outside = tempRoot({ secret: 'do not serve' });
mkdirSync(join(root.dir, 'sub'));
writeFileSync(join(root.dir, 'sub', 'f.cfg'), 'cfg');
symlinkSync(join(outside.dir, 'secret'), join(root.dir, 'escape'));
symlinkSync('sub/f.cfg', join(root.dir, 'inner'));
const real = realpathSync(root.dir);
after(() => {
  root.remove();
  outside.remove();
});

async function outcome(name: string): Promise<string> {
  const r = await openInRoot(real, name);
  if (r.ok) {
    const buf = Buffer.alloc(r.file.size);
    await r.file.readv([buf], 0);
    await r.file.close();
    return `ok:${buf.toString()}`;
  }
  return `${r.refusal.code}:${r.refusal.reason}`;
}

void describe('openInRoot keeps every name inside the root', () => {
  const cases: [string, string][] = [
    ['pxelinux.0', 'ok:boot'],
    ['/pxelinux.0', 'ok:boot'],
    ['\\sub\\f.cfg', 'ok:cfg'],
    ['sub//./f.cfg', 'ok:cfg'],
    ['inner', 'ok:cfg'],
    ['pxelinux.cfg/01-52-54-00-12-34-56', '1:not-found'],
    ['../../etc/passwd', '2:bad-name'],
    ['sub/../../etc/passwd', '2:bad-name'],
    ['..\\..\\etc\\passwd', '2:bad-name'],
    ['escape', '2:outside-root'],
    ['pxelinux.0\u0000.txt', '2:bad-name'],
    ['a\nb', '2:bad-name'],
    ['sub', '1:not-a-file'],
    ['', '1:not-a-file'],
  ];
  for (const [name, want] of cases) {
    void it(`${JSON.stringify(name)} → ${want}`, async () => assert.equal(await outcome(name), want));
  }
  void it('cleanName splits, strips and refuses', () => {
    assert.deepEqual(cleanName('/a\\b/./c'), ['a', 'b', 'c']);
    assert.equal(cleanName('a/../b'), null);
  });
});

void describe('netascii and boot-file warnings', () => {
  void it('maps LF to CR LF and CR to CR NUL (RFC 1350 / RFC 764)', () => {
    assert.deepEqual(toNetascii(Buffer.from('a\nb\rc')), Buffer.from('a\r\nb\r\0c', 'latin1'));
  });

  void it('warns about a missing NBP, not about present files or URLs', async () => {
    const { log, lines } = memoryLogger();
    const missing = await warnMissingBootFiles(root.dir, ['pxelinux.0', 'ipxe.efi', 'http://10.0.0.1/boot.ipxe'], log);
    assert.deepEqual(missing, ['ipxe.efi']);
    await new Promise((r) => setImmediate(r));
    assert.ok(lines.some((l) => l.level === 'warn' && l.file === 'ipxe.efi'));
  });

  void it('warns once when the root itself is missing', async () => {
    const { log, lines } = memoryLogger();
    assert.deepEqual(await warnMissingBootFiles('/nonexistent-root', ['a'], log), ['a']);
    await new Promise((r) => setImmediate(r));
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1);
  });
});
