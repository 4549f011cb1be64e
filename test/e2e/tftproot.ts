import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Addresses of the lab LAN; the boot files below name the server's. */
export const NET = {
  prefix: 24,
  router: '10.77.0.1',
  server: '10.77.0.2',
  rangeStart: '10.77.0.100',
  rangeEnd: '10.77.0.199',
} as const;

/** Lines the clients print on their serial console once our files have booted them. */
export const MARKER = {
  bios: 'PXE-PDHCP-E2E-BIOS-PXELINUX-OK',
  uefi: 'PXE-PDHCP-E2E-UEFI-SYSLINUX-OK',
  ipxe: 'PXE-PDHCP-E2E-IPXE-SCRIPT-OK',
  // Printed by grub/grub.cfg only when GRUB runs locked down (Secure Boot enforced, shim verified it).
  secureboot: 'PXE-PDHCP-E2E-SECUREBOOT-GRUB-x86_64-OK',
  arm64: 'PXE-PDHCP-E2E-ARM64-GRUB-arm64-OK',
} as const;

/**
 * The arm64 network GRUB, from the arm64 package grub-efi-arm64-signed, which `make deps` downloads
 * and unpacks here (an amd64 machine cannot install it). Keep in step with ARM64_CACHE in Makefile.
 */
export const ARM64_CACHE = process.env.ARM64_CACHE ?? '/var/cache/pxe-pdhcp-e2e/arm64';
const ARM64_GRUB = join(ARM64_CACHE, 'usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed');

/** Files taken from Debian packages: TFTP path → installed path (package). */
const PACKAGED = {
  'pxelinux.0': '/usr/lib/PXELINUX/pxelinux.0', // pxelinux
  'ldlinux.c32': '/usr/lib/syslinux/modules/bios/ldlinux.c32', // syslinux-common
  'menu.c32': '/usr/lib/syslinux/modules/bios/menu.c32', // syslinux-common
  'libutil.c32': '/usr/lib/syslinux/modules/bios/libutil.c32', // syslinux-common
  'libcom32.c32': '/usr/lib/syslinux/modules/bios/libcom32.c32', // syslinux-common
  'ipxe.lkrn': '/usr/lib/ipxe/ipxe.lkrn', // ipxe
  'ipxe.efi': '/usr/lib/ipxe/ipxe.efi', // ipxe
  'efi64/syslinux.efi': '/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi', // syslinux-efi
  'efi64/ldlinux.e64': '/usr/lib/syslinux/modules/efi64/ldlinux.e64', // syslinux-common
  // Secure Boot: Microsoft-signed shim, and GRUB signed by Debian under the name shim loads from
  // the same directory (shim netboot.c: DEFAULT_LOADER beside the boot file).
  'shimx64.efi': '/usr/lib/shim/shimx64.efi.signed', // shim-signed
  'grubx64.efi': '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed', // grub-efi-amd64-signed
  'grubaa64.efi': ARM64_GRUB, // grub-efi-arm64-signed (arm64), via make deps
} as const;

/** Firmware the QEMU clients run (packages ovmf and ipxe-qemu). */
export const FIRMWARE = {
  ovmfCode: '/usr/share/OVMF/OVMF_CODE.fd',
  ovmfVars: '/usr/share/OVMF/OVMF_VARS.fd',
  // Secure Boot: the SMM build of OVMF, and a variable store with Microsoft's keys enrolled.
  ovmfSecbootCode: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd',
  ovmfMsVars: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd',
  aavmfCode: '/usr/share/AAVMF/AAVMF_CODE.fd',
  aavmfVars: '/usr/share/AAVMF/AAVMF_VARS.fd',
  e1000Rom: '/usr/lib/ipxe/qemu/pxe-e1000.rom',
} as const;

/** The Debian package that provides each file we need, for the "missing" message. */
const PACKAGE_OF: Record<string, string> = {
  [PACKAGED['pxelinux.0']]: 'pxelinux',
  [PACKAGED['ldlinux.c32']]: 'syslinux-common',
  [PACKAGED['efi64/ldlinux.e64']]: 'syslinux-common',
  [PACKAGED['efi64/syslinux.efi']]: 'syslinux-efi',
  [PACKAGED['ipxe.lkrn']]: 'ipxe',
  [PACKAGED['ipxe.efi']]: 'ipxe',
  [FIRMWARE.ovmfCode]: 'ovmf',
  [FIRMWARE.ovmfVars]: 'ovmf',
  [FIRMWARE.e1000Rom]: 'ipxe-qemu',
  [PACKAGED['shimx64.efi']]: 'shim-signed',
  [PACKAGED['grubx64.efi']]: 'grub-efi-amd64-signed',
  [FIRMWARE.ovmfSecbootCode]: 'ovmf',
  [FIRMWARE.ovmfMsVars]: 'ovmf',
  [FIRMWARE.aavmfCode]: 'qemu-efi-aarch64',
  [FIRMWARE.aavmfVars]: 'qemu-efi-aarch64',
  [ARM64_GRUB]: 'grub-efi-arm64-signed for arm64, unpacked by make deps',
};

/** The script ipxe.lkrn runs from its command line: fetching it proves the kernel started. */
export const LKRN_PROOF = 'bios/lkrn-started.ipxe';

/**
 * Our own small files. pxelinux and syslinux.efi look for `pxelinux.cfg/default` beside their own
 * file (syslinux core/fs/pxe: the path prefix is the boot file's directory).
 */
function ownFiles(): Record<string, string | Buffer> {
  return {
    // BIOS: `SERIAL 0` sends what follows to COM1 too; then boot iPXE's bzImage. Its command line is
    // an iPXE script (iPXE runtime.c), and the file it fetches shows in our TFTP log that it ran.
    'pxelinux.cfg/default': [
      'SERIAL 0 115200',
      'UI menu.c32',
      `MENU TITLE ${MARKER.bios}`,
      'TIMEOUT 10',
      'DEFAULT lkrn',
      'LABEL lkrn',
      '  KERNEL ipxe.lkrn',
      `  APPEND dhcp && chain tftp://${NET.server}/${LKRN_PROOF}`,
      '',
    ].join('\n'),
    [LKRN_PROOF]: '#!ipxe\necho ipxe.lkrn started from pxelinux\nshell\n',
    // UEFI: syslinux.efi prints through the firmware console, which OVMF mirrors to the serial port.
    // On a loaded machine that path loses characters now and then (QEMU drops a byte the serial
    // backend could not take after a few retries, and EDK2's serial write gives up on a timeout):
    // seen as "...-UEF-SYSLINUX-OK". So the marker comes several times; one intact copy suffices.
    'efi64/pxelinux.cfg/default': [...Array<string>(6).fill(`SAY ${MARKER.uefi}`), 'PROMPT 1', 'TIMEOUT 0', ''].join(
      '\n',
    ),
    // iPXE chainload: on its second DHCP round (user class iPXE) iPXE gets a script generated for it
    // on our HTTP server, which loads this as its kernel and initrd.bin over HTTP, then boots it: an
    // iPXE script image runs. `shell` waits, so iPXE never returns to the firmware.
    'boot.ipxe': `#!ipxe\necho ${MARKER.ipxe}\nimgstat\nshell\n`,
    'initrd.bin': Buffer.alloc(1 << 20, 0x5a),
    // Debian's network GRUB (x86_64 behind shim, and arm64) sets prefix (tftp,SERVER)/grub and
    // sources $prefix/<platform>/grub.cfg if present, else $prefix/grub.cfg (debian/build-efi-images).
    // Under shim with Secure Boot on, GRUB sets lockdown=y and shim_lock=y (kern/efi/sb.c, kern/lockdown.c).
    'grub/grub.cfg': [
      'if [ "$grub_cpu" = x86_64 ]; then',
      '  if [ "$lockdown" = y -a "$shim_lock" = y ]; then',
      // Several copies, as for syslinux.efi: the firmware's serial console may lose a character.
      `    for i in 1 2 3; do echo ${MARKER.secureboot.replace('x86_64', '${grub_cpu}')}; done`,
      '  else',
      '    echo "PXE-PDHCP-E2E: GRUB runs without Secure Boot lockdown (lockdown=$lockdown shim_lock=$shim_lock)"',
      '  fi',
      'else',
      `  for i in 1 2 3; do echo ${MARKER.arm64.replace('arm64-OK', '${grub_cpu}-OK')}; done`,
      'fi',
      'echo "TFTP server $net_default_server, prefix $prefix"',
      '',
    ].join('\n'),
  };
}

/** Paths of every packaged file or firmware image that is missing, with its Debian package. */
export function missingFiles(): string[] {
  return Object.entries(PACKAGE_OF)
    .filter(([path]) => !existsSync(path))
    .map(([path, pkg]) => `${path} (Debian package ${pkg})`);
}

/**
 * Fill `root` with everything the four clients ask for. Everything is world-readable: the daemon
 * reads it after dropping root.
 * @throws Error naming the missing package
 */
export function assembleTftpRoot(root: string): void {
  const missing = missingFiles();
  if (missing.length > 0) throw new Error(`missing boot files: ${missing.join(', ')}`);
  const put = (rel: string, write: (to: string) => void): void => {
    const to = join(root, rel);
    mkdirSync(dirname(to), { recursive: true });
    write(to);
    chmodSync(to, 0o644);
  };
  for (const [rel, from] of Object.entries(PACKAGED)) put(rel, (to) => copyFileSync(from, to));
  for (const [rel, text] of Object.entries(ownFiles())) put(rel, (to) => writeFileSync(to, text));
  for (const dir of [
    root,
    join(root, 'pxelinux.cfg'),
    join(root, 'efi64'),
    join(root, 'efi64/pxelinux.cfg'),
    join(root, 'bios'),
    join(root, 'grub'),
  ]) {
    chmodSync(dir, 0o755);
  }
}
