/**
 * Client architecture names (option 93 values, IANA "Processor Architecture Types").
 * The names are what boot rules and logs use; a number with no name shows as `arch-<n>`.
 */
export const ARCH_NAMES: Readonly<Record<number, string>> = {
  0: 'bios',
  1: 'pc98',
  2: 'itanium',
  3: 'dec-alpha',
  4: 'arc-x86',
  5: 'intel-lean',
  6: 'efi-ia32',
  7: 'efi-x64',
  8: 'efi-xscale',
  // 9 is "EFI byte code" per IANA, but RFC 4578 first swapped 7 and 9 and old x64 firmware still
  // sends 9 (erratum 4624, dnsmasq 2.76): it is served as efi-x64 (see canonicalArch).
  9: 'efi-bc',
  10: 'efi-arm32',
  11: 'efi-arm64',
  12: 'ppc-openfirmware',
  13: 'ppc-epapr',
  14: 'power-opal',
  15: 'efi-ia32-http',
  16: 'efi-x64-http',
  17: 'efi-bc-http',
  18: 'efi-arm32-http',
  19: 'efi-arm64-http',
  20: 'bios-http',
  21: 'arm32-uboot',
  22: 'arm64-uboot',
  23: 'arm32-uboot-http',
  24: 'arm64-uboot-http',
  25: 'efi-riscv32',
  26: 'efi-riscv32-http',
  27: 'efi-riscv64',
  28: 'efi-riscv64-http',
  29: 'efi-riscv128',
  30: 'efi-riscv128-http',
  31: 's390-basic',
  32: 's390-extended',
  33: 'efi-mips32',
  34: 'efi-mips64',
  35: 'efi-sunway32',
  36: 'efi-sunway64',
  37: 'efi-loongarch32',
  38: 'efi-loongarch32-http',
  39: 'efi-loongarch64',
  40: 'efi-loongarch64-http',
  41: 'arm-rpiboot',
};

const ARCH_BY_NAME = new Map<string, number>(Object.entries(ARCH_NAMES).map(([n, name]) => [name, Number(n)]));

/** Arch 9 is served as 7 (x64 UEFI): see the note on ARCH_NAMES. */
export function canonicalArch(arch: number): number {
  return arch === 9 ? 7 : arch;
}

/** The name of an arch number (after canonicalArch), e.g. `efi-x64`, or `arch-<n>`. */
export function archName(arch: number): string {
  return ARCH_NAMES[canonicalArch(arch)] ?? `arch-${arch}`;
}

/** An arch given as a name (`efi-x64`) or a number (`7`, `0x07`), or undefined if neither. */
export function parseArch(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (/^(0x[0-9a-f]{1,4}|\d{1,5})$/.test(t)) {
    const n = Number(t);
    return n <= 0xffff ? canonicalArch(n) : undefined;
  }
  const n = ARCH_BY_NAME.get(t) ?? (/^arch-\d{1,5}$/.test(t) ? Number(t.slice(5)) : undefined);
  return n === undefined || n > 0xffff ? undefined : canonicalArch(n);
}

/** UEFI PXE clients (arch 6 and up, except the U-Boot and rpiboot types): they get the 4011 path. */
export function isUefiArch(arch: number): boolean {
  return arch >= 6 && arch !== 21 && arch !== 22 && arch !== 41;
}
