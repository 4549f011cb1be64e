import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { UserError } from '../core/errors.js';
import { parseArch } from '../wire/arch.js';
import { parseQuietly } from './yargs-quiet.js';
import type { ProbeOptions } from '../probe/run.js';
import { statusUrlOf } from '../probe/status.js';

/** pxe-probe's usage line. */
export const USAGE =
  'usage: pxe-probe -i IFACE [--mac MAC] [--arch bios|efi-x64|…|N] [--user-class iPXE] [--http-client] [--uuid UUID|none] [--fetch] [--status URL] [--timeout S] [--json]';

/** What the command line asks for. */
export type ProbeParse =
  | { kind: 'run'; options: ProbeOptions; json: boolean }
  | { kind: 'exit'; code: number; stdout?: string; stderr?: string };

const OPTIONS = {
  interface: { alias: 'i', type: 'string', requiresArg: true, desc: 'interface to probe on (required)' },
  mac: { type: 'string', requiresArg: true, desc: 'client MAC in chaddr (default: the interface MAC)' },
  arch: {
    type: 'string',
    requiresArg: true,
    desc: 'option 93: bios, efi-x64, efi-arm64, … or a number (default bios)',
  },
  'user-class': { type: 'string', requiresArg: true, desc: 'option 77; iPXE makes the probe speak like iPXE' },
  'http-client': {
    type: 'boolean',
    desc: 'speak like UEFI HTTP Boot: option 60 HTTPClient (arch default efi-x64-http); --fetch then uses HTTP',
  },
  uuid: { type: 'string', requiresArg: true, desc: 'option 97 GUID 8-4-4-4-12 (default: zeros + MAC), or none' },
  fetch: {
    type: 'boolean',
    desc: 'download the boot file (and a pxelinux config, kernel, initrd) over TFTP; an http:// boot file (an iPXE script and its kernel and initrds) over HTTP',
  },
  status: {
    type: 'string',
    requiresArg: true,
    desc: "the daemon's --metrics listener (http://ADDR:PORT): show which rule or --decide-url answer decided, and where each TFTP file came from",
  },
  timeout: { type: 'number', requiresArg: true, desc: 'seconds to collect offers (default 5)' },
  blksize: { type: 'number', requiresArg: true, desc: 'TFTP blksize to ask (default MTU - 32)' },
  windowsize: { type: 'number', requiresArg: true, desc: 'TFTP windowsize to ask (default 4, as EDK2)' },
  json: { type: 'boolean', desc: 'print one JSON report instead of text' },
} as const;

function macOf(text: string): Buffer {
  if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(text))
    throw new UserError(`--mac: '${text}' is not a MAC address like 52:54:00:12:34:56`);
  return Buffer.from(text.replace(/[:-]/g, ''), 'hex');
}

function interfaceMac(iface: string): Buffer {
  if (!/^[\w.:@-]{1,15}$/.test(iface)) throw new UserError(`invalid interface name '${iface}'`);
  try {
    return macOf(readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim());
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`interface ${iface} has no Ethernet address: give --mac`);
    throw new UserError(`interface ${iface} does not exist`);
  }
}

function uuidOf(text: string | undefined, mac: Buffer): Buffer | undefined {
  if (text === 'none') return undefined;
  // Default: a GUID that is all zeros but for the MAC, so every probe MAC has its own pxelinux.cfg/<uuid>.
  if (text === undefined) return Buffer.concat([Buffer.alloc(10), mac]);
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text))
    throw new UserError(`--uuid: '${text}' is not a UUID like 7e57ab00-0000-4000-8000-525400123456`);
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}

function statusOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  try {
    return statusUrlOf(v);
  } catch {
    throw new UserError(
      `--status: '${v}' is not the http:// URL of the daemon's --metrics listener, e.g. http://127.0.0.1:9187`,
    );
  }
}

function num(v: unknown, name: string, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new UserError(`--${name} must be a number from ${min} to ${max}`);
  return v;
}

function toOptions(a: Record<string, unknown>): ProbeOptions {
  const iface = a.interface;
  if (typeof iface !== 'string' || iface === '') throw new UserError('missing -i IFACE');
  const mac = typeof a.mac === 'string' ? macOf(a.mac) : interfaceMac(iface);
  const httpClient = a['http-client'] === true;
  // UEFI HTTP Boot reports an HTTP architecture: 16 (x64) unless --arch says otherwise.
  const arch = typeof a.arch === 'string' ? parseArch(a.arch) : httpClient ? 16 : 0;
  if (arch === undefined) throw new UserError(`--arch: unknown architecture '${String(a.arch)}'`);
  const uuid = uuidOf(a.uuid as string | undefined, mac);
  const blksize = a.blksize === undefined ? undefined : Math.trunc(num(a.blksize, 'blksize', 8, 65464, 0));
  const statusUrl = statusOf(a.status);
  return {
    iface,
    mac,
    arch,
    ...(typeof a['user-class'] === 'string' ? { userClass: a['user-class'] } : {}),
    ...(httpClient ? { httpClient } : {}),
    ...(uuid ? { uuid } : {}),
    fetch: a.fetch === true,
    timeoutMs: Math.round(num(a.timeout, 'timeout', 0.5, 600, 5) * 1000),
    ...(blksize !== undefined ? { blksize } : {}),
    windowsize: Math.trunc(num(a.windowsize, 'windowsize', 1, 65535, 4)),
    ...(statusUrl !== undefined ? { statusUrl } : {}),
  };
}

/** Map argv to probe options, or to what to print and the exit status. Never exits. */
export function parseProbeArgs(argv: string[]): ProbeParse {
  const { parsed, failure, output } = parseQuietly(
    yargs(argv)
      .scriptName('pxe-probe')
      .locale('en')
      .usage(`${USAGE}\n\nAct as a PXE client: show every offer, complete the exchange, optionally fetch over TFTP.`)
      .options(OPTIONS as unknown as Record<string, object>)
      .parserConfiguration({ 'camel-case-expansion': false, 'duplicate-arguments-array': false })
      .strict()
      .help('help')
      .alias('help', 'h')
      .version()
      .wrap(120)
      .exitProcess(false),
    argv,
  );
  if (failure) return { kind: 'exit', code: 2, stderr: `pxe-probe: ${failure}\n${USAGE}\n` };
  if (output) return { kind: 'exit', code: 0, stdout: `${output}\n` };
  if ((parsed._ as unknown[]).length > 0)
    return {
      kind: 'exit',
      code: 2,
      stderr: `pxe-probe: unexpected argument '${String((parsed._ as unknown[])[0])}'\n${USAGE}\n`,
    };
  try {
    return { kind: 'run', options: toOptions(parsed), json: parsed.json === true };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return { kind: 'exit', code: 2, stderr: `pxe-probe: ${err.message}\n` };
  }
}
