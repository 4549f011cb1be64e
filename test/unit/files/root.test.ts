import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanName, FileRoot, isUrl } from '../../../src/files/root.js';
import { tempRoot } from '../../helpers/tftp.js';

const root = tempRoot({ 'pxelinux.0': 'boot' });
const outside = tempRoot({ secret: 'do not serve' });
mkdirSync(join(root.dir, 'sub'));
writeFileSync(join(root.dir, 'sub', 'f.cfg'), 'cfg');
symlinkSync(join(outside.dir, 'secret'), join(root.dir, 'escape'));
symlinkSync('sub/f.cfg', join(root.dir, 'inner'));
symlinkSync('/etc', join(root.dir, 'etcdir'));
execFileSync('mkfifo', [join(root.dir, 'fifo')]);
const files = new FileRoot(root.dir);
after(() => {
  root.remove();
  outside.remove();
});

async function outcome(name: string): Promise<string> {
  const r = await files.open(name);
  if (r.ok) {
    const buf = Buffer.alloc(r.file.size);
    await r.file.readv([buf], 0);
    await r.file.close();
    return `ok:${buf.toString()}`;
  }
  return r.reason;
}

void describe('FileRoot keeps every name inside the root', () => {
  const cases: [string, string][] = [
    ['pxelinux.0', 'ok:boot'],
    ['/pxelinux.0', 'ok:boot'],
    ['\\sub\\f.cfg', 'ok:cfg'],
    ['sub//./f.cfg', 'ok:cfg'],
    ['inner', 'ok:cfg'],
    ['pxelinux.cfg/01-52-54-00-12-34-56', 'not-found'],
    ['../../etc/passwd', 'bad-name'],
    ['sub/../../etc/passwd', 'bad-name'],
    ['..\\..\\etc\\passwd', 'bad-name'],
    ['escape', 'outside-root'],
    ['pxelinux.0\u0000.txt', 'bad-name'],
    ['a\nb', 'bad-name'],
    ['sub', 'not-a-file'],
    ['', 'not-a-file'],
    ['etcdir/passwd', 'outside-root'],
    ['fifo', 'not-a-file'],
    ['x'.repeat(5000), 'bad-name'],
  ];
  for (const [name, want] of cases) {
    void it(`${JSON.stringify(name)} → ${want}`, async () => assert.equal(await outcome(name), want));
  }
  void it('cleanName splits, strips and refuses', () => {
    assert.deepEqual(cleanName('/a\\b/./c'), ['a', 'b', 'c']);
    assert.equal(cleanName('a/../b'), null);
  });
});

void describe('FileRoot.check and isUrl', () => {
  void it('check gives the size or the same refusal open gives', async () => {
    assert.deepEqual(await files.check('pxelinux.0'), { ok: true, size: 4 });
    assert.deepEqual(await files.check('escape'), { ok: false, reason: 'outside-root' });
  });

  void it('a relative root is a programming error, refused at construction', () => {
    assert.throws(() => new FileRoot('relative/dir'), TypeError);
  });

  void it('isUrl tells URLs from names', () => {
    assert.equal(isUrl('http://10.0.0.1/boot.ipxe'), true);
    assert.equal(isUrl('efi64/syslinux.efi'), false);
  });
});
