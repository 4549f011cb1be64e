import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseProbeArgs } from '../../../src/cli/probe-args.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FileRoot } from '../../../src/files/root.js';
import { HttpServer } from '../../../src/http/server.js';
import { planBoot, summarizeOffer } from '../../../src/probe/analyze.js';
import { buildDiscover, firmwareOf } from '../../../src/probe/client-packets.js';
import { fetchHttpBoot, parseIpxeScript } from '../../../src/probe/http-fetch.js';
import { textReport } from '../../../src/probe/report.js';
import { decideProxyOffer } from '../../../src/pxe/policy.js';
import { parseRule } from '../../../src/pxe/rules.js';
import { DhcpOption } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp, encodeDhcp } from '../../../src/wire/dhcp-packet.js';
import { pattern, tempRoot } from '../../helpers/tftp.js';
import { createHash } from 'node:crypto';

const MAC = Buffer.from('525400770001', 'hex');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('pxe-probe speaks UEFI HTTP Boot (--http-client)', () => {
  it('--http-client: arch 16 unless given, option 60 HTTPClient in EDK2’s layout', () => {
    const r = parseProbeArgs(['-i', 'lo', '--mac', '52:54:00:77:00:01', '--http-client']);
    assert.equal(r.kind, 'run');
    if (r.kind !== 'run') return;
    assert.equal(r.options.arch, 16);
    assert.equal(r.options.httpClient, true);
    assert.equal(firmwareOf(r.options), 'edk2-http');
    const d = buildDiscover(r.options, 1);
    assert.equal(d.options.get(DhcpOption.VENDOR_CLASS_ID)?.toString('latin1'), 'HTTPClient:Arch:00016:UNDI:003000');
    assert.deepEqual([...d.options.get(DhcpOption.CLIENT_ARCH)!], [0, 16]);
    const arm = parseProbeArgs(['-i', 'lo', '--mac', '52:54:00:77:00:01', '--http-client', '--arch', 'efi-arm64-http']);
    assert.equal(arm.kind === 'run' && arm.options.arch, 19);
  });

  it('our HTTPClient proxy offer is the one HTTP Boot firmware would take', () => {
    const discover = decodeDhcp(encodeDhcp(buildDiscover({ mac: MAC, arch: 16, httpClient: true }, 7)));
    const d = decideProxyOffer(
      discover,
      {
        serverIp: '10.0.0.5',
        tftpServer: '10.0.0.5',
        broadcastAddress: '255.255.255.255',
        clientPort: 68,
        httpAddress: '10.0.0.5:8080',
      },
      { efiMode: 'binl', httpBoot: true, rules: [parseRule('arch=efi-x64-http,file=ipxe.efi')] },
    );
    assert.equal(d.kind, 'reply');
    if (d.kind !== 'reply') return;
    const offer = summarizeOffer(decodeDhcp(encodeDhcp(d.reply)), { address: '10.0.0.5', port: 67 });
    assert.equal(offer.kind, 'proxy');
    assert.equal(offer.httpClient, true);
    const plan = planBoot([offer], 'edk2-http');
    assert.deepEqual(plan.kind === 'direct' && plan.file, 'http://10.0.0.5:8080/ipxe.efi');
    // A PXE proxy offer is no use to HTTP Boot firmware.
    const pxe = { ...offer, httpClient: false, pxeClient: true, bootFile: 'ipxe.efi' };
    assert.equal(planBoot([pxe], 'edk2-http').kind, 'none');
  });
});

describe('pxe-probe follows an http:// boot file as iPXE does', () => {
  const KERNEL = pattern(400_000, 8);
  const INITRD = pattern(900_000, 9);
  const root = tempRoot({ 'menu.ipxe': '#!ipxe\nchain http:///wrong\n', 'plain.efi': 'EFI' });
  mkdirSync(join(root.dir, 'd'));
  writeFileSync(join(root.dir, 'd', 'linux'), KERNEL);
  writeFileSync(join(root.dir, 'd', 'initrd.gz'), INITRD);
  writeFileSync(join(root.dir, 'chain.ipxe'), '#!ipxe\nchain boot2.ipxe\n');
  let server: HttpServer;
  let base: string;

  before(async () => {
    server = await HttpServer.start({
      root: new FileRoot(root.dir),
      listen: [{ address: '127.0.0.1', port: 0 }],
      log: silentLogger,
      policy: () => ({
        efiMode: 'binl',
        rules: [parseRule('user-class=iPXE,kernel=d/linux,initrd=d/initrd.gz,cmdline=quiet')],
      }),
    });
    base = `http://127.0.0.1:${server.ports[0]}`;
    writeFileSync(
      join(root.dir, 'boot2.ipxe'),
      `#!ipxe\nkernel --name k ${base}/d/linux quiet\ninitrd d/initrd.gz\nboot\n`,
    );
  });
  after(async () => {
    await server.close();
    root.remove();
  });

  it('parses the kernel, initrds and chain of a script, resolving relative URLs', () => {
    const p = parseIpxeScript(
      '#!ipxe\n# c\nkernel --name linux http://a/k initrd=i.gz q\ninitrd i.gz\nimgfetch /x/y\nboot\n',
      'http://srv:8080/s/boot.ipxe',
    );
    assert.deepEqual(p, { kernel: 'http://a/k', initrd: ['http://srv:8080/s/i.gz', 'http://srv:8080/x/y'] });
    assert.deepEqual(parseIpxeScript('#!ipxe\nchain next.ipxe\n', 'http://s/a/b.ipxe'), {
      initrd: [],
      chain: 'http://s/a/next.ipxe',
    });
  });

  it('the generated script, then kernel and initrd with sizes and sha256', async () => {
    const r = await fetchHttpBoot(`${base}/pxe-pdhcp/boot/52-54-00-77-00-01.ipxe?arch=7`);
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.transfers.map((t) => [t.role, t.ok, t.protocol]),
      [
        ['script', true, 'http'],
        ['kernel', true, 'http'],
        ['initrd', true, 'http'],
      ],
    );
    assert.equal(r.transfers[1]!.file, `${base}/d/linux`);
    assert.equal(r.transfers[1]!.sha256, sha(KERNEL));
    assert.equal(r.transfers[2]!.bytes, INITRD.length);
    assert.equal(r.transfers[2]!.sha256, sha(INITRD));
    assert.ok(r.transfers[2]!.kBps! > 0);
    const text = textReport({
      interface: 'eth0',
      mac: '52:54:00:77:00:01',
      arch: 7,
      archName: 'efi-x64',
      firmware: 'ipxe',
      offers: [],
      plan: { kind: 'none', reason: '' },
      released: true,
      findings: [],
      ok: true,
      fetch: r,
    });
    assert.match(text, /^HTTP:$/m);
    assert.match(
      text,
      new RegExp(`kernel +${base}/d/linux: 400000 bytes in \\d+ ms \\(\\d+ kB/s, HTTP 200\\) sha256 ${sha(KERNEL)}`),
    );
  });

  it('a chained script is followed; a plain file is one download; a 404 fails', async () => {
    const chained = await fetchHttpBoot(`${base}/chain.ipxe`);
    assert.deepEqual(
      chained.transfers.map((t) => t.role),
      ['script', 'script', 'kernel', 'initrd'],
    );
    assert.equal(chained.ok, true);
    const plain = await fetchHttpBoot(`${base}/plain.efi`);
    assert.deepEqual([plain.ok, plain.transfers.length, plain.transfers[0]!.bytes], [true, 1, 3]);
    const missing = await fetchHttpBoot(`${base}/nope.efi`);
    assert.equal(missing.ok, false);
    assert.equal(missing.transfers[0]!.failure?.message, 'HTTP 404');
  });
});
