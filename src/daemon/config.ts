import type { LogFormat, LogLevel } from './logging.js';
import type { ClientPattern } from '../pxe/acl.js';
import type { BootPolicy, EfiMode } from '../pxe/boot.js';
import type { BootRule } from '../pxe/rules.js';
import type { DecideSettings } from '../pxe/decide.js';
import type { RemapRule } from '../files/remap.js';
import type { EventsConfig } from './events.js';
import type { MetricsConfig } from './metrics.js';

/** Everything the daemon needs, from the command line and the `--config` file. */
export interface Config {
  /** `-d`: stay in the foreground (pxe-pdhcp's meaning). */
  foreground: boolean;
  /** `-i`, repeatable: interfaces to serve. Empty when `-l -t -b` are all given instead. */
  interfaces: string[];
  /** `-l`: our address (option 54). Defaults to each interface's own. */
  listenAddress?: string;
  /** `-t`: the TFTP server handed to clients (siaddr). Defaults to our address. */
  tftpAddress?: string;
  /** `-b`: where broadcast replies go. Defaults to 255.255.255.255 out of the bound interface. */
  broadcastAddress?: string;
  /**
   * The positional `<nbp name>`: the boot file for clients no `--boot` rule matches (every client
   * when there are no rules). Required unless rules are given.
   */
  nbp?: string;
  /** `--boot`, repeatable: boot rules in the order given, first match wins. */
  boot?: BootRule[];
  /** `--allow`: MAC patterns or UUIDs; when any is given, only matching clients are answered. */
  allow?: ClientPattern[];
  /** `--deny`: MAC patterns or UUIDs never answered. */
  deny?: ClientPattern[];
  /** Raspberry Pi 4/5 detection (`--no-rpi` turns it off); on when absent. */
  rpi?: boolean;
  efiMode: EfiMode;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Log to this file instead of stderr (foreground) or syslog (detached). */
  logFile?: string;
  /** The JSON file the settings came from, re-read on SIGHUP. */
  configFile?: string;
  /** Local address the sockets bind to (0.0.0.0, so broadcasts arrive). */
  bindAddress: string;
  /** `--user`: the account to switch to after binding, when started as root (default `nobody`). */
  user?: string;
  /** UDP ports; tests and benchmarks move them. */
  ports: { dhcp: number; proxy: number; client: number };
  tftp: TftpConfig;
  /** The bundled HTTP server (`--http`); off when absent. */
  http?: HttpConfig;
  /** `--upstream`: names missing from the roots are fetched from a mirror and cached; off when absent. */
  upstream?: UpstreamConfig;
  /** `--decide-url` and its settings: an outside service decides who boots what; off when absent. */
  decide?: DecideSettings;
  /** `--remap`: rewrites of requested names for TFTP and HTTP, first match wins. */
  remap?: RemapRule[];
  /** `--events`, `--notify`, `--exit-after`, `--exit-timeout`; none when absent. */
  events?: EventsConfig;
  /** `--metrics`: the `/metrics` and `/status` listener; off when absent. */
  metrics?: MetricsConfig;
}

export interface UpstreamConfig {
  /** `--upstream`: an http or https base URL, ending in `/`. */
  url: string;
  /** `--cache-dir` (default /var/cache/pxe-pdhcp). */
  cacheDir: string;
  /** `--cache-max-size`, in bytes (default 2 GiB). */
  cacheMaxBytes: number;
  /** `--cache-ttl`, in seconds: a cached file older than this is revalidated (default 1 h). */
  cacheTtl: number;
}

export interface HttpConfig {
  /** `--http` (or `--http-boot`, which needs it). */
  enabled: boolean;
  /** `--http-root`: defaults to the TFTP root. */
  root: string;
  /** `--http-port` (default 80). */
  port: number;
  /** `--http-max-connections`. */
  maxConnections: number;
  /** `--http-boot`: answer UEFI HTTP Boot firmware (option 60 `HTTPClient`). */
  boot: boolean;
}

export interface TftpConfig {
  /** False with `--no-tftp`, or when `-t` names another host. */
  enabled: boolean;
  root: string;
  port: number;
  /** At most this many transfers at once. */
  maxTransfers: number;
  /** Seconds without client traffic after which a transfer is dropped. */
  idleTimeout: number;
  /** Threads that run transfers (0: all on the main thread). */
  workers: number;
}

export const DEFAULT_TFTP_ROOT = '/srv/tftp';
/** The unprivileged account of `--user`'s default, as dnsmasq and tftpd-hpa use. */
export const DEFAULT_USER = 'nobody';

/**
 * Boot policy of a config: what the responder consults for every packet. Built whole and swapped in
 * one assignment on reload, so a packet sees either the old rules or the new ones, never a mix.
 */
export function policyOf(config: Config): BootPolicy {
  return {
    ...(config.nbp !== undefined ? { defaultFile: config.nbp } : {}),
    efiMode: config.efiMode,
    rules: config.boot ?? [],
    allow: config.allow ?? [],
    deny: config.deny ?? [],
    rpi: config.rpi ?? true,
    ...(config.http?.enabled && config.http.boot ? { httpBoot: true } : {}),
  };
}

/** Settings that need new sockets, a new process or a new account: read at start-up only. */
const RESTART_ONLY: readonly [string, (c: Config) => unknown][] = [
  ['interface', (c) => c.interfaces],
  ['listen address (-l)', (c) => c.listenAddress],
  ['tftp address (-t)', (c) => c.tftpAddress],
  ['broadcast address (-b)', (c) => c.broadcastAddress],
  ['tftp', (c) => c.tftp.enabled],
  ['tftp-root', (c) => c.tftp.root],
  ['tftp-max-transfers', (c) => c.tftp.maxTransfers],
  ['tftp-idle-timeout', (c) => c.tftp.idleTimeout],
  ['tftp-workers', (c) => c.tftp.workers],
  ['http', (c) => c.http?.enabled ?? false],
  ['http-root', (c) => c.http?.root],
  ['http-port', (c) => c.http?.port],
  ['http-max-connections', (c) => c.http?.maxConnections],
  ['upstream', (c) => c.upstream?.url],
  ['cache-dir', (c) => c.upstream?.cacheDir],
  ['cache-max-size', (c) => c.upstream?.cacheMaxBytes],
  ['cache-ttl', (c) => c.upstream?.cacheTtl],
  ['log-format', (c) => c.logFormat],
  ['log-file', (c) => c.logFile],
  ['user', (c) => c.user],
  ['events', (c) => c.events?.file],
  ['notify', (c) => c.events?.notify.map((n) => n.text)],
  ['exit-after', (c) => c.events?.exitAfter.map((x) => x.text)],
  ['exit-timeout', (c) => c.events?.exitTimeout],
  ['metrics', (c) => c.metrics],
];

/** The restart-only settings that differ between two configs, by option name. */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  return RESTART_ONLY.filter(([, get]) => JSON.stringify(get(running)) !== JSON.stringify(get(next))).map(([n]) => n);
}
