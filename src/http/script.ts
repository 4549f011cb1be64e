import { posix } from 'node:path';
import { printable } from '../core/text.js';
import { expandOwnHttp, isOwnHttp, isUrl } from '../pxe/http-boot.js';

/** What a generated iPXE script boots: a boot rule's `kernel=`, `initrd=` and `cmdline=`. */
export interface ScriptParts {
  kernel: string;
  initrd?: readonly string[];
  cmdline?: string;
}

/** Percent-encode each segment of a path, keeping the `/` between them. */
function encodePath(name: string): string {
  return name
    .replace(/^\/+/, '')
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/**
 * The absolute URL of a script part: a path is a file in our HTTP root at `base`
 * (`http://10.0.0.5:8080`), `http:///PATH` is ours too, any other URL stays as it is. Absolute, so
 * nothing later depends on the DHCP server's next-server.
 */
export function partUrl(name: string, base: string): string {
  if (isOwnHttp(name)) return expandOwnHttp(name, base.replace(/^http:\/\//, ''));
  if (isUrl(name)) return name;
  return `${base}/${encodePath(name)}`;
}

/** The name iPXE gives an image it downloads: the last segment of the URL's path. */
function imageName(url: string): string {
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').split(/[?#]/)[0]!;
  const base = posix.basename(path);
  try {
    return decodeURIComponent(base);
  } catch {
    return base;
  }
}

/**
 * An iPXE script that boots a kernel with its initrds (iPXE `kernel`, `initrd`, `boot` commands).
 * Each initrd is named on the kernel command line as `initrd=NAME` unless the command line already
 * names one: a UEFI kernel's EFI stub finds its initrd that way (iPXE's "initrd" documentation).
 * Rule values never hold a newline or control character (refused when the rule is parsed), so each
 * part stays on its own line. `comment` (ours: MAC and rule) is made printable. Pure.
 */
export function ipxeScript(parts: ScriptParts, base: string, comment?: string): string {
  const initrds = (parts.initrd ?? []).map((i) => partUrl(i, base));
  const cmdline = parts.cmdline ?? '';
  const named = /(^|\s)initrd=/.test(cmdline) ? [] : initrds.map((u) => `initrd=${imageName(u)}`);
  const args = [...named, ...(cmdline ? [cmdline] : [])].join(' ');
  const lines = [
    '#!ipxe',
    ...(comment !== undefined ? [`# ${printable(comment)}`] : []),
    `kernel ${partUrl(parts.kernel, base)}${args ? ` ${args}` : ''}`,
    ...initrds.map((u) => `initrd ${u}`),
    'boot',
  ];
  return `${lines.join('\n')}\n`;
}
