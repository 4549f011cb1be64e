import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIRMWARE, LKRN_PROOF, MARKER } from './tftproot.js';
import { MAC } from './topology.js';

export type ClientName = 'bios' | 'uefi' | 'ipxe';
export const CLIENT_NAMES: readonly ClientName[] = ['bios', 'uefi', 'ipxe'];

/** A QEMU machine that boots from the network, and what a successful boot leaves behind. */
export interface ClientSpec {
  name: ClientName;
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

/** OVMF with a private copy of its variable store, so every run starts from the same empty store. */
function ovmf(work: string, name: string): string[] {
  const vars = join(work, `${name}-OVMF_VARS.fd`);
  copyFileSync(FIRMWARE.ovmfVars, vars);
  return [
    '-machine',
    'q35',
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${FIRMWARE.ovmfCode}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${vars}`,
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
    // An empty romfile keeps iPXE off the NIC, so EDK2's own PXE client (UefiPxeBcDxe) boots.
    qemuArgs: (work) => [...ovmf(work, 'uefi'), ...nic('virtio-net-pci', MAC.uefi, '')],
  },
  ipxe: {
    name: 'ipxe',
    title: 'iPXE chainload: OVMF PXE -> ipxe.efi -> DHCP again as iPXE -> boot.ipxe',
    mac: MAC.ipxe,
    marker: MARKER.ipxe,
    bootFile: 'ipxe.efi',
    files: ['ipxe.efi', 'boot.ipxe'],
    uses4011: true,
    qemuArgs: (work) => [...ovmf(work, 'ipxe'), ...nic('virtio-net-pci', MAC.ipxe, '')],
  },
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
    '-vga',
    'std',
    '-display',
    'none',
    '-serial',
    'stdio',
    '-no-reboot',
    ...spec.qemuArgs(work),
  ];
}
