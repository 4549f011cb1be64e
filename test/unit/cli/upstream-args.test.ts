import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseArgs, parseDuration, parseSize } from '../../../src/cli/args.js';
import { restartOnlyChanges, type Config } from '../../../src/daemon/config.js';

function config(argv: string): Config {
  const r = parseArgs(argv.split(' ').filter(Boolean));
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

function refused(argv: string): string {
  const r = parseArgs(argv.split(' ').filter(Boolean));
  assert.equal(r.kind, 'exit', `expected an error for "${argv}"`);
  if (r.kind !== 'exit') return '';
  assert.equal(r.code, 1);
  return r.stderr ?? '';
}

describe('--upstream and its cache options', () => {
  it('off unless --upstream is given', () => {
    assert.equal(config('-i eth0 pxelinux.0').upstream, undefined);
  });

  it('defaults: /var/cache/pxe-pdhcp, 2 GiB, 1 h; the base URL gains its trailing slash', () => {
    assert.deepEqual(config('-i eth0 --upstream http://10.0.0.5/netboot pxelinux.0').upstream, {
      url: 'http://10.0.0.5/netboot/',
      cacheDir: '/var/cache/pxe-pdhcp',
      cacheMaxBytes: 2 * 1024 ** 3,
      cacheTtl: 3600,
    });
  });

  it('every option, with sizes and durations in words', () => {
    const u = config(
      '-i eth0 --upstream https://deb.debian.org/debian/ --cache-dir rel/cache --cache-max-size 500M --cache-ttl 30m x.0',
    ).upstream!;
    assert.equal(u.url, 'https://deb.debian.org/debian/');
    assert.equal(u.cacheDir, `${process.cwd()}/rel/cache`);
    assert.equal(u.cacheMaxBytes, 500 * 1024 ** 2);
    assert.equal(u.cacheTtl, 1800);
  });

  it('refuses what cannot work, in one line', () => {
    assert.match(refused('-i eth0 --upstream ftp://m/x x.0'), /upstream: 'ftp:\/\/m\/x' is not an http or https URL/);
    assert.match(refused('-i eth0 --upstream not-a-url x.0'), /upstream: 'not-a-url' is not a URL/);
    assert.match(refused('-i eth0 --upstream http://u:p@m/ x.0'), /credentials in the URL are not supported/);
    assert.match(refused('-i eth0 --cache-dir /tmp/c x.0'), /cache-dir has no effect without --upstream/);
    assert.match(refused('-i eth0 --upstream http://m/ --cache-max-size 10K x.0'), /cache-max-size must be a size/);
    assert.match(refused('-i eth0 --upstream http://m/ --cache-max-size lots x.0'), /cache-max-size must be a size/);
    assert.match(refused('-i eth0 --upstream http://m/ --cache-ttl 1w x.0'), /cache-ttl must be a duration/);
  });

  it('the config file takes the same keys, numbers included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'upstream-args-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        interface: ['eth0'],
        nbp: 'pxelinux.0',
        upstream: 'http://10.0.0.5:8080/d-i/',
        'cache-max-size': 104857600,
        'cache-ttl': 600,
      }),
    );
    try {
      const u = config(`--config ${file}`).upstream!;
      assert.equal(u.cacheMaxBytes, 100 * 1024 ** 2);
      assert.equal(u.cacheTtl, 600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reload names every upstream setting as needing a restart', () => {
    const a = config('-i eth0 --upstream http://a/ x.0');
    const b = config('-i eth0 --upstream http://b/ --cache-dir /c --cache-max-size 1G --cache-ttl 1d x.0');
    assert.deepEqual(restartOnlyChanges(a, b), ['upstream', 'cache-dir', 'cache-max-size', 'cache-ttl']);
  });

  it('sizes and durations', () => {
    assert.equal(parseSize('2G'), 2 * 1024 ** 3);
    assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('512 MB'), 512 * 1024 ** 2);
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize('-1G'), undefined);
    assert.equal(parseSize('1X'), undefined);
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration('2d'), 172800);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration(3600), 3600);
    assert.equal(parseDuration('1.5h'), undefined);
  });
});
