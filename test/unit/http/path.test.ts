import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileNameOf, parseTarget } from '../../../src/http/path.js';

describe('parseTarget: request targets to names', () => {
  const served: [string, string, string][] = [
    ['/pxelinux.0', '/pxelinux.0', ''],
    ['/debian/linux', '/debian/linux', ''],
    ['/a%20b.txt', '/a b.txt', ''],
    ['/caf%C3%A9', '/café', ''],
    ['/boot.ipxe?x=1&y=2', '/boot.ipxe', 'x=1&y=2'],
    ['/f#frag', '/f', ''],
    ['//etc/passwd', '//etc/passwd', ''],
    ['/./a', '/./a', ''],
    ['/a..b/c...', '/a..b/c...', ''],
  ];
  for (const [target, path, query] of served) {
    it(`serves ${target}`, () => assert.deepEqual(parseTarget(target), { ok: true, path, query }));
  }

  const refused: [string, string][] = [
    ['/../etc/passwd', 'dot-dot'],
    ['/a/../../b', 'dot-dot'],
    ['/%2e%2e/etc/passwd', 'dot-dot'],
    ['/%2E%2E/%2E%2E/x', 'dot-dot'],
    ['/..', 'dot-dot'],
    ['/a%2fb', 'encoded-separator'],
    ['/a%2Fb', 'encoded-separator'],
    ['/..%2fetc', 'encoded-separator'],
    ['/a%5cb', 'encoded-separator'],
    ['/a\\..\\b', 'backslash'],
    ['/a%00b', 'control'],
    ['/a%0ab', 'control'],
    ['/a%7f', 'control'],
    ['/%zz', 'bad-encoding'],
    ['/%C3', 'bad-encoding'],
    ['http://10.0.0.5/pxelinux.0', 'not-origin-form'],
    ['*', 'not-origin-form'],
    ['', 'not-origin-form'],
    ['etc/passwd', 'not-origin-form'],
  ];
  for (const [target, reason] of refused) {
    it(`refuses ${JSON.stringify(target)} (${reason})`, () =>
      assert.deepEqual(parseTarget(target), { ok: false, reason }));
  }

  it('the file name drops the leading slashes only', () => {
    assert.equal(fileNameOf('/a/b'), 'a/b');
    assert.equal(fileNameOf('///a'), 'a');
    assert.equal(fileNameOf('/'), '');
  });
});
