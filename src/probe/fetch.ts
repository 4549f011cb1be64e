import { createHash } from 'node:crypto';
import type { FileOrigin } from '../core/events.js';
import {
  configSearchOrder,
  defaultBootEntry,
  isPxelinux,
  ldlinuxOf,
  parsePxelinuxConfig,
  pathPrefix,
  resolvePath,
  type BootEntry,
} from './pxelinux.js';
import { tftpGet, type TftpFailure, type TftpGetOptions, type TftpResult } from './tftp-client.js';

/** One TFTP download as reported. */
export interface TransferReport {
  file: string;
  server: string;
  ok: boolean;
  /** What the file is in the boot: `boot file`, `ldlinux`, `config`, `kernel`, `initrd`. */
  role: string;
  bytes?: number;
  sha256?: string;
  ms?: number;
  /** Kilobytes (1000 bytes) per second. */
  kBps?: number;
  blksize?: number;
  windowsize?: number;
  tsize?: number;
  failure?: TftpFailure;
  /** `http` for downloads over HTTP (iPXE scripts, UEFI HTTP Boot); TFTP otherwise. */
  protocol?: 'http';
  /** The HTTP status. */
  status?: number;
  /**
   * Where the server took a file that arrived: its local root, or `--upstream`'s cache (a hit, or a
   * miss fetched from the mirror for this request). Over HTTP from `X-Cache`; over TFTP only the
   * daemon knows (`--status`), else `unknown`.
   */
  origin?: FileOrigin | 'unknown';
}

export interface FetchReport {
  transfers: TransferReport[];
  pxelinux?: {
    /** The core module fetched before any config (`ldlinux.c32`, `ldlinux.e64`), and whether it came. */
    ldlinux: { file: string; found: boolean };
    /** Config names tried in pxelinux's order, and whether each was found. */
    searched: { file: string; found: boolean }[];
    config?: string;
    entry?: BootEntry;
  };
  /** True when the boot file (and for pxelinux: a config, its kernel and initrds) all arrived. */
  ok: boolean;
}

export interface FetchPlan {
  server: string;
  port?: number;
  bootFile: string;
  mac: Buffer;
  clientIp: string;
  uuid?: Buffer;
  /** Option 93 the probe sent: picks `ldlinux.e64` or `ldlinux.e32` after syslinux.efi. */
  arch: number;
  /** TFTP block size to ask for (docs/tftp.md#option-negotiation: EDK2 asks 1468 at MTU 1500). */
  blksize: number;
  windowsize: number;
  timeoutMs?: number;
}

/** Injectable transfer, so the pxelinux walk is tested without sockets. */
export type Getter = (o: TftpGetOptions) => Promise<TftpResult>;

function report(role: string, file: string, server: string, r: TftpResult): TransferReport {
  if (!r.ok) return { file, server, role, ok: false, ms: r.ms, failure: r.failure };
  const seconds = Math.max(r.ms, 1) / 1000;
  return {
    file,
    server,
    role,
    ok: true,
    bytes: r.data.length,
    sha256: createHash('sha256').update(r.data).digest('hex'),
    ms: r.ms,
    kBps: Math.round(r.data.length / 1000 / seconds),
    blksize: r.blksize,
    windowsize: r.windowsize,
    ...(r.tsize !== undefined ? { tsize: r.tsize } : {}),
    origin: 'unknown',
  };
}

const MAX_INCLUDE_DEPTH = 4;

/**
 * Download the boot file; when it is pxelinux (or syslinux.efi), fetch its ldlinux module, walk its
 * config search order, follow INCLUDE lines, and download the default entry's kernel and initrds,
 * as pxelinux would. A `LOCALBOOT` default is a complete boot: it needs no more files.
 */
export async function fetchBoot(plan: FetchPlan, get: Getter = tftpGet): Promise<FetchReport> {
  const transfers: TransferReport[] = [];
  const one = async (role: string, file: string, opts: Partial<TftpGetOptions> = {}): Promise<TftpResult> => {
    const r = await get({
      server: plan.server,
      file,
      blksize: plan.blksize,
      windowsize: plan.windowsize,
      tsize: true,
      ...(plan.port ? { port: plan.port } : {}),
      ...(plan.timeoutMs ? { timeoutMs: plan.timeoutMs } : {}),
      ...opts,
    });
    transfers.push(report(role, file, plan.server, r));
    return r;
  };
  const boot = await one('boot file', plan.bootFile);
  if (!boot.ok || !isPxelinux(plan.bootFile)) return { transfers, ok: boot.ok };
  const prefix = pathPrefix(plan.bootFile);
  // The core loads ldlinux from its own directory before any config, with the config's TFTP options.
  const ldName = `${prefix}${ldlinuxOf(plan.bootFile, plan.arch)}`;
  const ld = await one('ldlinux', ldName, { blksize: 1408, windowsize: undefined });
  const ldlinux = { file: ldName, found: ld.ok };
  if (!ld.ok) return { transfers, pxelinux: { ldlinux, searched: [] }, ok: false };
  const searched: { file: string; found: boolean }[] = [];
  let text: string | undefined;
  let config: string | undefined;
  for (const name of configSearchOrder(prefix, plan.mac, plan.clientIp, plan.uuid)) {
    // pxelinux sends only tsize and blksize 1408 here (docs/firmware.md#pxelinux).
    const r = await one('config', name, { blksize: 1408, windowsize: undefined });
    const notFound = !r.ok && r.failure.kind === 'error' && r.failure.code === 1;
    if (notFound) transfers.pop(); // misses are listed in `searched`, not as failed transfers
    searched.push({ file: name, found: r.ok });
    if (r.ok) {
      text = r.data.toString('latin1');
      config = name;
      break;
    }
    if (!notFound) break; // a timeout or another error stops pxelinux too
  }
  if (text === undefined) return { transfers, pxelinux: { ldlinux, searched }, ok: false };
  let cfg = parsePxelinuxConfig(text);
  for (let depth = 0; !defaultBootEntry(cfg) && cfg.includes.length > 0 && depth < MAX_INCLUDE_DEPTH; depth++) {
    const inc = resolvePath(prefix, cfg.includes[0]!);
    const r = await one('config', inc, { blksize: 1408, windowsize: undefined });
    if (!r.ok) break;
    const next = parsePxelinuxConfig(r.data.toString('latin1'));
    cfg = {
      ...next,
      defaultEntry: cfg.defaultEntry ?? next.defaultEntry,
      labels: [...cfg.labels, ...next.labels],
      includes: next.includes,
    };
  }
  const entry = defaultBootEntry(cfg);
  const found = { ldlinux, searched, config: config! };
  if (!entry) return { transfers, pxelinux: found, ok: false };
  if (entry.kernel === undefined) return { transfers, pxelinux: { ...found, entry }, ok: true };
  let ok = (await one('kernel', resolvePath(prefix, entry.kernel))).ok;
  for (const initrd of entry.initrd) ok = (await one('initrd', resolvePath(prefix, initrd))).ok && ok;
  return { transfers, pxelinux: { ...found, entry }, ok };
}
