import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import type { Config } from '../../../src/daemon/config.js';
import { policyOf, restartOnlyChanges } from '../../../src/daemon/config.js';
import { bootFiles, chooseBoot, httpFiles, type BootChoice, type BootPolicy } from '../../../src/pxe/boot.js';
import { describeClient, type PxeClient } from '../../../src/pxe/client.js';
import {
  expandOwnHttp,
  httpHostPort,
  parseScriptRequest,
  scriptClient,
  scriptUrl,
} from '../../../src/pxe/http-boot.js';
import { parseRule, ruleFromJson, ruleMatches } from '../../../src/pxe/rules.js';
import { request, type RequestSpec } from '../../helpers/packets.js';

function run(args: string[]): Config {
  const r = parseArgs(args);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  return (r as { config: Config }).config;
}

function exitOf(args: string[]): string {
  const r = parseArgs(args);
  assert.equal(r.kind, 'exit');
  return (r as { stderr: string }).stderr;
}

const client = (spec: RequestSpec, http = false): PxeClient => describeClient(request(spec), http) as PxeClient;

describe('HTTP options', () => {
  it('off by default; --http with its defaults: port 80, root = the TFTP root (absolute)', () => {
    assert.equal(run(['-i', 'eth0', 'x']).http?.enabled, false);
    const c = run(['-i', 'eth0', '--http', '--tftp-root', 'rel/tftp', 'x']);
    assert.deepEqual(c.http, {
      enabled: true,
      root: resolve('rel/tftp'),
      port: 80,
      maxConnections: 256,
      boot: false,
    });
  });

  it('--http-root, --http-port, --http-max-connections; --http-boot implies --http', () => {
    const c = run([
      '-i',
      'eth0',
      '--http-boot',
      '--http-root',
      'www',
      '--http-port',
      '8080',
      '--http-max-connections',
      '9',
      'x',
    ]);
    assert.deepEqual(c.http, { enabled: true, root: resolve('www'), port: 8080, maxConnections: 9, boot: true });
    assert.equal(policyOf(c).httpBoot, true);
    assert.equal(policyOf(run(['-i', 'eth0', '--http', 'x'])).httpBoot, undefined);
  });

  it('the config file takes the same keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'http-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        interface: ['eth0'],
        http: true,
        'http-port': 8081,
        boot: [{ 'user-class': 'iPXE', kernel: 'linux', initrd: ['a.gz', 'b.gz'], cmdline: 'console=ttyS0,115200' }],
      }),
    );
    const c = run(['--config', file]);
    assert.equal(c.http?.port, 8081);
    assert.deepEqual(c.boot?.[0]?.initrd, ['a.gz', 'b.gz']);
    assert.equal(c.boot?.[0]?.cmdline, 'console=ttyS0,115200');
  });

  it('kernel= and http:/// without --http: one line naming the rule', () => {
    assert.equal(
      exitOf(['-i', 'eth0', '--boot', 'user-class=iPXE,kernel=linux', 'x']),
      "pxe-pdhcp: boot rule 'user-class=iPXE,kernel=linux' needs the HTTP server: add --http (kernel= and http:/// are served by it)\n",
    );
    assert.match(exitOf(['-i', 'eth0', 'http:///boot.ipxe']), /<nbp> http:\/\/\/boot.ipxe needs the HTTP server/);
    assert.match(exitOf(['-i', 'eth0', '--http-port', '70000', '--http', 'x']), /http-port must be a whole number/);
  });

  it('HTTP settings need a restart; --http-boot is applied by a reload', () => {
    const a = run(['-i', 'eth0', '--http', 'x']);
    const b = run(['-i', 'eth0', '--http', '--http-port', '8080', '--http-boot', 'x']);
    assert.deepEqual(restartOnlyChanges(a, b), ['http-port']);
  });
});

describe('boot rules with kernel, initrd, cmdline', () => {
  it('parse: initrd repeatable, cmdline takes the rest (commas included), text keeps every pair', () => {
    const r = parseRule('arch=efi-x64,kernel=d/linux,initrd=d/a.gz,initrd=d/b.gz,cmdline=console=ttyS0,115200 quiet');
    assert.equal(r.kernel, 'd/linux');
    assert.deepEqual(r.initrd, ['d/a.gz', 'd/b.gz']);
    assert.equal(r.cmdline, 'console=ttyS0,115200 quiet');
    assert.equal(r.file, undefined);
    assert.equal(r.text, 'arch=efi-x64,kernel=d/linux,initrd=d/a.gz,initrd=d/b.gz,cmdline=console=ttyS0,115200 quiet');
  });

  it('refusals: newlines, white space in URLs, initrd without kernel, no file and no kernel', () => {
    const bad: [unknown, RegExp][] = [
      [{ kernel: 'linux', cmdline: 'quiet\nboot' }, /'cmdline' must not contain a newline/],
      [{ kernel: 'lin\rux' }, /'kernel' must not contain a newline/],
      [{ kernel: 'linux', initrd: ['a\nb'] }, /'initrd' must not contain a newline/],
      [{ kernel: 'my linux' }, /'kernel' must not contain white space/],
      [{ file: 'x', initrd: 'a.gz' }, /'initrd' needs a kernel=/],
      [{ file: 'x', cmdline: 'quiet' }, /'cmdline' needs a kernel=/],
      [{ arch: 'bios' }, /no file= \(what to boot\) and no kernel=/],
      [{ kernel: 'k', cmdline: 'a', file: 'x', initrd: [1] }, /'initrd' must be a string or a list of strings/],
      ['kernel=a,kernel=b', /'kernel' given twice/],
    ];
    for (const [rule, why] of bad) assert.throws(() => ruleFromJson(rule), why, JSON.stringify(rule));
  });

  it('a rule with a kernel and no file matches iPXE only', () => {
    const r = parseRule('arch=efi-x64,kernel=linux');
    assert.equal(ruleMatches(r, client({ arch: 7 })), false);
    assert.equal(ruleMatches(r, client({ arch: 7, userClass: 'iPXE' })), true);
  });

  const policy: BootPolicy = {
    efiMode: 'binl',
    defaultFile: 'undionly.kpxe',
    rules: [
      parseRule('mac=52:54:00:00:00:01,file=ipxe.efi,kernel=d/linux,initrd=d/initrd.gz'),
      parseRule('arch=efi-x64-http,file=http:///shimx64.efi'),
      parseRule('vendor-class=HTTPClient:Arch:00019,file=grubaa64.efi'),
    ],
  };
  const fileOf = (c: PxeClient): string => (chooseBoot(c, policy) as BootChoice).file;

  it('the same rule: the file for firmware, the script URL for the iPXE it loads (the loop break)', () => {
    assert.equal(fileOf(client({ mac: '52:54:00:00:00:01', arch: 7 })), 'ipxe.efi');
    const ipxe = client({ mac: '52:54:00:00:00:01', arch: 7, userClass: 'iPXE', uuid: null });
    assert.equal(fileOf(ipxe), 'http:///pxe-pdhcp/boot/52-54-00-00-00-01.ipxe?arch=7');
    assert.equal(
      scriptUrl(client({ mac: '52:54:00:00:00:01', arch: 0, userClass: 'iPXE' })),
      'http:///pxe-pdhcp/boot/52-54-00-00-00-01.ipxe?arch=0&uuid=7e57ab00000040008000525400123456',
    );
  });

  it('HTTP Boot clients: rules by arch or vendor class; a path becomes a URL on our server', () => {
    const x64 = client({ arch: 16, vendor: 'HTTPClient:Arch:00016:UNDI:003001' }, true);
    assert.equal(x64.httpClient, true);
    const choice = chooseBoot(x64, policy) as BootChoice;
    assert.equal(choice.shape, 'http');
    assert.equal(choice.file, 'http:///shimx64.efi');
    assert.equal(
      fileOf(client({ arch: 19, vendor: 'HTTPClient:Arch:00019:UNDI:003000' }, true)),
      'http:///grubaa64.efi',
    );
    assert.equal(
      fileOf(client({ arch: 15, vendor: 'HTTPClient:Arch:00015:UNDI:003000' }, true)),
      'http:///undionly.kpxe',
    );
    assert.equal(describeClient(request({ arch: 16, vendor: 'HTTPClient:Arch:00016' })), 'not-pxe-client');
  });

  it('script requests are parsed back into the client they stand for', () => {
    const req = parseScriptRequest(
      '/pxe-pdhcp/boot/52-54-00-00-00-01.ipxe',
      'arch=7&uuid=7e57ab00000040008000525400123456',
    );
    assert.ok(req);
    const c = scriptClient(req);
    assert.equal(c.mac, '52:54:00:00:00:01');
    assert.equal(c.arch, 7);
    assert.equal(c.isIpxe, true);
    assert.equal(c.uuid?.length, 17);
    assert.equal(parseScriptRequest('/pxe-pdhcp/boot/52-54-00-00-00-01.ipxe', 'arch=9')?.arch, 7, 'arch 9 is x64');
    for (const [path, query] of [
      ['/pxe-pdhcp/boot/52-54-00-00-00-01.ipxe', 'arch=99999'],
      ['/pxe-pdhcp/boot/52-54-00-00-00-01.ipxe', 'uuid=xyz'],
      ['/pxe-pdhcp/boot/52-54-00-00-01.ipxe', ''],
      ['/pxe-pdhcp/boot/../52-54-00-00-00-01.ipxe', ''],
      ['/other/52-54-00-00-00-01.ipxe', ''],
    ])
      assert.equal(parseScriptRequest(path!, query!), null, `${path}?${query}`);
  });

  it('http:/// expands per interface; files for the HTTP root and for TFTP are told apart', () => {
    assert.equal(expandOwnHttp('http:///a/b', httpHostPort('10.0.0.5', 80)), 'http://10.0.0.5/a/b');
    assert.equal(expandOwnHttp('http:///a', httpHostPort('10.0.0.5', 8080)), 'http://10.0.0.5:8080/a');
    assert.equal(expandOwnHttp('http://elsewhere/a', '10.0.0.5'), 'http://elsewhere/a');
    assert.equal(expandOwnHttp('pxelinux.0', '10.0.0.5'), 'pxelinux.0');
    assert.deepEqual(httpFiles(policy), ['d/linux', 'd/initrd.gz', 'shimx64.efi']);
    assert.deepEqual(bootFiles(policy), ['undionly.kpxe', 'ipxe.efi', 'http:///shimx64.efi', 'grubaa64.efi']);
  });
});
