import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { prepareCacheDir } from '../../src/daemon/upstream.js';

const base = mkdtempSync(join(tmpdir(), 'cache-dir-root-'));
const NOBODY = { name: 'nobody', uid: 65534, gid: 65534 };

describe('the cache directory made by root for --user', () => {
  after(() => rmSync(base, { recursive: true, force: true }));

  it('as root: the directories go to --user, files in them do not', async () => {
    assert.equal(process.getuid?.(), 0, 'this test must run as root (make test does)');
    const dir = join(base, 'root', 'cache');
    await prepareCacheDir(dir, 'nobody', { isRoot: true, account: () => NOBODY });
    writeFileSync(join(dir, 'files', 'left-by-root'), 'x');
    await prepareCacheDir(dir, 'nobody', { isRoot: true, account: () => NOBODY });
    for (const d of [dir, join(dir, 'files'), join(dir, 'tmp')]) assert.equal(statSync(d).uid, 65534, d);
    assert.equal(statSync(join(dir, 'files', 'left-by-root')).uid, 0);
  });
});
