import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIRMWARE, LKRN_PROOF, MARKER } from './tftproot.js';
import { MAC } from './topology.js';

export type ClientName = 'bios' | 'uefi' | 'ipxe' | 'secureboot' | 'arm64';
export const CLIENT_NAMES: readonly ClientName[] = ['bios', 'uefi', 'ipxe', 'secureboot', 'arm64'];

/** A QEMU machine that boots from the network, and what a successful boot leaves behind. */
export interface ClientSpec {
  name: ClientName | 'bios-upstream';
  title: string;
  mac: string;
  /** Printed on the serial console once our files have run. */
  marker: string;
  /** The file our offer names; the boot-time figure runs from QEMU start to its first request. */
  bootFile: string;
  /** Files the client must fetch from our TFTP server, in any order. */
  files: string[];
  /** Whether the firmware must come back on port 4011 (UEFI PXE, BINL-shaped offer). */
  uses4011: boolean;
  /** The QEMU system emulator. */
  qemu: 'qemu-system-x86_64' | 'qemu-system-aarch64';
  /** QEMU arguments after the common ones. */
  qemuArgs: (work: string) => string[];
}

const TAP = 'tap0';

function nic(model: string, mac: string, romfile: string): string[] {
  return [
    '-netdev',
    `tap,id=lan,ifname=${TAP},script=no,downscript=no`,
    '-device',
    `${model},netdev=lan,mac=${mac},romfile=${romfile}`,
  ];
}

/** UEFI firmware with a private copy of its variable store, so every run starts from the same store. */
function pflash(work: string, name: string, code: string, varsTemplate: string): string[] {
  const vars = join(work, `${name}-VARS.fd`);
  copyFileSync(varsTemplate, vars);
  return [
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${vars}`,
  ];
}

function ovmf(work: string, name: string): string[] {
  return ['-machine', 'q35', ...pflash(work, name, FIRMWARE.ovmfCode, FIRMWARE.ovmfVars)];
}

/**
 * OVMF with Secure Boot enforced: the SMM build (its variable store is writable only from SMM, so
 * the machine needs SMM and a secure flash), and a store with Microsoft's keys enrolled, which
 * Debian's build turns Secure Boot on with.
 */
function ovmfSecureBoot(work: string, name: string): string[] {
  return [
    '-machine',
    'q35,smm=on',
    '-global',
    'driver=cfi.pflash01,property=secure,value=on',
    ...pflash(work, name, FIRMWARE.ovmfSecbootCode, FIRMWARE.ovmfMsVars),
  ];
}

export const CLIENTS: Record<ClientName, ClientSpec> = {
  bios: {
    name: 'bios',
    title: 'BIOS: SeaBIOS + iPXE ROM on e1000 -> pxelinux.0 -> ipxe.lkrn',
    mac: MAC.bios,
    marker: MARKER.bios,
    bootFile: 'pxelinux.0',
    files: ['pxelinux.0', 'ldlinux.c32', 'pxelinux.cfg/default', 'ipxe.lkrn', LKRN_PROOF],
    uses4011: false,
    qemu: 'qemu-system-x86_64',
    qemuArgs: () => ['-machine', 'pc', '-boot', 'n', ...nic('e1000', MAC.bios, FIRMWARE.e1000Rom)],
  },
  uefi: {
    name: 'uefi',
    title: 'UEFI: OVMF PXE on virtio-net (no iPXE ROM) -> port 4011 -> syslinux.efi',
    mac: MAC.uefi,
    marker: MARKER.uefi,
    bootFile: 'efi64/syslinux.efi',
    files: ['efi64/syslinux.efi', 'efi64/ldlinux.e64', 'efi64/pxelinux.cfg/default'],
    uses4011: true,
    qemu: 'qemu-system-x86_64',
    // An empty romfile keeps iPXE off the NIC, so EDK2's own PXE client (UefiPxeBcDxe) boots.
    qemuArgs: (work) => [...ovmf(work, 'uefi'), ...nic('virtio-net-pci', MAC.uefi, '')],
  },
  ipxe: {
    name: 'ipxe',
    title:
      'iPXE chainload: OVMF PXE -> ipxe.efi -> DHCP again as iPXE -> generated script, kernel and initrd over HTTP',
    mac: MAC.ipxe,
    marker: MARKER.ipxe,
    bootFile: 'ipxe.efi',
    files: ['ipxe.efi'],
    uses4011: true,
    qemu: 'qemu-system-x86_64',
    qemuArgs: (work) => [...ovmf(work, 'ipxe'), ...nic('virtio-net-pci', MAC.ipxe, '')],
  },
  secureboot: {
    name: 'secureboot',
    title: 'Secure Boot: OVMF (MS keys, enforced) PXE -> port 4011 -> signed shim -> signed network GRUB -> grub.cfg',
    mac: MAC.secureboot,
    marker: MARKER.secureboot,
    bootFile: 'shimx64.efi',
    files: ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg'],
    uses4011: true,
    qemu: 'qemu-system-x86_64',
    qemuArgs: (work) => [...ovmfSecureBoot(work, 'secureboot'), ...nic('virtio-net-pci', MAC.secureboot, '')],
  },
  arm64: {
    name: 'arm64',
    title: 'ARM64: AAVMF PXE (arch 11) -> port 4011 -> signed arm64 network GRUB -> grub.cfg',
    mac: MAC.arm64,
    marker: MARKER.arm64,
    bootFile: 'grubaa64.efi',
    files: ['grubaa64.efi', 'grub/grub.cfg'],
    uses4011: true,
    qemu: 'qemu-system-aarch64',
    qemuArgs: (work) => [
      '-machine',
      'virt',
      '-cpu',
      'cortex-a57',
      ...pflash(work, 'arm64', FIRMWARE.aavmfCode, FIRMWARE.aavmfVars),
      ...nic('virtio-net-pci', MAC.arm64, ''),
    ],
  },
};

/**
 * The BIOS client again, against a daemon whose TFTP root is empty: every file it asks for comes
 * through `--upstream` from nginx on the router (test/e2e/upstream.test.ts).
 */
export const BIOS_UPSTREAM: ClientSpec = {
  ...CLIENTS.bios,
  name: 'bios-upstream',
  title:
    'BIOS via --upstream: empty TFTP root; pxelinux.0, its modules and config, ipxe.lkrn all from nginx on the router',
};

/**
 * Full QEMU command line: software emulation (TCG, as CI has no KVM), no window, the serial port on
 * stdio, no disks, so the network is the only way to boot.
 */
export function qemuCommand(spec: ClientSpec, work: string): string[] {
  return [
    '-accel',
    'tcg',
    '-m',
    '512',
    '-nodefaults',
    // The arm64 virt machine has no VGA; its firmware's console is the serial port alone.
    ...(spec.qemu === 'qemu-system-x86_64' ? ['-vga', 'std'] : []),
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    ...spec.qemuArgs(work),
  ];
}
