/*
 * Over 300 lines on purpose: the table of every long option (the config file's keys too) and their
 * one resolution into a Config are the command line's whole contract, kept side by side. The options
 * of outside decisions and events are in outside-args.ts, yargs's quiet parse in yargs-quiet.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import yargs, { type Argv } from 'yargs';
import {
  DEFAULT_TFTP_ROOT,
  DEFAULT_USER,
  type Config,
  type HttpConfig,
  type TftpConfig,
  type UpstreamConfig,
} from '../daemon/config.js';
import { CACHE_DEFAULTS } from '../files/cache.js';
import { parseUpstreamUrl } from '../files/upstream.js';
import { UserError } from '../core/errors.js';
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../daemon/logging.js';
import { parseClientPatterns } from '../pxe/acl.js';
import type { EfiMode } from '../pxe/boot.js';
import { parseBootRules } from '../pxe/rules.js';
import { TFTP_DEFAULTS } from '../tftp/server.js';
import { HTTP_DEFAULTS } from '../http/server.js';
import { isOwnHttp } from '../pxe/http-boot.js';
import type { BootRule } from '../pxe/rules.js';
import { isIPv4 } from '../wire/ip.js';
import { parseQuietly } from './yargs-quiet.js';
import { OUTSIDE_LISTS, OUTSIDE_OPTIONS, resolveOutside } from './outside-args.js';

/** pxe-pdhcp's own usage text, kept word for word for scripts that grep it. */
export const USAGE =
  'usage: pxe-pdhcp [-d] [-i interface] [-l listen address] [-t tftp address] [-b broadcast address] <nbp name>\n' +
  '-i or (-l, -t and -b), and <nbp name> options are needed.';

/** Options as given (command line or config file), keyed by long name; unset ones are absent. */
export type RawOptions = Record<string, unknown>;

export type ParseResult =
  { kind: 'run'; config: Config; raw: RawOptions } | { kind: 'exit'; code: number; stdout?: string; stderr?: string };

/** Long options (the `--config` file uses the same keys) and what each takes. */
export const OPTIONS = {
  foreground: { alias: 'd', type: 'boolean', desc: 'stay in the foreground, log to stderr' },
  check: {
    type: 'boolean',
    desc: 'check interfaces, ports, TFTP root and boot files, then exit 0 or 1 without serving',
  },
  interface: { alias: 'i', type: 'string', desc: 'serve this interface (repeatable)' },
  'listen-address': { alias: 'l', type: 'string', desc: 'our address, option 54 (default: from -i)' },
  'tftp-address': { alias: 't', type: 'string', desc: 'TFTP server given to clients (default: ours)' },
  'broadcast-address': { alias: 'b', type: 'string', desc: 'destination of broadcast replies' },
  'efi-mode': { type: 'string', choices: ['binl', 'bypass'], desc: 'UEFI answer: port 4011 (binl) or direct' },
  boot: { type: 'string', desc: 'boot rule, e.g. arch=efi-x64,file=ipxe.efi (repeatable; first match wins)' },
  allow: { type: 'string', desc: 'answer only clients with this MAC pattern or UUID (repeatable)' },
  deny: { type: 'string', desc: 'never answer clients with this MAC pattern or UUID (repeatable)' },
  rpi: { type: 'boolean', desc: 'answer Raspberry Pi 4/5 with their boot menu (default on; --no-rpi: off)' },
  'log-level': { type: 'string', choices: LOG_LEVELS, desc: 'error, warn, info or debug (default info)' },
  verbose: { alias: 'v', type: 'boolean', desc: 'log level debug' },
  quiet: { alias: 'q', type: 'boolean', desc: 'log level warn' },
  'log-format': { type: 'string', choices: ['text', 'json'], desc: 'log line format (default text)' },
  'log-file': { type: 'string', desc: 'log to this file' },
  config: { type: 'string', desc: 'JSON file with these long options as keys; re-read on SIGHUP' },
  tftp: { type: 'boolean', desc: 'run the bundled TFTP server (--no-tftp: do not)' },
  'tftp-root': { type: 'string', desc: `directory served over TFTP (default ${DEFAULT_TFTP_ROOT})` },
  'tftp-port': { type: 'number', desc: 'TFTP listening port (default 69)' },
  'tftp-max-transfers': { type: 'number', desc: 'transfers at once (default 1024)' },
  'tftp-idle-timeout': { type: 'number', desc: 'seconds of client silence that end a transfer (default 10)' },
  'tftp-workers': {
    type: 'number',
    desc: 'threads that run TFTP transfers beside the main thread (default 0: transfers run on the main thread)',
  },
  http: { type: 'boolean', desc: 'run the bundled HTTP server: boot files, kernels, generated iPXE scripts' },
  'http-root': { type: 'string', desc: 'directory served over HTTP (default: the TFTP root)' },
  'http-port': { type: 'number', desc: 'HTTP listening port (default 80)' },
  'http-max-connections': {
    type: 'number',
    desc: `HTTP connections at once (default ${HTTP_DEFAULTS.maxConnections}, at most ${HTTP_DEFAULTS.maxPerAddress} per client)`,
  },
  'http-boot': {
    type: 'boolean',
    desc: 'answer UEFI HTTP Boot firmware (vendor class HTTPClient) with a URL on our HTTP server (implies --http)',
  },
  upstream: {
    type: 'string',
    desc: 'fetch names missing from the TFTP/HTTP root from this http(s) URL, cached and streamed',
  },
  'cache-dir': { type: 'string', desc: `where --upstream files are cached (default ${CACHE_DEFAULTS.dir})` },
  'cache-max-size': { type: 'string', desc: 'most bytes the cache holds, e.g. 500M or 2G (default 2G)' },
  'cache-ttl': {
    type: 'string',
    desc: 'age after which a cached file is revalidated upstream, e.g. 90s, 30m, 1h (default 1h)',
  },
  ...OUTSIDE_OPTIONS,
  user: { type: 'string', desc: 'account to run as after binding, when started as root (default nobody)' },
  'dhcp-port': { type: 'number', desc: 'proxyDHCP port (default 67; for tests)' },
  'proxy-port': { type: 'number', desc: 'PXE boot-server port (default 4011; for tests)' },
  'client-port': { type: 'number', desc: 'port broadcast replies go to (default 68; for tests)' },
  'bind-address': { type: 'string', desc: 'local address to bind (default 0.0.0.0; for tests)' },
} as const;

/** Options whose value is a list; every other option keeps its last value, as getopt does. */
const LIST_OPTIONS = new Set<string>(['interface', 'boot', 'allow', 'deny', ...OUTSIDE_LISTS]);

/** Every option that takes a value must get one: `-i` alone is an error, as with getopt. */
function withRequiredValues(options: Record<string, { type: string }>): Record<string, object> {
  return Object.fromEntries(
    Object.entries(options).map(([k, o]) => [k, o.type === 'boolean' ? o : { ...o, requiresArg: true }]),
  );
}

function defineCli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('pxe-pdhcp')
    .locale('en')
    .usage(`${USAGE}\n\nproxyDHCP PXE responder with a bundled TFTP server.`)
    .command('$0 [nbp]', false)
    .positional('nbp', { type: 'string', describe: 'boot file (network bootstrap program)' })
    .options(withRequiredValues(OPTIONS))
    .parserConfiguration({ 'camel-case-expansion': false, 'strip-aliased': true })
    .strict()
    .help('help')
    .alias('help', 'h')
    .version()
    .wrap(120)
    .exitProcess(false);
}

/** Only the long names the user set, with repeated single-value flags reduced to the last one. */
function explicitOptions(parsed: Record<string, unknown>): RawOptions {
  const raw: RawOptions = {};
  for (const key of [...Object.keys(OPTIONS), 'nbp']) {
    const v = parsed[key];
    if (v === undefined) continue;
    if (LIST_OPTIONS.has(key)) raw[key] = (Array.isArray(v) ? v : [v]).map((x) => String(x as string | number));
    else raw[key] = Array.isArray(v) ? v[v.length - 1] : v;
  }
  return raw;
}

/**
 * Map argv (without `node script`) to a Config, or to what to print and the exit status.
 * Pure apart from reading the `--config` file; never exits.
 */
export function parseArgs(argv: string[]): ParseResult {
  const { parsed, failure, output } = parseQuietly(defineCli(argv), argv);
  if (failure) return { kind: 'exit', code: 1, stderr: `pxe-pdhcp: ${failure}\n${USAGE}\n` };
  if (output) return { kind: 'exit', code: 0, stdout: `${output}\n` };
  const raw = explicitOptions(parsed);
  try {
    return { kind: 'run', config: resolveConfig(raw), raw };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return { kind: 'exit', code: 1, stderr: `pxe-pdhcp: ${err.message}\n${err.usage ? `${USAGE}\n` : ''}` };
  }
}

/** Read a `--config` file: a JSON object whose keys are long option names. @throws UserError */
export function readConfigFile(path: string): RawOptions {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UserError(`config file ${path} must hold a JSON object`);
  }
  const known = new Set([...Object.keys(OPTIONS), 'nbp']);
  for (const key of Object.keys(data)) {
    if (!known.has(key) || key === 'config') throw new UserError(`config file ${path}: unknown key "${key}"`);
  }
  return data as RawOptions;
}

function str(raw: RawOptions, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw new UserError(`${key} must be a non-empty string`);
  return v;
}

function address(raw: RawOptions, key: string): string | undefined {
  const v = str(raw, key);
  if (v !== undefined && !isIPv4(v)) throw new UserError(`${key}: '${v}' is not an IPv4 address`);
  return v;
}

function int(raw: RawOptions, key: string, fallback: number, min: number, max: number): number {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new UserError(`${key} must be a whole number from ${min} to ${max}`);
  }
  return v;
}

function bool(raw: RawOptions, key: string): boolean | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new UserError(`${key} must be true or false`);
  return v;
}

function oneOf<T extends string>(raw: RawOptions, key: string, values: readonly T[]): T | undefined {
  const v = str(raw, key);
  if (v !== undefined && !values.includes(v as T)) throw new UserError(`${key} must be one of ${values.join(', ')}`);
  return v as T | undefined;
}

function interfaces(raw: RawOptions): string[] {
  const v = raw.interface;
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => typeof x === 'string' && x !== '')) throw new UserError('interface must name interfaces');
  return [...new Set(list as string[])];
}

function logLevel(raw: RawOptions): LogLevel {
  const explicit = oneOf(raw, 'log-level', LOG_LEVELS);
  if (explicit) return explicit;
  if (bool(raw, 'verbose')) return 'debug';
  if (bool(raw, 'quiet')) return 'warn';
  return 'info';
}

/** The first rule (or `<nbp>`) that needs our HTTP server, for the error when it is off. */
function needsHttp(nbp: string | undefined, rules: readonly BootRule[]): string | undefined {
  if (nbp !== undefined && isOwnHttp(nbp)) return `<nbp> ${nbp}`;
  const rule = rules.find(
    (r) => r.kernel !== undefined || [r.file, ...(r.initrd ?? [])].some((f) => f && isOwnHttp(f)),
  );
  return rule ? `boot rule '${rule.text}'` : undefined;
}

/**
 * Merge the command line over the config file (if any) and check the result.
 * @throws UserError
 */
export function resolveConfig(cli: RawOptions): Config {
  const configFile = str(cli, 'config');
  const raw: RawOptions = configFile ? { ...readConfigFile(configFile), ...cli } : cli;
  const ifaces = interfaces(raw);
  const listenAddress = address(raw, 'listen-address');
  const tftpAddress = address(raw, 'tftp-address');
  const broadcastAddress = address(raw, 'broadcast-address');
  const nbp = str(raw, 'nbp');
  const boot = parseBootRules(raw.boot);
  // Rules may cover every client themselves; without any, <nbp> is the only answer (pxe-pdhcp).
  // With --decide-url, the decision service may answer every client itself.
  if (nbp === undefined && boot.length === 0 && raw['decide-url'] === undefined)
    throw new UserError('missing <nbp name>', true);
  if (ifaces.length === 0 && (!listenAddress || !tftpAddress || !broadcastAddress)) {
    throw new UserError('give -i, or all of -l, -t and -b', true);
  }
  const bindAddress = address(raw, 'bind-address') ?? '0.0.0.0';
  // Made absolute once, here: the daemon never resolves a path against its working directory.
  const tftpRoot = resolve(str(raw, 'tftp-root') ?? DEFAULT_TFTP_ROOT);
  const httpBoot = bool(raw, 'http-boot') ?? false;
  const httpOn = (bool(raw, 'http') ?? false) || httpBoot;
  const needs = needsHttp(nbp, boot);
  if (!httpOn && needs)
    throw new UserError(`${needs} needs the HTTP server: add --http (kernel= and http:/// are served by it)`);
  return {
    foreground: bool(raw, 'foreground') ?? false,
    ...resolveOutside(raw, bool(raw, 'foreground') ?? false),
    interfaces: ifaces,
    ...(listenAddress ? { listenAddress } : {}),
    ...(tftpAddress ? { tftpAddress } : {}),
    ...(broadcastAddress ? { broadcastAddress } : {}),
    ...(nbp !== undefined ? { nbp } : {}),
    boot,
    allow: parseClientPatterns('allow', raw.allow),
    deny: parseClientPatterns('deny', raw.deny),
    rpi: bool(raw, 'rpi') ?? true,
    efiMode: oneOf<EfiMode>(raw, 'efi-mode', ['binl', 'bypass']) ?? 'binl',
    logLevel: logLevel(raw),
    logFormat: oneOf<LogFormat>(raw, 'log-format', ['text', 'json']) ?? 'text',
    ...(str(raw, 'log-file') ? { logFile: resolve(str(raw, 'log-file')!) } : {}),
    ...(configFile ? { configFile } : {}),
    bindAddress,
    user: str(raw, 'user') ?? DEFAULT_USER,
    ports: {
      dhcp: int(raw, 'dhcp-port', 67, 0, 65535),
      proxy: int(raw, 'proxy-port', 4011, 0, 65535),
      client: int(raw, 'client-port', 68, 1, 65535),
    },
    tftp: tftpConfig(raw, tftpRoot),
    http: httpConfig(raw, tftpRoot, httpOn, httpBoot),
    ...upstreamConfig(raw),
  };
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size: bytes as a number, or `500M`, `2G`, `1.5GiB` (binary multiples). */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v);
  if (!m) return undefined;
  const n = Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
  return Number.isSafeInteger(n) ? n : undefined;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** A duration in seconds: a number, or `90s`, `30m`, `1h`, `2d`. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/i.exec(v);
  return m ? Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]! : undefined;
}

const CACHE_KEYS = ['cache-dir', 'cache-max-size', 'cache-ttl'] as const;

/** `--upstream` and its cache; the cache options without an upstream are a mistake worth a word. */
function upstreamConfig(raw: RawOptions): { upstream?: UpstreamConfig } {
  const url = str(raw, 'upstream');
  if (url === undefined) {
    const lone = CACHE_KEYS.find((k) => raw[k] !== undefined);
    if (lone) throw new UserError(`${lone} has no effect without --upstream`);
    return {};
  }
  let base: URL;
  try {
    base = parseUpstreamUrl(url);
  } catch (err) {
    throw new UserError(`upstream: ${(err as Error).message}`);
  }
  const maxBytes = raw['cache-max-size'] === undefined ? CACHE_DEFAULTS.maxBytes : parseSize(raw['cache-max-size']);
  if (maxBytes === undefined || maxBytes < 1024 ** 2) {
    throw new UserError('cache-max-size must be a size of at least 1M, such as 500M or 2G');
  }
  const ttl = raw['cache-ttl'] === undefined ? CACHE_DEFAULTS.ttlMs / 1000 : parseDuration(raw['cache-ttl']);
  if (ttl === undefined || ttl > 365 * 86400) {
    throw new UserError('cache-ttl must be a duration such as 90s, 30m, 1h or 2d (at most 365d)');
  }
  return {
    upstream: {
      url: base.href,
      cacheDir: resolve(str(raw, 'cache-dir') ?? CACHE_DEFAULTS.dir),
      cacheMaxBytes: maxBytes,
      cacheTtl: ttl,
    },
  };
}

/** The bundled TFTP server's settings. */
function tftpConfig(raw: RawOptions, root: string): TftpConfig {
  return {
    enabled: bool(raw, 'tftp') ?? true,
    root,
    port: int(raw, 'tftp-port', 69, 0, 65535),
    maxTransfers: int(raw, 'tftp-max-transfers', TFTP_DEFAULTS.maxTransfers, 1, 10000),
    idleTimeout: int(raw, 'tftp-idle-timeout', 10, 1, 3600),
    workers: int(raw, 'tftp-workers', 0, 0, 16),
  };
}

/** The bundled HTTP server's settings; it serves the TFTP root unless --http-root names another. */
function httpConfig(raw: RawOptions, tftpRoot: string, enabled: boolean, boot: boolean): HttpConfig {
  return {
    enabled,
    root: str(raw, 'http-root') !== undefined ? resolve(str(raw, 'http-root')!) : tftpRoot,
    port: int(raw, 'http-port', 80, 0, 65535),
    maxConnections: int(raw, 'http-max-connections', HTTP_DEFAULTS.maxConnections, 1, 100_000),
    boot,
  };
}
