import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BootPolicy } from '../../../src/pxe/boot.js';
import { decideBootAck, decideProxyOffer, type Decision, type ServerContext } from '../../../src/pxe/policy.js';
import { DhcpOption, MessageType } from '../../../src/wire/dhcp-constants.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../../src/wire/dhcp-packet.js';
import { fixture, request, UUID } from '../../helpers/packets.js';

// docs/vectors.md#common-values: interface 192.168.1.10/24, MAC 52:54:00:12:34:56, xid 0x1A2B3C4D.
const ctx: ServerContext = {
  serverIp: '192.168.1.10',
  tftpServer: '192.168.1.10',
  broadcastAddress: '255.255.255.255',
  clientPort: 68,
};
const policy: BootPolicy = { defaultFile: 'undionly.kpxe', efiMode: 'binl' };
const ADDRESS_OPTIONS = [1, 3, 6, 51, 58, 59];

function replyOf(d: Decision): { reply: DhcpPacket; bytes: Buffer; to: { address: string; port: number } } {
  assert.equal(d.kind, 'reply', d.kind === 'ignore' ? `ignored: ${d.reason}` : '');
  if (d.kind !== 'reply') throw new Error('unreachable');
  const bytes = encodeDhcp(d.reply);
  return { reply: decodeDhcp(bytes), bytes, to: d.to };
}

function reasonOf(d: Decision): string {
  assert.equal(d.kind, 'ignore');
  return d.kind === 'ignore' ? d.reason : '';
}

/** Checks every proxy reply must pass, whatever the client. */
function assertProxyReply(r: DhcpPacket, bytes: Buffer, type: number): void {
  assert.equal(r.op, 2);
  assert.equal(r.yourIp, '0.0.0.0');
  assert.equal(r.hops, 0);
  assert.deepEqual([...r.options.get(DhcpOption.MESSAGE_TYPE)!], [type]);
  assert.deepEqual([...r.options.get(DhcpOption.SERVER_ID)!], [192, 168, 1, 10]);
  assert.equal(r.options.get(DhcpOption.VENDOR_CLASS_ID)?.toString('latin1'), 'PXEClient');
  for (const code of ADDRESS_OPTIONS) assert.equal(r.options.has(code), false, `option ${code} must not be sent`);
  assert.ok(bytes.length >= 300 && bytes.length <= 576, `length ${bytes.length}`);
  assert.equal(r.options.has(DhcpOption.OVERLOAD), false);
  // No PAD between options: the option area is one TLV run up to END.
  const area = bytes.subarray(240);
  let pos = 0;
  while (area[pos] !== 255) {
    assert.notEqual(area[pos], 0, `PAD byte at option offset ${pos}`);
    pos += 2 + area[pos + 1]!;
  }
}

describe('port 67: proxy offers (docs/vectors.md)', () => {
  it('1. BIOS DISCOVER gets the bypass offer by broadcast', () => {
    const d = decideProxyOffer(request({ arch: 0 }), ctx, policy);
    const { reply: r, bytes, to } = replyOf(d);
    assert.deepEqual(to, { address: '255.255.255.255', port: 68 });
    assertProxyReply(r, bytes, MessageType.OFFER);
    assert.equal(r.transactionId, 0x1a2b3c4d);
    assert.equal(r.flags, 0x8000);
    assert.equal(r.clientIp, '0.0.0.0');
    assert.equal(r.nextServer, '192.168.1.10');
    assert.equal(r.clientHardware.toString('hex'), '525400123456' + '00'.repeat(10));
    assert.deepEqual(r.options.get(DhcpOption.CLIENT_UUID), UUID);
    assert.deepEqual([...r.options.get(DhcpOption.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
    assert.equal(r.bootFile, 'undionly.kpxe');
    assert.ok(
      bytes.subarray(108 + 'undionly.kpxe'.length, 236).every((b) => b === 0),
      'file zero-filled',
    );
    // docs/dhcp-options.md#a-complete-proxy-offer option order: 53, 54, 60, 97, 43, END.
    assert.deepEqual([...r.options.keys()], [53, 54, 60, 97, 43]);
  });

  it('2. UEFI x64 DISCOVER gets the BINL offer: no 43, siaddr = us even with another TFTP server', () => {
    const other = { ...ctx, tftpServer: '192.168.1.20' };
    const d = decideProxyOffer(request({ arch: 7, vendor: 'PXEClient:Arch:00007:UNDI:003016' }), other, policy);
    const { reply: r, bytes } = replyOf(d);
    assertProxyReply(r, bytes, MessageType.OFFER);
    assert.equal(r.options.has(DhcpOption.VENDOR_SPECIFIC), false);
    assert.equal(r.nextServer, '192.168.1.10');
    assert.equal(r.bootFile, 'undionly.kpxe');
  });

  it('2b. --efi-mode bypass gives UEFI the bypass shape with the TFTP server as siaddr', () => {
    const other = { ...ctx, tftpServer: '192.168.1.20' };
    const d = decideProxyOffer(request({ arch: 7 }), other, { ...policy, efiMode: 'bypass' });
    const { reply: r } = replyOf(d);
    assert.deepEqual([...r.options.get(DhcpOption.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
    assert.equal(r.nextServer, '192.168.1.20');
  });

  it('arch 9 (RFC 4578 erratum) is served as x64 UEFI', () => {
    const { reply: r } = replyOf(decideProxyOffer(request({ arch: 9 }), ctx, policy));
    assert.equal(r.options.has(DhcpOption.VENDOR_SPECIFIC), false);
  });

  it('6. iPXE on UEFI is not sent to 4011: bypass shape', () => {
    const { reply: r } = replyOf(decideProxyOffer(request({ arch: 7, userClass: 'iPXE' }), ctx, policy));
    assert.deepEqual([...r.options.get(DhcpOption.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
  });

  it('7. relayed DISCOVER: unicast to giaddr:67, giaddr kept, hops 0, broadcast flag', () => {
    const d = decideProxyOffer(request({ giaddr: '10.0.5.1', hops: 1 }), ctx, policy);
    const { reply: r, to } = replyOf(d);
    assert.deepEqual(to, { address: '10.0.5.1', port: 67 });
    assert.equal(r.relayIp, '10.0.5.1');
    assert.equal(r.hops, 0);
    assert.equal(r.flags & 0x8000, 0x8000);
  });

  it('8. non-PXE vendor classes and no option 60 get nothing', () => {
    assert.equal(reasonOf(decideProxyOffer(request({ vendor: 'MSFT 5.0' }), ctx, policy)), 'not-pxe-client');
    assert.equal(reasonOf(decideProxyOffer(request({ vendor: null }), ctx, policy)), 'not-pxe-client');
    assert.equal(
      reasonOf(decideProxyOffer(request({ vendor: 'HTTPClient:Arch:00016:UNDI:003001' }), ctx, policy)),
      'not-pxe-client',
    );
    assert.equal(reasonOf(decideProxyOffer(request({ vendor: 'PXEClien' }), ctx, policy)), 'not-pxe-client');
    assert.equal(
      reasonOf(decideProxyOffer(request({ vendor: 'pxeclient:Arch:00000' }), ctx, policy)),
      'not-pxe-client',
    );
  });

  it('9. DHCPREQUEST, INFORM and RELEASE on 67 get nothing', () => {
    for (const type of [MessageType.REQUEST, MessageType.INFORM, MessageType.RELEASE, MessageType.DECLINE]) {
      assert.equal(reasonOf(decideProxyOffer(request({ type }), ctx, policy)), 'wrong-message-type');
    }
  });

  it('BOOTREPLYs (other servers, our own packets) get nothing', () => {
    assert.equal(reasonOf(decideProxyOffer(request({ op: 2 }), ctx, policy)), 'not-bootrequest');
    const own = replyOf(decideProxyOffer(request(), ctx, policy)).reply;
    assert.equal(reasonOf(decideProxyOffer(own, ctx, policy)), 'not-bootrequest');
  });

  it('a BOOTP request without option 53 gets nothing', () => {
    const p = request();
    p.options.delete(DhcpOption.MESSAGE_TYPE);
    assert.equal(reasonOf(decideProxyOffer(p, ctx, policy)), 'no-message-type');
  });

  it('10. missing option 97: answered, and the answer has no 97', () => {
    const { reply: r } = replyOf(decideProxyOffer(request({ uuid: null }), ctx, policy));
    assert.equal(r.options.has(DhcpOption.CLIENT_UUID), false);
  });

  it('11. malformed option 97 (16 bytes, or type 1) is dropped as bad-uuid', () => {
    assert.equal(reasonOf(decideProxyOffer(request({ uuid: UUID.subarray(1) }), ctx, policy)), 'bad-uuid');
    const type1 = Buffer.from(UUID);
    type1[0] = 1;
    assert.equal(reasonOf(decideProxyOffer(request({ uuid: type1 }), ctx, policy)), 'bad-uuid');
  });

  it('option 93 of the wrong length is dropped as bad-arch; a missing 93 counts as BIOS', () => {
    const p = request();
    p.options.set(DhcpOption.CLIENT_ARCH, Buffer.of(7));
    assert.equal(reasonOf(decideProxyOffer(p, ctx, policy)), 'bad-arch');
    const d = decideProxyOffer(request({ arch: null, vendor: 'PXEClient' }), ctx, policy);
    assert.deepEqual([...replyOf(d).reply.options.get(DhcpOption.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
  });

  it('a boot file longer than the `file` field goes in option 67 with a NUL', () => {
    const url = `http://192.168.1.10/${'x'.repeat(140)}.ipxe`;
    const { reply: r } = replyOf(decideProxyOffer(request(), ctx, { ...policy, defaultFile: url }));
    assert.equal(r.bootFile, '');
    assert.equal(r.options.get(DhcpOption.BOOTFILE_NAME)?.toString('latin1'), `${url}\0`);
  });

  it('captured firmware DISCOVERs are answered; captured REQUESTs on 67 are not', () => {
    for (const name of ['ipxe-bios-rom-discover', 'ovmf-edk2-discover', 'ipxe-efi-discover']) {
      assert.equal(decideProxyOffer(decodeDhcp(fixture(name)), ctx, policy).kind, 'reply', name);
    }
    for (const name of ['ipxe-bios-rom-request-67', 'ovmf-edk2-request-67']) {
      assert.equal(reasonOf(decideProxyOffer(decodeDhcp(fixture(name)), ctx, policy)), 'wrong-message-type', name);
    }
    const plain = decodeDhcp(fixture('syslinux-efi-discover-no-vendor-class'));
    assert.equal(reasonOf(decideProxyOffer(plain, ctx, policy)), 'not-pxe-client');
  });
});

describe('port 4011: boot ACKs (docs/vectors.md)', () => {
  const tftpElsewhere = { ...ctx, tftpServer: '192.168.1.20' };

  it('3. UEFI REQUEST from :4011 is answered to :4011 with the EFI file and no 43', () => {
    const req = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', xid: 0x55aa0001, arch: 7 });
    const d = decideBootAck(req, { address: '192.168.1.77', port: 4011 }, tftpElsewhere, policy);
    const { reply: r, bytes, to } = replyOf(d);
    assert.deepEqual(to, { address: '192.168.1.77', port: 4011 });
    assertProxyReply(r, bytes, MessageType.ACK);
    assert.equal(r.transactionId, 0x55aa0001);
    assert.equal(r.clientIp, '192.168.1.77');
    assert.equal(r.nextServer, '192.168.1.20');
    assert.equal(r.bootFile, 'undionly.kpxe');
    assert.ok(r.options.has(DhcpOption.CLIENT_UUID));
    assert.equal(r.options.has(DhcpOption.VENDOR_SPECIFIC), false);
  });

  it('4. iPXE-style REQUEST from :68 is answered to :68', () => {
    const req = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', userClass: 'iPXE' });
    req.options.set(DhcpOption.SERVER_ID, Buffer.of(192, 168, 1, 10));
    const { to } = replyOf(decideBootAck(req, { address: '192.168.1.77', port: 68 }, ctx, policy));
    assert.deepEqual(to, { address: '192.168.1.77', port: 68 });
  });

  it('5. DHCPINFORM gets an ACK', () => {
    const req = request({ type: MessageType.INFORM, ciaddr: '192.168.1.77' });
    const { reply: r } = replyOf(decideBootAck(req, { address: '192.168.1.77', port: 68 }, ctx, policy));
    assert.deepEqual([...r.options.get(DhcpOption.MESSAGE_TYPE)!], [MessageType.ACK]);
  });

  it('ciaddr differing from the sender: the ACK goes to ciaddr:68', () => {
    const req = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77' });
    const { to } = replyOf(decideBootAck(req, { address: '192.168.1.99', port: 4011 }, ctx, policy));
    assert.deepEqual(to, { address: '192.168.1.77', port: 68 });
  });

  it('ciaddr 0: broadcast to :68 with the broadcast flag', () => {
    const req = request({ type: MessageType.REQUEST, xid: 0 });
    const { reply: r, to } = replyOf(decideBootAck(req, { address: '0.0.0.0', port: 68 }, ctx, policy));
    assert.deepEqual(to, { address: '255.255.255.255', port: 68 });
    assert.equal(r.flags & 0x8000, 0x8000);
  });

  it('boot-server discovery: sub-option 71 is echoed (captured iPXE BIOS ROM request)', () => {
    const req = decodeDhcp(fixture('ipxe-bios-rom-request-4011-bootserver'));
    const { reply: r } = replyOf(decideBootAck(req, { address: '10.77.0.50', port: 68 }, ctx, policy));
    const vendor = r.options.get(DhcpOption.VENDOR_SPECIFIC)!;
    assert.ok(vendor.includes(Buffer.from([71, 4, 0x80, 0x00, 0x00, 0x00])), vendor.toString('hex'));
  });

  it("24. UEFI iPXE on :4011 gets EDK2's EFI shape: no 43 (BINL), bypass bytes only with --efi-mode bypass", () => {
    const from = { address: '192.168.1.77', port: 68 };
    const edk2 = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', arch: 7 });
    const ipxe = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', arch: 7, userClass: 'iPXE' });
    for (const arch of [6, 7, 9, 11]) {
      const req = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', arch, userClass: 'iPXE' });
      const d = decideBootAck(req, from, tftpElsewhere, policy);
      const { reply: r, bytes } = replyOf(d);
      assertProxyReply(r, bytes, MessageType.ACK);
      assert.equal(r.options.has(DhcpOption.VENDOR_SPECIFIC), false, `arch ${arch}: option 43 sent`);
      assert.equal(r.nextServer, '192.168.1.20', `arch ${arch}: siaddr is the TFTP server`);
      assert.equal(d.kind === 'reply' && d.choice.shape, 'binl');
    }
    // The same bytes as EDK2's answer, apart from nothing: same options, same header.
    const a = encodeDhcp(replyOf(decideBootAck(edk2, from, tftpElsewhere, policy)).reply);
    const b = encodeDhcp(replyOf(decideBootAck(ipxe, from, tftpElsewhere, policy)).reply);
    assert.deepEqual(b, a);
    // The captured ipxe.efi request (arch 7, user class iPXE, option 175).
    const captured = decodeDhcp(fixture('ipxe-efi-request-4011'));
    const c = replyOf(decideBootAck(captured, { address: captured.clientIp, port: 68 }, ctx, policy)).reply;
    assert.equal(c.options.has(DhcpOption.VENDOR_SPECIFIC), false);
    // --efi-mode bypass: EDK2 and iPXE alike get the bypass bytes.
    const bypass = { ...policy, efiMode: 'bypass' as const };
    for (const req of [edk2, ipxe]) {
      const r = replyOf(decideBootAck(req, from, ctx, bypass)).reply;
      assert.deepEqual([...r.options.get(DhcpOption.VENDOR_SPECIFIC)!], [6, 1, 8, 255]);
    }
    // BIOS iPXE on :4011 keeps the bypass shape; its port 67 offer on UEFI too (vector 6).
    const bios = request({ type: MessageType.REQUEST, ciaddr: '192.168.1.77', arch: 0, userClass: 'iPXE' });
    assert.deepEqual([...replyOf(decideBootAck(bios, from, ctx, policy)).reply.options.get(43)!], [6, 1, 8, 255]);
    const offer = replyOf(decideProxyOffer(request({ arch: 7, userClass: 'iPXE' }), ctx, policy)).reply;
    assert.deepEqual([...offer.options.get(43)!], [6, 1, 8, 255]);
  });

  it('captured OVMF and ipxe.efi 4011 requests are answered', () => {
    const edk2 = decodeDhcp(fixture('ovmf-edk2-request-4011-binl'));
    const a = replyOf(decideBootAck(edk2, { address: edk2.clientIp, port: 4011 }, ctx, policy));
    assert.equal(a.to.port, 4011);
    const ipxe = decodeDhcp(fixture('ipxe-efi-request-4011'));
    const b = replyOf(decideBootAck(ipxe, { address: ipxe.clientIp, port: 68 }, ctx, policy));
    assert.equal(b.to.port, 68);
  });

  it('DISCOVER on 4011 and non-PXE requests get nothing', () => {
    assert.equal(
      reasonOf(decideBootAck(request(), { address: '1.2.3.4', port: 68 }, ctx, policy)),
      'wrong-message-type',
    );
    const plain = request({ type: MessageType.REQUEST, vendor: 'udhcp 1.36', ciaddr: '192.168.1.77' });
    assert.equal(reasonOf(decideBootAck(plain, { address: '192.168.1.77', port: 68 }, ctx, policy)), 'not-pxe-client');
  });
});
