import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../../../src/core/errors.js';
import { prepareCacheDir } from '../../../src/daemon/upstream.js';

const base = mkdtempSync(join(tmpdir(), 'cache-dir-'));

describe('the cache directory, before the privilege drop', () => {
  after(() => rmSync(base, { recursive: true, force: true }));

  it('made with files/ and tmp/, and nothing chowned when not root', async () => {
    const dir = join(base, 'plain', 'cache');
    await prepareCacheDir(dir, 'nobody', { isRoot: false, account: () => assert.fail('no account lookup') });
    for (const d of [dir, join(dir, 'files'), join(dir, 'tmp')]) assert.ok(statSync(d).isDirectory());
  });

  it('a directory that cannot be made is one line', async () => {
    writeFileSync(join(base, 'a-file'), '');
    await assert.rejects(prepareCacheDir(join(base, 'a-file', 'cache'), 'nobody', { isRoot: false }), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(
        err.message,
        /^cache directory .*a-file\/cache cannot be created: ENOTDIR \(choose another with --cache-dir\)$/,
      );
      return true;
    });
  });

  it('the systemd unit gives the service its cache directory', () => {
    const unit = readFileSync(new URL('../../../src/daemon/systemd/pxe-pdhcp.service.in', import.meta.url), 'utf8');
    assert.match(unit, /^CacheDirectory=pxe-pdhcp$/m);
  });
});
