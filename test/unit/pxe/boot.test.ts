import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseClientPatterns } from '../../../src/pxe/acl.js';
import { bootFiles, type BootPolicy } from '../../../src/pxe/boot.js';
import { decideBootAck, decideProxyOffer, type Decision, type ServerContext } from '../../../src/pxe/policy.js';
import { parseBootRules } from '../../../src/pxe/rules.js';
import { DhcpOption, MessageType } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../../src/wire/dhcp-packet.js';
import { fixture, request, type RequestSpec } from '../../helpers/packets.js';
import { RPI_OPTION_43, rpiUuid, subOptionCodes } from '../../helpers/rpi.js';

// docs/vectors.md#common-values: interface 192.168.1.10/24, MAC 52:54:00:12:34:56, xid 0x1A2B3C4D.
const ctx: ServerContext = {
  serverIp: '192.168.1.10',
  tftpServer: '192.168.1.10',
  broadcastAddress: '255.255.255.255',
  clientPort: 68,
};
const SCRIPT = 'http://192.168.1.10/boot.ipxe';
const BYPASS_43 = [6, 1, 8, 255];

/** The README's home lab: iPXE gets the menu script, UEFI gets iPXE, ARM boards their own, BIOS the default. */
const homeLab: BootPolicy = {
  defaultFile: 'undionly.kpxe',
  efiMode: 'binl',
  rules: parseBootRules([
    `user-class=iPXE,file=${SCRIPT}`,
    'arch=efi-x64,file=ipxe.efi',
    'arch=efi-arm64,file=arm64/ipxe.efi,next-server=192.168.1.20',
  ]),
};
const noDefault: BootPolicy = {
  efiMode: 'binl',
  rules: parseBootRules(['arch=bios,file=undionly.kpxe', 'arch=efi-x64,file=ipxe.efi']),
};

interface Answer {
  reply: DhcpPacket;
  bytes: Buffer;
  rule: string;
  file: string;
  vendor: number[] | undefined;
}

function answer(d: Decision): Answer {
  if (d.kind !== 'reply') assert.fail(`ignored: ${d.reason} ${d.detail ?? ''}`);
  const bytes = encodeDhcp(d.reply);
  const reply = decodeDhcp(bytes);
  const file =
    reply.bootFile || (reply.options.get(DhcpOption.BOOTFILE_NAME)?.toString('latin1').replace(/\0$/, '') ?? '');
  const vendor = reply.options.get(DhcpOption.VENDOR_SPECIFIC);
  return { reply, bytes, rule: d.choice.rule, file, vendor: vendor ? [...vendor] : undefined };
}

function refusal(d: Decision): { reason: string; level: string | undefined; detail: string | undefined } {
  if (d.kind !== 'ignore') assert.fail(`answered with ${d.choice.rule}`);
  return { reason: d.reason, level: d.level, detail: d.detail };
}

const offer = (spec: RequestSpec, policy: BootPolicy = homeLab) => decideProxyOffer(request(spec), ctx, policy);
const offerTo = (name: string, policy: BootPolicy = homeLab) =>
  decideProxyOffer(decodeDhcp(fixture(name)), ctx, policy);
const ackTo = (name: string, policy: BootPolicy = homeLab) => {
  const req = decodeDhcp(fixture(name));
  return decideBootAck(req, { address: req.clientIp, port: 4011 }, ctx, policy);
};

describe('boot rules through decideProxyOffer / decideBootAck', () => {
  it('BIOS PXE ROM (93=0, no iPXE): the default, bypass option 43', () => {
    const a = answer(offer({ arch: 0 }));
    assert.deepEqual([a.file, a.rule, a.reply.nextServer], ['undionly.kpxe', 'default', '192.168.1.10']);
    assert.deepEqual(a.vendor, BYPASS_43);
  });

  it('UEFI x64 firmware (OVMF capture): ipxe.efi, BINL shape on 67, the same file on 4011', () => {
    const o = answer(offerTo('ovmf-edk2-discover'));
    assert.deepEqual([o.file, o.rule], ['ipxe.efi', 'rule 2 (arch=efi-x64,file=ipxe.efi)']);
    assert.equal(o.vendor, undefined, 'no option 43: the firmware asks on 4011');
    assert.equal(o.reply.nextServer, '192.168.1.10');
    const k = answer(ackTo('ovmf-edk2-request-4011-binl'));
    assert.deepEqual([k.file, k.rule], ['ipxe.efi', 'rule 2 (arch=efi-x64,file=ipxe.efi)']);
    assert.deepEqual([...k.reply.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.ACK]);
  });

  it('UEFI x64 sending 9 (RFC 4578 erratum) is served as efi-x64', () => {
    assert.equal(answer(offer({ arch: 9 })).file, 'ipxe.efi');
  });

  it('UEFI arm64: its own file, and the rule next-server in the 4011 ACK', () => {
    const o = answer(offer({ arch: 11 }));
    assert.deepEqual(
      [o.file, o.rule],
      ['arm64/ipxe.efi', 'rule 3 (arch=efi-arm64,file=arm64/ipxe.efi,next-server=192.168.1.20)'],
    );
    assert.equal(o.reply.nextServer, '192.168.1.10', 'BINL offer: siaddr is us, so the 4011 request comes here');
    const req = request({ arch: 11, type: MessageType.REQUEST, ciaddr: '192.168.1.77' });
    const k = answer(decideBootAck(req, { address: '192.168.1.77', port: 4011 }, ctx, homeLab));
    assert.deepEqual([k.file, k.reply.nextServer], ['arm64/ipxe.efi', '192.168.1.20']);
  });

  it('iPXE on BIOS (ROM capture): the script, not undionly.kpxe again', () => {
    const a = answer(offerTo('ipxe-bios-rom-discover'));
    assert.deepEqual([a.file, a.rule], [SCRIPT, `rule 1 (user-class=iPXE,file=${SCRIPT})`]);
    assert.deepEqual(a.vendor, BYPASS_43);
  });

  it('iPXE on UEFI (ipxe.efi capture): the script on 67 and on 4011, not ipxe.efi again', () => {
    const o = answer(offerTo('ipxe-efi-discover'));
    assert.deepEqual([o.file, o.rule], [SCRIPT, `rule 1 (user-class=iPXE,file=${SCRIPT})`]);
    const k = answer(ackTo('ipxe-efi-request-4011'));
    assert.equal(k.file, SCRIPT);
  });

  it('missing option 93 counts as bios', () => {
    assert.deepEqual(
      [answer(offer({ arch: null })).file, answer(offer({ arch: null })).rule],
      ['undionly.kpxe', 'default'],
    );
    const a = answer(offer({ arch: null }, noDefault));
    assert.deepEqual([a.file, a.rule], ['undionly.kpxe', 'rule 1 (arch=bios,file=undionly.kpxe)']);
  });

  it('unknown arch: the default covers it; with no default it is ignored with a warning naming the arch', () => {
    assert.equal(answer(offer({ arch: 0x1234 })).rule, 'default');
    assert.deepEqual(refusal(offer({ arch: 0x1234 }, noDefault)), {
      reason: 'arch-not-served',
      level: 'warn',
      detail: 'no boot rule matches arch arch-4660 (4660) and no default <nbp> is set',
    });
    assert.match(refusal(offer({ arch: 11 }, noDefault)).detail ?? '', /arch efi-arm64 \(11\)/);
  });

  it('denied MAC: ignored at info, naming the entry; also on 4011', () => {
    const policy = { ...homeLab, deny: parseClientPatterns('deny', ['52:54:00:12:34:*']) };
    assert.deepEqual(refusal(offer({}, policy)), {
      reason: 'denied',
      level: 'info',
      detail: 'matches --deny 52:54:00:12:34:*',
    });
    const req = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', arch: 7 });
    assert.equal(refusal(decideBootAck(req, { address: '192.168.1.77', port: 4011 }, ctx, policy)).reason, 'denied');
    assert.equal(answer(offer({ mac: '52:54:00:12:35:00' }, policy)).file, 'undionly.kpxe');
  });

  it('allowed UUID: answered; any other client is not', () => {
    const policy = { ...homeLab, allow: parseClientPatterns('allow', ['7e57ab00-0000-4000-8000-525400770002']) };
    const ovmf = answer(offerTo('ovmf-edk2-discover', policy));
    assert.equal(ovmf.file, 'ipxe.efi');
    assert.deepEqual(refusal(offerTo('ipxe-bios-rom-discover', policy)), {
      reason: 'not-allowed',
      level: 'info',
      detail: 'matches no --allow entry',
    });
  });

  it('Raspberry Pi 4 by OUI: the exact Pi option 43, no PAD, siaddr set', () => {
    const a = answer(offer({ mac: 'dc:a6:32:01:36:c2', uuid: null }));
    assert.deepEqual(a.vendor, [...RPI_OPTION_43]);
    assert.ok(
      a.bytes.includes(Buffer.concat([Buffer.of(43, 32), RPI_OPTION_43])),
      'option 43 on the wire is 2B 20 + the docs/dhcp-options.md#raspberry-pi-option-43 bytes',
    );
    assert.deepEqual(subOptionCodes(Buffer.from(a.vendor ?? [])), [6, 10, 9]);
    assert.equal(a.reply.nextServer, '192.168.1.10');
    assert.equal(a.rule, 'raspberry-pi, default');
  });

  it('Raspberry Pi 5 by option 97 (RPi5) on another MAC: the same option 43, and 97 echoed', () => {
    const uuid = rpiUuid('RPi5');
    const a = answer(offer({ mac: '52:54:00:12:34:56', uuid }));
    assert.deepEqual(a.vendor, [...RPI_OPTION_43]);
    assert.deepEqual(a.reply.options.get(DhcpOption.CLIENT_UUID), uuid);
  });

  it('a Pi takes file and next-server from a matching rule, still with its own option 43', () => {
    const policy: BootPolicy = {
      ...homeLab,
      rules: parseBootRules(['mac=dc:a6:32:*,file=pi/start4.elf,next-server=192.168.1.30']),
    };
    const a = answer(offer({ mac: 'dc:a6:32:01:36:c2' }, policy));
    assert.deepEqual(
      [a.file, a.reply.nextServer, a.rule],
      [
        'pi/start4.elf',
        '192.168.1.30',
        'raspberry-pi, rule 1 (mac=dc:a6:32:*,file=pi/start4.elf,next-server=192.168.1.30)',
      ],
    );
    assert.deepEqual(a.vendor, [...RPI_OPTION_43]);
    assert.equal(answer(offer({ mac: 'dc:a6:32:01:36:c2' }, noDefault)).vendor?.length, 32, 'a Pi needs no file');
  });

  it('a PC with a non-Pi MAC and an ordinary UUID gets the generic answer', () => {
    const a = answer(offer({ mac: '52:54:00:12:34:56' }));
    assert.deepEqual(a.vendor, BYPASS_43);
    assert.equal(a.rule, 'default');
  });

  it('--no-rpi: a Pi gets the generic answer; deny still comes first', () => {
    assert.deepEqual(answer(offer({ mac: 'dc:a6:32:01:36:c2' }, { ...homeLab, rpi: false })).vendor, BYPASS_43);
    const denied = { ...homeLab, deny: parseClientPatterns('deny', ['dc:a6:32:*']) };
    assert.equal(refusal(offer({ mac: 'dc:a6:32:01:36:c2' }, denied)).reason, 'denied');
  });

  it('without rules the positional <nbp> answers every client, as pxe-pdhcp did', () => {
    const plain: BootPolicy = { defaultFile: 'pxelinux.0', efiMode: 'binl' };
    for (const spec of [{ arch: 0 }, { arch: 7 }, { arch: 11 }, { userClass: 'iPXE' }, { arch: 0x1234 }]) {
      const a = answer(offer(spec, plain));
      assert.deepEqual([a.file, a.rule], ['pxelinux.0', 'default'], JSON.stringify(spec));
    }
  });

  it('bootFiles lists the default and every rule file once, for the TFTP root check', () => {
    assert.deepEqual(bootFiles(homeLab), ['undionly.kpxe', SCRIPT, 'ipxe.efi', 'arm64/ipxe.efi']);
    assert.deepEqual(bootFiles(noDefault), ['undionly.kpxe', 'ipxe.efi']);
  });
});
