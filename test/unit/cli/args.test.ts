import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseArgs, USAGE } from '../../../src/cli/args.js';
import type { Config } from '../../../src/daemon/config.js';

function config(argv: string): Config {
  const r = parseArgs(argv.split(' ').filter(Boolean));
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

function usageError(argv: string): string {
  const r = parseArgs(argv.split(' ').filter(Boolean));
  assert.equal(r.kind, 'exit', `expected a usage error for "${argv}"`);
  if (r.kind !== 'exit') return '';
  assert.equal(r.code, 1);
  assert.equal(r.stdout, undefined);
  assert.match(r.stderr ?? '', /^pxe-pdhcp: /);
  return r.stderr ?? '';
}

describe('pxe-pdhcp flags, word for word', () => {
  const table: [string, Partial<Config>][] = [
    ['-i eth0 pxelinux.0', { interfaces: ['eth0'], nbp: 'pxelinux.0', foreground: false }],
    ['-d -i eth0 pxelinux.0', { interfaces: ['eth0'], foreground: true }],
    ['-di eth0 pxelinux.0', { interfaces: ['eth0'], foreground: true }],
    [
      '-l 10.0.0.2 -t 10.0.0.3 -b 10.0.0.255 x.0',
      { interfaces: [], listenAddress: '10.0.0.2', tftpAddress: '10.0.0.3', broadcastAddress: '10.0.0.255' },
    ],
    ['-i eth0 -l 10.0.0.2 pxelinux.0', { interfaces: ['eth0'], listenAddress: '10.0.0.2' }],
    ['-i eth0 -t 10.0.0.9 pxelinux.0', { tftpAddress: '10.0.0.9' }],
    ['-i eth0 -b 10.0.0.255 pxelinux.0', { broadcastAddress: '10.0.0.255' }],
    ['-i eth0 -i eth1 pxelinux.0', { interfaces: ['eth0', 'eth1'] }],
    ['-i eth0 -l 10.0.0.1 -l 10.0.0.2 pxelinux.0', { listenAddress: '10.0.0.2' }],
    ['pxelinux.0 -d -i eth0', { interfaces: ['eth0'], foreground: true, nbp: 'pxelinux.0' }],
  ];
  for (const [argv, want] of table) {
    it(argv, () => {
      const c = config(argv);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(c[k as keyof Config], v, k);
    });
  }

  it('defaults', () => {
    const c = config('-i eth0 pxelinux.0');
    assert.equal(c.efiMode, 'binl');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.logFormat, 'text');
    assert.deepEqual(c.ports, { dhcp: 67, proxy: 4011, client: 68 });
    assert.equal(c.tftp.root, '/srv/tftp');
    assert.equal(c.tftp.enabled, true);
    assert.equal(c.listenAddress, undefined);
  });

  const errors: [string, RegExp][] = [
    ['', /missing <nbp name>/],
    ['-i eth0', /missing <nbp name>/],
    ['pxelinux.0', /give -i, or all of -l, -t and -b/],
    ['-l 10.0.0.2 -t 10.0.0.3 pxelinux.0', /give -i/],
    ['-l 10.0.0.2 -b 10.0.0.255 pxelinux.0', /give -i/],
    ['-i', /Not enough arguments following: i|missing/],
    ['-i eth0 -l nope pxelinux.0', /listen-address: 'nope' is not an IPv4 address/],
    ['-i eth0 -t 300.1.1.1 pxelinux.0', /tftp-address/],
    ['-x -i eth0 pxelinux.0', /Unknown argument/],
    ['-i eth0 a b', /Unknown argument: b/],
    ['-i eth0 --efi-mode sideways pxelinux.0', /Invalid values/],
    ['-i eth0 --log-level loud pxelinux.0', /Invalid values/],
    ['-i eth0 --dhcp-port 70000 pxelinux.0', /dhcp-port must be a whole number/],
  ];
  for (const [argv, want] of errors) {
    it(`usage error: "${argv}"`, () => {
      const err = usageError(argv);
      assert.match(err, want);
    });
  }

  it('a usage error prints the pxe-pdhcp usage text', () => {
    assert.ok(usageError('pxelinux.0').includes(USAGE));
    assert.match(
      USAGE,
      /^usage: pxe-pdhcp \[-d\] \[-i interface\] \[-l listen address\] \[-t tftp address\] \[-b broadcast address\] <nbp name>/,
    );
  });

  it('--help goes to stdout with status 0', () => {
    const r = parseArgs(['--help']);
    assert.equal(r.kind, 'exit');
    if (r.kind === 'exit') {
      assert.equal(r.code, 0);
      assert.match(r.stdout ?? '', /--efi-mode/);
    }
  });
});

describe('long options', () => {
  it('-v, -q and --log-level', () => {
    assert.equal(config('-v -i e pxe').logLevel, 'debug');
    assert.equal(config('-q -i e pxe').logLevel, 'warn');
    assert.equal(config('-q --log-level error -i e pxe').logLevel, 'error');
  });
  it('--efi-mode bypass, --log-format json, --no-tftp', () => {
    const c = config('--efi-mode bypass --log-format json --no-tftp -i e pxe');
    assert.equal(c.efiMode, 'bypass');
    assert.equal(c.logFormat, 'json');
    assert.equal(c.tftp.enabled, false);
  });
});

describe('--config FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pxe-cli-'));
  const file = (name: string, body: string): string => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };

  it('uses the same keys as the long options; the command line wins', () => {
    const p = file(
      'a.json',
      JSON.stringify({ interface: ['eth1'], 'efi-mode': 'bypass', nbp: 'from-file.0', 'log-level': 'debug' }),
    );
    const c = config(`--config ${p} -q --log-level warn`);
    assert.deepEqual(c.interfaces, ['eth1']);
    assert.equal(c.efiMode, 'bypass');
    assert.equal(c.nbp, 'from-file.0');
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.configFile, p);
    assert.equal(config(`--config ${p} other.0`).nbp, 'other.0');
  });

  it('a missing file, bad JSON, an unknown key and a bad value are one-line errors', () => {
    assert.match(usageError(`--config ${join(dir, 'none.json')} -i e pxe`), /cannot read config file .*ENOENT/);
    assert.match(usageError(`--config ${file('b.json', '{nope')} -i e pxe`), /is not valid JSON/);
    assert.match(usageError(`--config ${file('c.json', '{"colour": 1}')} -i e pxe`), /unknown key "colour"/);
    assert.match(usageError(`--config ${file('d.json', '{"efi-mode": "x"}')} -i e pxe`), /efi-mode must be one of/);
    assert.match(usageError(`--config ${file('e.json', '[]')} -i e pxe`), /must hold a JSON object/);
  });
});
