import { posix } from 'node:path';

/** True when a boot file name looks like pxelinux (pxelinux.0, lpxelinux.0, gpxelinux.0, syslinux.efi). */
export function isPxelinux(file: string): boolean {
  const base = posix.basename(file).toLowerCase();
  return /pxelinux\.0$/.test(base) || base === 'syslinux.efi';
}

/**
 * The module that the pxelinux/syslinux.efi core loads from its own directory before it reads any
 * config (syslinux `core/elflink/load_env32.c`): `ldlinux.c32` for BIOS, `ldlinux.e64` for x64 UEFI,
 * `ldlinux.e32` for IA32 UEFI. Without it the boot stops ("Failed to load ldlinux.c32").
 */
export function ldlinuxOf(bootFile: string, arch: number): string {
  if (posix.basename(bootFile).toLowerCase() !== 'syslinux.efi') return 'ldlinux.c32';
  return arch === 6 ? 'ldlinux.e32' : 'ldlinux.e64';
}

/** The directory part of the boot file: pxelinux's path prefix (docs/firmware.md#pxelinux). */
export function pathPrefix(bootFile: string): string {
  const slash = bootFile.lastIndexOf('/');
  return slash === -1 ? '' : bootFile.slice(0, slash + 1);
}

/**
 * The config files pxelinux asks for, in order (syslinux core/fs/pxe: docs/firmware.md#pxelinux):
 * the UUID (lowercase 8-4-4-4-12, wire order), `01-` + the MAC, the IPv4 address as 8 uppercase hex
 * digits shortened one digit at a time, then `default`; all under `<prefix>pxelinux.cfg/`.
 */
export function configSearchOrder(prefix: string, mac: Buffer, ip: string, uuid?: Buffer): string[] {
  const names: string[] = [];
  if (uuid) {
    const h = uuid.toString('hex');
    names.push(`${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`);
  }
  names.push(`01-${[...mac].map((b) => b.toString(16).padStart(2, '0')).join('-')}`);
  const hex = ip
    .split('.')
    .map((p) => Number(p).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  for (let n = hex.length; n > 0; n--) names.push(hex.slice(0, n));
  names.push('default');
  return names.map((n) => `${prefix}pxelinux.cfg/${n}`);
}

/** One `LABEL` block. */
export interface PxelinuxLabel {
  name: string;
  kernel?: string;
  /** `LOCALBOOT type`: boot from the local disk (type 0 on BIOS; any value on UEFI). */
  localBoot?: number;
  initrd: string[];
  append?: string;
  menuDefault: boolean;
}

/** The parts of a pxelinux config file the probe follows (syslinux "Configuration file" docs). */
export interface PxelinuxConfig {
  /** `DEFAULT`: a label name, or a command line (kernel and arguments) when no label matches. */
  defaultEntry?: string;
  ontimeout?: string;
  labels: PxelinuxLabel[];
  /** `INCLUDE` files, in order. */
  includes: string[];
}

const KERNEL_KEYWORDS = new Set(['kernel', 'linux', 'boot', 'bss', 'pxe', 'fdimage', 'comboot', 'com32', 'config']);

/** Parse a pxelinux config file. Keywords are case-insensitive; unknown lines are ignored. Pure. */
export function parsePxelinuxConfig(text: string): PxelinuxConfig {
  const cfg: PxelinuxConfig = { labels: [], includes: [] };
  let label: PxelinuxLabel | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (key === 'label') {
      label = { name: value, initrd: [], menuDefault: false };
      cfg.labels.push(label);
    } else if (key === 'default') cfg.defaultEntry = value;
    else if (key === 'ontimeout') cfg.ontimeout = value;
    else if (key === 'include') cfg.includes.push(value.split(/\s+/)[0]!);
    else if (key === 'menu' && /^default\b/i.test(value) && label) label.menuDefault = true;
    else if (label && KERNEL_KEYWORDS.has(key)) label.kernel = value;
    else if (label && key === 'localboot') label.localBoot = Number.parseInt(value, 10) || 0;
    else if (label && key === 'initrd') label.initrd.push(...value.split(','));
    else if (label && key === 'append') label.append = value;
  }
  for (const l of cfg.labels) {
    // `APPEND initrd=a,b` names the initrds too (the classic form).
    const inAppend = /(?:^|\s)initrd=(\S+)/.exec(l.append ?? '');
    if (l.initrd.length === 0 && inAppend) l.initrd.push(...inAppend[1]!.split(','));
  }
  return cfg;
}

/** What pxelinux would boot without a keypress: a kernel and its initrds, or the local disk. */
export interface BootEntry {
  label: string;
  /** Absent for a `LOCALBOOT` entry. */
  kernel?: string;
  initrd: string[];
  append?: string;
  /** `LOCALBOOT type`: a valid default, which hands the machine back to its local boot order. */
  localBoot?: number;
}

function isModule(entry: string): boolean {
  return /\.c32$/i.test(entry.split(/\s+/)[0]!);
}

/**
 * The default entry: `DEFAULT` naming a label, else (when `DEFAULT` is a menu module such as
 * vesamenu.c32) `MENU DEFAULT`, `ONTIMEOUT`, then the first label; `DEFAULT` that names no label is
 * a kernel command line. Undefined when nothing bootable is found.
 */
export function defaultBootEntry(cfg: PxelinuxConfig): BootEntry | undefined {
  const byName = (n?: string): PxelinuxLabel | undefined =>
    n ? cfg.labels.find((l) => l.name === n.split(/\s+/)[0]) : undefined;
  let chosen = byName(cfg.defaultEntry);
  if (!chosen && (cfg.defaultEntry === undefined || isModule(cfg.defaultEntry))) {
    chosen = cfg.labels.find((l) => l.menuDefault) ?? byName(cfg.ontimeout) ?? cfg.labels[0];
  }
  if (chosen?.kernel) {
    return {
      label: chosen.name,
      kernel: chosen.kernel,
      initrd: chosen.initrd,
      ...(chosen.append ? { append: chosen.append } : {}),
    };
  }
  if (chosen?.localBoot !== undefined) return { label: chosen.name, initrd: [], localBoot: chosen.localBoot };
  if (!chosen && cfg.defaultEntry && !isModule(cfg.defaultEntry)) {
    const [kernel, ...args] = cfg.defaultEntry.split(/\s+/);
    const append = args.join(' ');
    const initrd = /(?:^|\s)initrd=(\S+)/.exec(append)?.[1]?.split(',') ?? [];
    return { label: '(default command line)', kernel: kernel!, initrd, ...(append ? { append } : {}) };
  }
  return undefined;
}

/** A path from a config file as pxelinux resolves it: absolute from the TFTP root, else under the prefix. */
export function resolvePath(prefix: string, path: string): string {
  return path.startsWith('/') || path.includes('::') ? path.replace(/^::/, '') : `${prefix}${path}`;
}
