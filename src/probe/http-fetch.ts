import { createHash } from 'node:crypto';
import { request } from 'node:http';
import type { FetchReport, TransferReport } from './fetch.js';
import { originOfXCache } from './status.js';

/** One HTTP GET, whole body in memory (the probe fetches boot files, not disk images). */
export interface HttpResult {
  ok: boolean;
  status?: number;
  data: Buffer;
  ms: number;
  error?: string;
  /** The `X-Cache` header (`hit`, `miss`) of a file `pxe-pdhcp` took from `--upstream`. */
  cache?: string;
}

/** Largest body the probe keeps; a bigger one fails rather than fill memory. */
const MAX_BODY = 1024 * 1024 * 1024;

/** GET `url` (http only) and collect the body; never throws. */
export function httpGet(url: string, timeoutMs = 60_000): Promise<HttpResult> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let req: ReturnType<typeof request>;
    try {
      req = request(url, { timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) req.destroy(new Error(`body larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const data = Buffer.concat(chunks);
          const cache = res.headers['x-cache'];
          resolve({
            ok: status === 200,
            status,
            data,
            ms: ms(),
            ...(status !== 200 ? { error: `HTTP ${status}` } : {}),
            ...(typeof cache === 'string' ? { cache } : {}),
          });
        });
        res.on('error', (err) => resolve({ ok: false, data: Buffer.alloc(0), ms: ms(), error: err.message }));
      });
    } catch (err) {
      resolve({ ok: false, data: Buffer.alloc(0), ms: ms(), error: (err as Error).message });
      return;
    }
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, data: Buffer.alloc(0), ms: ms(), error: err.message }));
    req.end();
  });
}

/** What an iPXE script loads: `kernel`, `initrd` and `chain` URLs, resolved against the script's URL. */
export interface IpxeScriptPlan {
  kernel?: string;
  initrd: string[];
  chain?: string;
}

/** iPXE options written before an image URL (`kernel --name x URL`, `initrd -n x URL`). */
const OPTION_WITH_VALUE = new Set(['--name', '-n', '--timeout', '-t']);

function urlArgument(words: string[]): string | undefined {
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (OPTION_WITH_VALUE.has(w)) i++;
    else if (!w.startsWith('-')) return w;
  }
  return undefined;
}

/**
 * The images an iPXE script loads, in the forms `pxe-pdhcp` generates and people write: `kernel`
 * (or `imgexec`/`chain`/`boot` with a URL) and `initrd`/`imgfetch`, each URL resolved against the
 * script's own. Settings (`${…}`), menus and `goto` are not followed. Pure.
 */
export function parseIpxeScript(text: string, base: string): IpxeScriptPlan {
  const plan: IpxeScriptPlan = { initrd: [] };
  const resolve = (u: string): string => new URL(u, base).toString();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [command, ...rest] = line.split(/\s+/);
    const url = urlArgument(rest);
    if (url === undefined || url.includes('${')) continue;
    if (command === 'kernel' || command === 'imgexec') plan.kernel ??= resolve(url);
    else if (command === 'initrd' || command === 'imgfetch' || command === 'module') plan.initrd.push(resolve(url));
    else if (command === 'chain' || command === 'boot') plan.chain ??= resolve(url);
  }
  return plan;
}

export type HttpGetter = (url: string) => Promise<HttpResult>;

function report(role: string, url: string, r: HttpResult): TransferReport {
  const base: TransferReport = { file: url, server: new URL(url).host, role, ok: r.ok, ms: r.ms, protocol: 'http' };
  if (!r.ok) return { ...base, failure: { kind: 'protocol', message: r.error ?? 'failed' } };
  const seconds = Math.max(r.ms, 1) / 1000;
  return {
    ...base,
    bytes: r.data.length,
    sha256: createHash('sha256').update(r.data).digest('hex'),
    kBps: Math.round(r.data.length / 1000 / seconds),
    ...(r.status !== undefined ? { status: r.status } : {}),
    origin: originOfXCache(r.cache),
  };
}

const MAX_CHAIN = 3;

/**
 * Fetch an `http://` boot file as iPXE would: when it is an iPXE script (`#!ipxe`), follow it to
 * the kernel and initrds it names (and through up to three `chain`ed scripts), each with size,
 * sha256 and speed. A boot file that is not a script (an `.efi` for UEFI HTTP Boot) is fetched alone.
 */
export async function fetchHttpBoot(url: string, get: HttpGetter = httpGet): Promise<FetchReport> {
  const transfers: TransferReport[] = [];
  let role = 'boot file';
  let here = url;
  for (let depth = 0; depth <= MAX_CHAIN; depth++) {
    const r = await get(here);
    const isScript = r.ok && r.data.subarray(0, 6).toString('latin1') === '#!ipxe';
    transfers.push(report(isScript ? 'script' : role, here, r));
    if (!r.ok) return { transfers, ok: false };
    if (!isScript) return { transfers, ok: true };
    const plan = parseIpxeScript(r.data.toString('utf8'), here);
    if (plan.kernel) {
      const kernel = await get(plan.kernel);
      transfers.push(report('kernel', plan.kernel, kernel));
      let ok = kernel.ok;
      for (const i of plan.initrd) {
        const got = await get(i);
        transfers.push(report('initrd', i, got));
        ok = got.ok && ok;
      }
      return { transfers, ok };
    }
    if (plan.chain === undefined) break;
    here = plan.chain;
    role = 'chained';
  }
  // A script that loads no kernel (a menu, a shell) is fetched, but nothing bootable was found.
  return { transfers, ok: false };
}
