/**
 * Real UEFI HTTP Boot through `--http-boot`, with no TFTP at all: OVMF (Debian `ovmf`) under QEMU on
 * a namespace LAN beside a PXE-less dnsmasq. OVMF's HTTPClient DISCOVER gets our HTTPClient offer,
 * it downloads `ipxe.efi` from our HTTP server and starts it; iPXE asks again (user class iPXE),
 * gets its generated script, and loads the script's kernel and initrd over HTTP. The kernel is an
 * iPXE script that prints a marker on the serial console, so the boot is seen end to end.
 * OVMF's PXE boot options are turned off through its fw_cfg knobs (opt/org.tianocore/…), so the
 * boot manager goes straight to its `UEFI HTTPv4` entry.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { have, Lab, startRouter, waitForOutput } from '../helpers/netns.js';

const DAEMON = join(fileURLToPath(new URL('../../', import.meta.url)), 'dist/bin/pxe-pdhcp.js');
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const IPXE_EFI = '/usr/lib/ipxe/ipxe.efi';
const MARKER = 'PXE-PDHCP-HTTP-BOOT-KERNEL-OK';
const MAC = '52:54:00:7c:00:01';

for (const tool of ['ip', 'dnsmasq', 'qemu-system-x86_64']) {
  if (!have(tool)) throw new Error(`${tool} is not installed (make deps installs it)`);
}
for (const file of [OVMF_CODE, OVMF_VARS, IPXE_EFI]) {
  if (!existsSync(file)) throw new Error(`${file} is missing (Debian packages ovmf, ipxe)`);
}

describe('UEFI HTTP Boot of real OVMF through --http-boot (namespaces, QEMU)', () => {
  let lab: Lab;
  let work: string;
  const log: string[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'http-boot-ovmf-'));
    chmodSync(work, 0o755); // the daemon reads as nobody
    const root = join(work, 'root');
    mkdirSync(root, { mode: 0o755 });
    copyFileSync(IPXE_EFI, join(root, 'ipxe.efi'));
    chmodSync(join(root, 'ipxe.efi'), 0o644);
    writeFileSync(join(root, 'kernel.ipxe'), `#!ipxe\necho ${MARKER}\nimgstat\nshell\n`, { mode: 0o644 });
    writeFileSync(join(root, 'initrd.bin'), randomBytes(2_000_000), { mode: 0o644 });
    copyFileSync(OVMF_VARS, join(work, 'vars.fd'));
    lab = await Lab.create('hboot');
    const rtr = await lab.addHost('rtr', '10.80.0.1/24');
    const srv = await lab.addHost('srv', '10.80.0.2/24');
    // The client namespace is a small switch: its LAN port and QEMU's tap.
    const cli = `${lab.id}-cli`;
    await lab.addNamespace(cli);
    await lab.attach(cli, 'eth0', null);
    await lab.ip(cli, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await lab.ip(cli, 'link', 'set', 'eth0', 'master', 'br0');
    await lab.ip(cli, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
    await lab.ip(cli, 'link', 'set', 'tap0', 'master', 'br0');
    await lab.ip(cli, 'link', 'set', 'tap0', 'up');
    await lab.ip(cli, 'link', 'set', 'br0', 'up');
    await startRouter(lab, rtr.ns, '10.80.0.100,10.80.0.150', join(work, 'leases'));
    const daemon = lab.spawn(srv.ns, process.execPath, [
      ...[DAEMON, '-d', '-i', 'eth0', '--tftp-root', root, '--no-tftp', '--http-boot'],
      ...['--boot', 'arch=efi-x64-http,file=ipxe.efi'],
      ...['--boot', 'user-class=iPXE,kernel=kernel.ipxe,initrd=initrd.bin,cmdline=console=ttyS0'],
    ]);
    daemon.stderr!.on('data', (c: Buffer) => log.push(...c.toString().split('\n').filter(Boolean)));
    await waitForOutput(daemon, /HTTP server listening/, 15_000);
    lab.spawn(cli, 'qemu-system-x86_64', [
      ...[
        '-machine',
        'q35',
        '-m',
        '512',
        '-display',
        'none',
        '-no-reboot',
        '-serial',
        `file:${join(work, 'serial.log')}`,
      ],
      ...['-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`],
      ...['-drive', `if=pflash,format=raw,unit=1,file=${join(work, 'vars.fd')}`],
      ...['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n'],
      ...['-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n'],
      ...['-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=n'],
      ...['-netdev', 'tap,id=lan,ifname=tap0,script=no,downscript=no'],
      ...['-device', `virtio-net-pci,netdev=lan,mac=${MAC},romfile=`],
    ]);
  });
  after(async () => {
    await lab?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('boots: HTTPClient offer, ipxe.efi over HTTP, then the generated script, kernel and initrd', async () => {
    const serial = (): string =>
      existsSync(join(work, 'serial.log')) ? readFileSync(join(work, 'serial.log'), 'latin1') : '';
    const deadline = Date.now() + 240_000;
    while (!serial().includes(MARKER) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
    // eslint-disable-next-line no-control-regex
    const screen = serial().replace(/\x1b\[[0-9;=]*[A-Za-z]/g, '');
    const ours = log.join('\n');
    assert.ok(
      screen.includes(MARKER),
      `no marker on the serial console:\n${screen.slice(-3000)}\n--- daemon:\n${ours}`,
    );
    assert.match(screen, /UEFI HTTPv4 \(MAC:5254007C0001\)/);
    assert.match(screen, /URI: http:\/\/10\.80\.0\.2\/ipxe\.efi/);
    assert.match(
      ours,
      /proxy offer mac=52:54:00:7c:00:01 arch=efi-x64-http vendor=HTTPClient:Arch:00016\S* .*file=http:\/\/10\.80\.0\.2\/ipxe\.efi .*shape=http/,
    );
    assert.match(ours, /HTTP client=10\.80\.0\.\d+:\d+ method=GET path=\/ipxe\.efi status=200/);
    assert.match(
      ours,
      /HTTP client=\S+ method=GET path="\/pxe-pdhcp\/boot\/52-54-00-7c-00-01\.ipxe\?arch=7\S*" status=200/,
    );
    assert.match(ours, /path=\/kernel\.ipxe status=200/);
    assert.match(ours, /path=\/initrd\.bin status=200 bytes=2000000/);
  });
});
