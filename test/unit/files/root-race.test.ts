import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileRoot } from '../../../src/files/root.js';
import { tempRoot } from '../../helpers/tftp.js';

const root = tempRoot({});
const outside = tempRoot({ secret: 'outside' });
after(() => {
  root.remove();
  outside.remove();
});

void describe('FileRoot against a directory swapped for a symlink while names are opened', () => {
  void it('never opens a file outside the root, however the swap falls between check and open', async () => {
    const dir = join(root.dir, 'd');
    const real = join(root.dir, 'd.real');
    const link = join(root.dir, 'd.link');
    mkdirSync(real);
    writeFileSync(join(real, 'secret'), 'inside');
    symlinkSync(outside.dir, link);
    renameSync(real, dir);
    const files = new FileRoot(root.dir);
    let swapping = true;
    let swaps = 0;
    // Swap `d` between the real directory and the symlink out of the root as fast as possible.
    const swapper = (async () => {
      while (swapping) {
        renameSync(dir, real);
        renameSync(link, dir);
        await new Promise((r) => setImmediate(r));
        renameSync(dir, link);
        renameSync(real, dir);
        swaps++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const seen = new Map<string, number>();
    for (let i = 0; i < 1500; i++) {
      const r = await files.open('d/secret');
      let what: string = r.ok ? 'inside?' : r.reason;
      if (r.ok) {
        const buf = Buffer.alloc(r.file.size);
        await r.file.readv([buf], 0);
        await r.file.close();
        what = buf.toString();
      }
      seen.set(what, (seen.get(what) ?? 0) + 1);
    }
    swapping = false;
    await swapper;
    rmSync(link, { force: true });
    assert.ok(swaps > 10, `the swap ran (${swaps} times)`);
    assert.equal(seen.get('outside') ?? 0, 0, `served outside bytes: ${JSON.stringify([...seen])}`);
    assert.ok((seen.get('inside') ?? 0) > 0, `some opens landed inside: ${JSON.stringify([...seen])}`);
  });
});
