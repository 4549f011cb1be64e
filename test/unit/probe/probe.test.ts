import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProcNetUdp } from '../../../src/net/port-owner.js';
import { prefixLength } from '../../../src/probe/address.js';
import { planBoot, summarizeOffer, type OfferSummary } from '../../../src/probe/analyze.js';
import { diagnose } from '../../../src/probe/diagnose.js';
import type { ProbeResult } from '../../../src/probe/run.js';
import { parseProbeArgs } from '../../../src/cli/probe-args.js';
import {
  buildBootRequest,
  buildDiscover,
  buildRelease,
  buildRequest,
  firmwareOf,
} from '../../../src/probe/client-packets.js';
import { fetchBoot } from '../../../src/probe/fetch.js';
import { configSearchOrder, defaultBootEntry, parsePxelinuxConfig } from '../../../src/probe/pxelinux.js';
import type { TftpResult } from '../../../src/probe/tftp-client.js';
import { DhcpOption, MessageType } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../../src/wire/dhcp-packet.js';
import { fixture } from '../../helpers/packets.js';

const codes = (p: DhcpPacket): number[] => [...p.options.keys()];
const MAC = Buffer.from('525400770002', 'hex');
const GUID = Buffer.from('0000ab577e000000408000525400770002', 'hex').subarray(1);

describe('client packets imitate real firmware', () => {
  it('EDK2 DISCOVER has the options of ovmf-edk2-discover.hex, in order and value', () => {
    const real = decodeDhcp(fixture('ovmf-edk2-discover'));
    const ours = decodeDhcp(encodeDhcp(buildDiscover({ mac: MAC, arch: 7, uuid: GUID }, real.transactionId)));
    assert.equal(firmwareOf({ mac: MAC, arch: 7 }), 'edk2');
    assert.deepEqual(codes(ours), codes(real));
    for (const code of [55, 57, 93, 94, 97, 60])
      assert.deepEqual(ours.options.get(code), real.options.get(code), `option ${code}`);
    assert.equal(ours.flags, real.flags);
    assert.deepEqual(ours.clientHardware, real.clientHardware);
  });

  it('iPXE DISCOVER matches ipxe-efi-discover.hex except 175', () => {
    const real = decodeDhcp(fixture('ipxe-efi-discover'));
    const mac = Buffer.from('525400770003', 'hex');
    const ours = decodeDhcp(
      encodeDhcp(buildDiscover({ mac, arch: 7, userClass: 'iPXE', uuid: real.options.get(97)!.subarray(1) }, 1)),
    );
    assert.deepEqual(
      codes(ours),
      codes(real).filter((c) => c !== DhcpOption.IPXE_ENCAP),
    );
    for (const code of [55, 57, 60, 61, 77, 93, 94, 97])
      assert.deepEqual(ours.options.get(code), real.options.get(code), `option ${code}`);
  });

  it('a BIOS ROM DISCOVER is the iPXE BIOS shape without 77', () => {
    const real = decodeDhcp(fixture('ipxe-bios-rom-discover'));
    const ours = buildDiscover(
      { mac: Buffer.from('525400770001', 'hex'), arch: 0, uuid: real.options.get(97)!.subarray(1) },
      1,
    );
    assert.deepEqual(
      codes(ours),
      codes(real).filter((c) => c !== 77 && c !== 175),
    );
    assert.deepEqual(ours.options.get(60), real.options.get(60));
  });

  it('--arch efi-arm64 sends what AAVMF sends (aavmf-edk2-discover.hex, aavmf-edk2-request-4011-binl.hex)', () => {
    const real = decodeDhcp(fixture('aavmf-edk2-discover'));
    const mac = Buffer.from('525400770005', 'hex');
    // AAVMF on QEMU's virt machine has no SMBIOS UUID: option 97 is 17 zero bytes.
    const args = parseProbeArgs(['-i', 'eth0', '--mac', '52:54:00:77:00:05', '--arch', 'efi-arm64', '--uuid', 'none']);
    assert.equal(args.kind, 'run');
    const arch = args.kind === 'run' ? args.options.arch : -1;
    const id = { mac, arch, uuid: Buffer.alloc(16) };
    assert.equal(id.arch, 11);
    assert.equal(firmwareOf(id), 'edk2');
    const ours = decodeDhcp(encodeDhcp(buildDiscover(id, real.transactionId)));
    assert.deepEqual(codes(ours), codes(real));
    for (const code of codes(real)) assert.deepEqual(ours.options.get(code), real.options.get(code), `option ${code}`);
    assert.equal(real.options.get(60)?.toString('latin1'), 'PXEClient:Arch:00011:UNDI:003000');
    assert.equal(ours.flags, real.flags);
    assert.deepEqual(ours.clientHardware, real.clientHardware);
    const binl = decodeDhcp(fixture('aavmf-edk2-request-4011-binl'));
    const boot = buildBootRequest(id, binl.transactionId, { clientIp: binl.clientIp, serverId: '10.77.0.2' });
    assert.deepEqual(boot.options.get(60), binl.options.get(60));
    assert.deepEqual(boot.options.get(93), binl.options.get(93));
    assert.deepEqual(boot.options.get(94), binl.options.get(94));
    assert.equal(boot.flags, binl.flags);
  });

  it('REQUEST names server and address; 4011 request has ciaddr, flags 0 and sub-option 71; RELEASE', () => {
    const id = { mac: MAC, arch: 7, uuid: GUID };
    const req = buildRequest(id, 9, '10.77.0.1', '10.77.0.101');
    assert.deepEqual(codes(req).slice(0, 3), [53, 54, 50]);
    const boot = buildBootRequest({ mac: MAC, arch: 0 }, 5, {
      clientIp: '10.77.0.101',
      serverId: '10.77.0.2',
      bootItemType: 0x8000,
    });
    assert.equal(boot.clientIp, '10.77.0.101');
    assert.equal(boot.flags, 0);
    assert.equal(boot.options.get(43)!.toString('hex'), '47048000000' + '0ff');
    assert.equal(boot.options.get(54)!.toString('hex'), '0a4d0002');
    const rel = buildRelease(id, 3, '10.77.0.1', '10.77.0.101');
    assert.equal(rel.options.get(53)![0], MessageType.RELEASE);
    assert.equal(rel.clientIp, '10.77.0.101');
  });
});

function reply(over: Partial<DhcpPacket>, options: [number, Buffer][]): DhcpPacket {
  const base = decodeDhcp(fixture('ovmf-edk2-discover'));
  return { ...base, op: 2, options: new Map(options), ...over };
}
const from = (address: string): { address: string; port: number } => ({ address, port: 67 });
const routerOffer = (extra: [number, Buffer][] = []): DhcpPacket =>
  reply({ yourIp: '10.0.0.50' }, [
    [53, Buffer.of(2)],
    [54, Buffer.from([10, 0, 0, 1])],
    [1, Buffer.from([255, 255, 255, 0])],
    ...extra,
  ]);
const pxe = Buffer.from('PXEClient');

describe('offer analysis follows the firmware ranking', () => {
  const bypass = summarizeOffer(
    reply({ nextServer: '10.0.0.2', bootFile: 'pxelinux.0' }, [
      [53, Buffer.of(2)],
      [54, Buffer.from([10, 0, 0, 2])],
      [60, pxe],
      [43, Buffer.from('060108ff', 'hex')],
    ]),
    from('10.0.0.2'),
  );
  const binl = summarizeOffer(
    reply({ nextServer: '10.0.0.3', bootFile: 'x.efi' }, [
      [53, Buffer.of(2)],
      [54, Buffer.from([10, 0, 0, 3])],
      [60, pxe],
    ]),
    from('10.0.0.3'),
  );
  const plain = summarizeOffer(routerOffer(), from('10.0.0.1'));
  const opt60 = summarizeOffer(routerOffer([[60, pxe]]), from('10.0.0.1'));

  it('classifies address and proxy offers and option 43 shapes', () => {
    assert.equal(plain.kind, 'address');
    assert.equal(plain.subnetMask, '255.255.255.0');
    assert.equal(bypass.kind, 'proxy');
    assert.equal(bypass.vendorShape, 'bypass');
    assert.equal(binl.vendorShape, 'none');
    const menu = summarizeOffer(
      reply({}, [
        [53, Buffer.of(2)],
        [60, pxe],
        [43, Buffer.from('0601030a040050584508078000010a4f00020907800004426f6f74ff', 'hex')],
      ]),
      from('10.79.0.2'),
    );
    assert.equal(menu.vendorShape, 'menu');
    assert.deepEqual(menu.menu, [{ type: 0x8000, description: 'Boot' }]);
    assert.deepEqual(menu.bootServers, [{ type: 0x8000, addresses: ['10.79.0.2'] }]);
    assert.deepEqual(planBoot([plain, menu], 'pxe-rom'), {
      kind: 'ask-4011',
      via: menu,
      target: '10.79.0.2',
      bootItemType: 0x8000,
    });
    const bad = summarizeOffer(
      reply({}, [
        [53, Buffer.of(2)],
        [60, pxe],
        [43, Buffer.from('0605', 'hex')],
      ]),
      from('10.0.0.9'),
    );
    assert.equal(bad.vendorShape, 'malformed');
  });

  it('a bypass proxy offer boots directly; a BINL one asks port 4011 of siaddr', () => {
    assert.deepEqual(planBoot([plain, bypass], 'edk2'), {
      kind: 'direct',
      via: bypass,
      nextServer: '10.0.0.2',
      file: 'pxelinux.0',
    });
    assert.deepEqual(planBoot([plain, binl], 'edk2'), { kind: 'ask-4011', via: binl, target: '10.0.0.3' });
  });

  it('a router with option 60 PXEClient wins over a BINL proxy (the PXE-E55 trap), not over PXE10', () => {
    assert.deepEqual(planBoot([opt60, binl], 'edk2'), { kind: 'ask-4011', via: opt60, target: '10.0.0.1' });
    assert.equal(planBoot([opt60, bypass], 'edk2').kind, 'direct');
  });

  it('no proxy and no file: nothing to boot', () => {
    assert.equal(planBoot([plain], 'pxe-rom').kind, 'none');
    assert.equal(planBoot([plain], 'ipxe').kind, 'none');
  });
});

describe('pxelinux', () => {
  it('searches UUID, 01-MAC, hex address prefixes, default under the NBP directory', () => {
    const names = configSearchOrder(
      'boot/',
      Buffer.from('88992aabbccd', 'hex'),
      '192.168.2.91',
      Buffer.from('b8945908d6a641a9611d74a6ab80b83d', 'hex'),
    );
    assert.deepEqual(names, [
      'boot/pxelinux.cfg/b8945908-d6a6-41a9-611d-74a6ab80b83d',
      'boot/pxelinux.cfg/01-88-99-2a-ab-bc-cd',
      ...['C0A8025B', 'C0A8025', 'C0A802', 'C0A80', 'C0A8', 'C0A', 'C0', 'C'].map((n) => `boot/pxelinux.cfg/${n}`),
      'boot/pxelinux.cfg/default',
    ]);
  });

  it('finds the default label, menu default and command-line defaults', () => {
    const cfg = parsePxelinuxConfig(
      '# c\nDEFAULT linux\nlabel other\n kernel o\nLABEL linux\n  LINUX vmlinuz\n  INITRD a.img,b.img\n  APPEND quiet\n',
    );
    assert.deepEqual(defaultBootEntry(cfg), {
      label: 'linux',
      kernel: 'vmlinuz',
      initrd: ['a.img', 'b.img'],
      append: 'quiet',
    });
    const menu = parsePxelinuxConfig(
      'UI menu.c32\nDEFAULT vesamenu.c32\nLABEL a\n KERNEL k1\nLABEL b\n MENU DEFAULT\n KERNEL k2\n APPEND initrd=i2 ro\n',
    );
    assert.deepEqual(defaultBootEntry(menu), { label: 'b', kernel: 'k2', initrd: ['i2'], append: 'initrd=i2 ro' });
    assert.equal(defaultBootEntry(parsePxelinuxConfig('DEFAULT vmlinuz initrd=x.img'))?.kernel, 'vmlinuz');
    assert.equal(defaultBootEntry(parsePxelinuxConfig('PROMPT 1')), undefined);
  });

  it('fetchBoot walks the search order, follows INCLUDE and fetches kernel and initrd', async () => {
    const files: Record<string, string> = {
      'pxelinux.0': 'nbp',
      'ldlinux.c32': 'core module',
      'pxelinux.cfg/C0A8': 'INCLUDE pxelinux.cfg/common\n',
      'pxelinux.cfg/common': 'DEFAULT l\nLABEL l\n KERNEL k\n INITRD i\n',
      k: 'kernel',
      i: 'initrd',
    };
    const asked: string[] = [];
    const get = (o: { file: string }): Promise<TftpResult> => {
      asked.push(o.file);
      const body = files[o.file];
      return Promise.resolve(
        body === undefined
          ? { ok: false, failure: { kind: 'error', code: 1, name: 'FILE_NOT_FOUND', message: 'not found' }, ms: 1 }
          : { ok: true, data: Buffer.from(body), ms: 1, blksize: 512, windowsize: 1 },
      );
    };
    const r = await fetchBoot(
      {
        server: '10.0.0.2',
        bootFile: 'pxelinux.0',
        mac: MAC,
        clientIp: '192.168.2.91',
        arch: 0,
        blksize: 1468,
        windowsize: 4,
      },
      get,
    );
    assert.equal(r.ok, true);
    assert.deepEqual(asked.slice(0, 3), ['pxelinux.0', 'ldlinux.c32', 'pxelinux.cfg/01-52-54-00-77-00-02']);
    assert.deepEqual(asked.slice(-4), ['pxelinux.cfg/C0A8', 'pxelinux.cfg/common', 'k', 'i']);
    assert.deepEqual(
      r.transfers.map((t) => t.role),
      ['boot file', 'ldlinux', 'config', 'config', 'kernel', 'initrd'],
    );
    assert.equal(r.pxelinux?.searched.filter((s) => !s.found).length, 5);
  });

  /** A TFTP server holding `files`; records what was asked. */
  function server(files: Record<string, string>): {
    asked: string[];
    get: (o: { file: string }) => Promise<TftpResult>;
  } {
    const asked: string[] = [];
    const get = (o: { file: string }): Promise<TftpResult> => {
      asked.push(o.file);
      const body = files[o.file];
      return Promise.resolve(
        body === undefined
          ? { ok: false, failure: { kind: 'error', code: 1, name: 'FILE_NOT_FOUND', message: 'not found' }, ms: 1 }
          : { ok: true, data: Buffer.from(body), ms: 1, blksize: 1408, windowsize: 1 },
      );
    };
    return { asked, get };
  }
  const plan = (bootFile: string, arch: number) => ({
    server: '10.0.0.2',
    bootFile,
    mac: MAC,
    clientIp: '10.0.0.50',
    arch,
    blksize: 1468,
    windowsize: 4,
  });
  // `make tftproot`'s default (Makefile): a prompt, then LOCALBOOT 0.
  const LOCAL = 'SAY hello\nPROMPT 1\nTIMEOUT 100\nDEFAULT local\nLABEL local\n  LOCALBOOT 0\n';

  it('LOCALBOOT is a valid default: local boot, no kernel asked for, success (BIOS and UEFI flavours)', async () => {
    assert.deepEqual(defaultBootEntry(parsePxelinuxConfig(LOCAL)), { label: 'local', initrd: [], localBoot: 0 });
    // syslinux.efi configs spell it in lower case, with -1 or any type; MENU DEFAULT picks it too.
    const efi = parsePxelinuxConfig('UI menu.c32\nlabel linux\n kernel k\nlabel disk\n menu default\n localboot -1\n');
    assert.deepEqual(defaultBootEntry(efi), { label: 'disk', initrd: [], localBoot: -1 });
    for (const [bootFile, arch, module] of [
      ['pxelinux.0', 0, 'ldlinux.c32'],
      ['syslinux.efi', 7, 'ldlinux.e64'],
      ['efi64/syslinux.efi', 9, 'efi64/ldlinux.e64'],
      ['efi32/syslinux.efi', 6, 'efi32/ldlinux.e32'],
    ] as const) {
      const dir = bootFile.includes('/') ? bootFile.replace(/[^/]*$/, '') : '';
      const { asked, get } = server({
        [bootFile]: 'nbp',
        [module]: 'core',
        [`${dir}pxelinux.cfg/default`]: LOCAL,
      });
      const r = await fetchBoot(plan(bootFile, arch), get);
      assert.equal(r.ok, true, bootFile);
      assert.deepEqual(r.pxelinux?.ldlinux, { file: module, found: true });
      assert.deepEqual(r.pxelinux?.entry, { label: 'local', initrd: [], localBoot: 0 });
      assert.equal(asked[1], module, `${bootFile}: ${module} comes before any config`);
      assert.equal(asked.at(-1), `${dir}pxelinux.cfg/default`, 'nothing asked after the config');
      assert.deepEqual(
        r.transfers.map((t) => t.role),
        ['boot file', 'ldlinux', 'config'],
      );
    }
  });

  it('a missing ldlinux stops the walk, as it stops pxelinux: no config asked, not ok', async () => {
    const { asked, get } = server({ 'pxelinux.0': 'nbp', 'pxelinux.cfg/default': LOCAL });
    const r = await fetchBoot(plan('pxelinux.0', 0), get);
    assert.equal(r.ok, false);
    assert.deepEqual(asked, ['pxelinux.0', 'ldlinux.c32']);
    assert.deepEqual(r.pxelinux, { ldlinux: { file: 'ldlinux.c32', found: false }, searched: [] });
  });
});

describe('diagnosis', () => {
  const offer = (over: Partial<OfferSummary>): OfferSummary => ({
    server: '10.0.0.1',
    source: '10.0.0.1:67',
    message: 'OFFER',
    kind: 'address',
    yourIp: '10.0.0.50',
    nextServer: '0.0.0.0',
    bootFile: '',
    pxeClient: false,
    vendorShape: 'none',
    menu: [],
    bootServers: [],
    uuidEcho: 'not-sent',
    broadcastFlag: true,
    ...over,
  });
  const result = (router: OfferSummary, file: string): ProbeResult => {
    const proxy = offer({
      server: '10.0.0.5',
      kind: 'proxy',
      yourIp: '0.0.0.0',
      nextServer: '10.0.0.5',
      bootFile: file,
    });
    return {
      interface: 'eth0',
      mac: '52:54:00:77:00:04',
      arch: 7,
      archName: 'efi-x64',
      firmware: 'edk2',
      offers: [router, proxy],
      lease: { address: '10.0.0.50', server: '10.0.0.1', acked: true, answer: 'ACK' },
      plan: { kind: 'direct', via: proxy, nextServer: '10.0.0.5', file },
      final: { nextServer: '10.0.0.5', file, from: '10.0.0.5' },
      released: true,
      findings: [],
      ok: true,
    };
  };
  const codesOf = (r: ProbeResult): string[] => diagnose(r).map((f) => f.code);

  it('shim or GRUB with a router naming another TFTP server (or none): GRUB will not find grub.cfg', () => {
    for (const file of ['shimx64.efi', 'sb/shimx64.efi', 'grubaa64.efi', 'grubnetx64.efi']) {
      assert.deepEqual(codesOf(result(offer({ nextServer: '10.0.0.1' }), file)), ['grub-server-from-router'], file);
      assert.deepEqual(codesOf(result(offer({}), file)), ['grub-server-from-router'], file);
    }
    const text = diagnose(result(offer({ nextServer: '10.0.0.1' }), 'shimx64.efi'))[0]!.text;
    assert.match(text, /names 10\.0\.0\.1, not 10\.0\.0\.5/);
    assert.match(text, /set next-server 10\.0\.0\.5 on 10\.0\.0\.1/);
  });

  it('no GRUB warning when the router names the TFTP server (siaddr, or option 66 with siaddr 0), or for other files', () => {
    assert.deepEqual(codesOf(result(offer({ nextServer: '10.0.0.5' }), 'shimx64.efi')), []);
    assert.deepEqual(codesOf(result(offer({ tftpServerName: '10.0.0.5' }), 'grubx64.efi')), [
      'router-sends-boot-options',
    ]);
    for (const file of ['ipxe.efi', 'syslinux.efi', 'pxelinux.0', 'bootx64.efi'])
      assert.deepEqual(codesOf(result(offer({ nextServer: '10.0.0.1' }), file)), [], file);
  });
});

describe('command line and helpers', () => {
  it('parses pxe-probe options and refuses bad ones with one line and status 2', () => {
    const ok = parseProbeArgs([
      '-i',
      'lo',
      '--mac',
      '52:54:00:12:34:56',
      '--arch',
      'efi-x64',
      '--uuid',
      'none',
      '--timeout',
      '2',
      '--json',
    ]);
    assert.equal(ok.kind, 'run');
    if (ok.kind === 'run') {
      assert.equal(ok.options.arch, 7);
      assert.equal(ok.options.uuid, undefined);
      assert.equal(ok.options.timeoutMs, 2000);
      assert.equal(ok.json, true);
    }
    for (const bad of [
      [],
      ['-i', 'lo', '--arch', 'vax'],
      ['-i', 'lo', '--mac', 'zz'],
      ['-i', 'lo', '--bogus'],
      ['-i', 'nosuch9'],
    ]) {
      const r = parseProbeArgs(bad);
      assert.equal(r.kind, 'exit', bad.join(' '));
      if (r.kind === 'exit') {
        assert.equal(r.code, 2);
        assert.match(r.stderr ?? '', /^pxe-probe: /);
      }
    }
  });

  it('reads /proc/net/udp and netmask prefix lengths', () => {
    const text =
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n' +
      '  1: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n' +
      '  2: 0100007F:0FAB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 77 2 0000000000000000 0\n';
    assert.deepEqual(parseProcNetUdp(text), [
      { address: '0.0.0.0', port: 67, inode: 4242 },
      { address: '127.0.0.1', port: 4011, inode: 77 },
    ]);
    assert.deepEqual(['255.255.255.0', '255.255.0.255', '255.255.255.255'].map(prefixLength), [24, 32, 32]);
  });
});
