/**
 * One storm against one stack: a fresh namespace LAN (server 10.91.0.1/16, clients 10.91.1.1 and up
 * on one veth in the client namespace), the stack's servers started in the server namespace, the
 * clients (clients.ts, one Node process) run in the client namespace, then the servers' CPU, peak
 * RSS, UDP receive-buffer drops and (ours) warn lines are collected and the LAN torn down.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Lab, waitForOutput, type Host } from '../helpers/netns.js';
import type { ClientsConfig, ClientsOutput } from './clients.js';
import type { MachineSpec, StormFiles } from './machine.js';
import { CpuAccount, peakSampler } from './account.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const CLIENTS_TS = fileURLToPath(new URL('./clients.ts', import.meta.url));

export const STACKS = ['ours', 'dnsmasq', 'dnsmasq+tftpd-hpa'] as const;
export type Stack = (typeof STACKS)[number];

export interface StormOptions {
  n: number;
  kernelMb: number;
  via: 'tftp' | 'http';
  /** Share of UEFI machines (the rest are BIOS ROMs). */
  uefiShare?: number;
  /** Power-on spread (ms). */
  spreadMs?: number;
  /** Extra daemon options (ours), e.g. `--tftp-max-transfers 64`. */
  daemonArgs?: string[];
  /** Give up on the whole storm after this (ms). */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface StackResult {
  stack: Stack;
  n: number;
  via: 'tftp' | 'http';
  clients: ClientsOutput;
  cpuSeconds: number | null;
  peakRssKiB: number;
  rcvbufErrors: { server: number; client: number };
  /** Ours: log lines at warn and above, with counts, by message. */
  warnings: { message: string; count: number; example: string }[];
  /** The HTTP server used by the C stacks for VIA=http. */
  httpServer?: string;
  /** Ours: the daemon's own counters at the end (from `/metrics`), the non-zero ones. */
  stats?: Record<string, number>;
}

const run = promisify(execFile);

/** Where our daemon's `--metrics` listens, inside the server's namespace. */
const METRICS = '127.0.0.1:9187';

/** The daemon's counters, read from its `/metrics` page inside `ns`. */
async function daemonStats(ns: string): Promise<Record<string, number>> {
  const { stdout } = await run('ip', [
    'netns',
    'exec',
    ns,
    'curl',
    '-sS',
    '--max-time',
    '5',
    `http://${METRICS}/metrics`,
  ]);
  const stats: Record<string, number> = {};
  for (const m of stdout.matchAll(/^pxe_pdhcp_stats_total\{stat="([^"]+)"\} (\d+)$/gm)) stats[m[1]!] = Number(m[2]);
  return stats;
}

const SERVER_IP = '10.91.0.1';
const HTTP_PORT = 80;

/** Machine i's address: 10.91.1.1 upwards, 250 to a /24, all inside the server's /16. */
export function machineIp(i: number): string {
  return `10.91.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/** The storm's machines: a fixed mix, power-on times spread over `spreadMs` (seeded, reproducible). */
export function machines(n: number, uefiShare = 0.3, spreadMs = 50): MachineSpec[] {
  let x = 0x9e3779b9;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const uefiEvery = uefiShare > 0 ? 1 / uefiShare : Infinity;
  return Array.from({ length: n }, (_, i) => {
    const uefi = Math.floor((i + 1) / uefiEvery) !== Math.floor(i / uefiEvery);
    const mac = `52:54:00:9a:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    return {
      index: i,
      mac,
      ip: machineIp(i),
      kind: uefi ? 'uefi' : 'bios',
      // Half the BIOS ROMs ask blksize 1432 (Intel's), the others send a bare RFC 1350 request.
      ...(uefi ? {} : i % 2 === 0 ? { nbpBlksize: 1432 } : {}),
      powerOnMs: Math.round(rnd() * spreadMs),
    } satisfies MachineSpec;
  });
}

interface Root {
  dir: string;
  files: StormFiles;
}

/** The TFTP root: NBPs of realistic size, a kernel and an initrd of `kernelMb` together. */
export function makeRoot(work: string, kernelMb: number): Root {
  const dir = join(work, 'root');
  mkdirSync(dir);
  const total = Math.round(kernelMb * 1024 * 1024);
  const kernel = Math.round(total * 0.3);
  const sizes: Record<string, number> = {
    'pxelinux.0': 46_909,
    'syslinux.efi': 199_040,
    vmlinuz: kernel,
    'initrd.img': total - kernel,
  };
  for (const [name, size] of Object.entries(sizes)) writeFileSync(join(dir, name), randomBytes(size), { mode: 0o644 });
  chmodSync(work, 0o755);
  chmodSync(dir, 0o755);
  return {
    dir,
    files: {
      kernel: { name: 'vmlinuz', size: sizes.vmlinuz! },
      initrd: { name: 'initrd.img', size: sizes['initrd.img']! },
      nbps: { 'pxelinux.0': sizes['pxelinux.0']!, 'syslinux.efi': sizes['syslinux.efi']! },
    },
  };
}

async function nstat(lab: Lab, ns: string): Promise<number> {
  const r = await lab.exec(ns, 'nstat', ['-asz', 'UdpRcvbufErrors']);
  return Number(/UdpRcvbufErrors\s+(\d+)/.exec(r.stdout)?.[1] ?? NaN);
}

function nginxConf(work: string, root: string): string {
  const conf = join(work, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      'user root;',
      `pid ${join(work, 'nginx.pid')};`,
      `error_log ${join(work, 'nginx-error.log')};`,
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      '  sendfile on;',
      '  default_type application/octet-stream;',
      `  server { listen ${SERVER_IP}:${HTTP_PORT}; root ${root}; }`,
      '}',
    ].join('\n'),
  );
  return conf;
}

function dnsmasqArgs(work: string, root: string, tftp: boolean): string[] {
  return [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--port=0',
    '--user=root',
    '--interface=eth0',
    '--dhcp-range=10.91.0.0,proxy,255.255.0.0',
    `--dhcp-leasefile=${join(work, 'dnsmasq.leases')}`,
    '--pxe-service=x86PC,boot,pxelinux',
    '--pxe-service=X86-64_EFI,boot,syslinux.efi',
    '--pxe-service=BC_EFI,boot,syslinux.efi',
    ...(tftp ? ['--enable-tftp', `--tftp-root=${root}`] : []),
    `--log-facility=${join(work, 'dnsmasq.log')}`,
    `--pid-file=${join(work, 'dnsmasq.pid')}`,
  ];
}

/** Parse our daemon's JSON log lines at warn and above into message counts. */
function warnings(text: string): StackResult['warnings'] {
  const by = new Map<string, { message: string; count: number; example: string }>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let o: { level?: string; message?: string; msg?: string };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      continue;
    }
    if (o.level !== 'warn' && o.level !== 'error') continue;
    const message = o.message ?? o.msg ?? '?';
    const e = by.get(message) ?? { message, count: 0, example: line };
    e.count++;
    e.example = line;
    by.set(message, e);
  }
  return [...by.values()];
}

export async function runStack(stack: Stack, o: StormOptions): Promise<StackResult> {
  const log = o.log ?? ((): void => undefined);
  const work = mkdtempSync(join(tmpdir(), 'storm-'));
  const lab = await Lab.create('storm');
  let cpu: CpuAccount | null = null;
  const sampler = peakSampler();
  try {
    const rootDir = makeRoot(work, o.kernelMb);
    const server: Host = await lab.addHost('srv', `${SERVER_IP}/16`);
    const client: Host = await lab.addHost('cli', '10.91.0.2/16');
    // Segment UDP GSO buffers before the link, as a NIC without segmentation offload would.
    await lab.ip(server.ns, 'link', 'set', 'eth0', 'gso_max_segs', '1');
    const list = machines(o.n, o.uefiShare, o.spreadMs);
    const batch = join(work, 'addrs');
    writeFileSync(batch, list.map((m) => `address add ${m.ip}/16 dev eth0\n`).join(''));
    await lab.exec(client.ns, 'ip', ['-batch', batch]);
    const pids: number[] = [];
    let ourLog = '';
    let httpServer: string | undefined;
    if (stack === 'ours') {
      const p = lab.spawn(
        server.ns,
        process.execPath,
        [
          ...(process.env.STORM_NODE_ARGS ?? '').split(' ').filter(Boolean),
          MAIN,
          '-d',
          '-i',
          'eth0',
          '--log-format',
          'json',
          '--tftp-root',
          rootDir.dir,
          '--boot',
          'arch=efi-x64,file=syslinux.efi',
          ...(o.via === 'http' ? ['--http'] : []),
          '--metrics',
          METRICS,
          ...(o.daemonArgs ?? []),
          'pxelinux.0',
        ],
        { cwd: ROOT },
      );
      const ready = waitForOutput(p, o.via === 'http' ? /HTTP server listening/ : /TFTP server listening/, 20_000);
      p.stdout?.on('data', (c: Buffer) => (ourLog += c.toString()));
      p.stderr?.on('data', (c: Buffer) => (ourLog += c.toString()));
      await ready;
      pids.push(p.pid!);
    } else {
      const d = lab.spawn(server.ns, 'dnsmasq', dnsmasqArgs(work, rootDir.dir, stack === 'dnsmasq'));
      d.stdout?.resume();
      d.stderr?.resume();
      pids.push(d.pid!);
      if (stack === 'dnsmasq+tftpd-hpa') {
        const t = lab.spawn(server.ns, 'in.tftpd', ['-L', '-u', 'root', '-a', `${SERVER_IP}:69`, '-s', rootDir.dir]);
        t.stdout?.resume();
        t.stderr?.resume();
        pids.push(t.pid!);
      }
      if (o.via === 'http') {
        const h = lab.spawn(server.ns, 'nginx', [
          '-c',
          nginxConf(work, rootDir.dir),
          '-e',
          join(work, 'nginx-error.log'),
        ]);
        h.stdout?.resume();
        h.stderr?.resume();
        pids.push(h.pid!);
        httpServer = 'nginx (1 worker)';
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    cpu = CpuAccount.create(`${lab.id}-cpu`);
    for (const pid of pids) cpu?.add(pid);
    sampler.start(() => cpu?.pids() ?? pids);
    const cpu0 = cpu?.read() ?? 0;
    const config: ClientsConfig = {
      iface: 'eth0',
      machines: list,
      files: rootDir.files,
      via: o.via,
      httpPort: HTTP_PORT,
    };
    const configPath = join(work, 'clients.json');
    writeFileSync(configPath, JSON.stringify(config));
    log(`storm: ${stack}, ${o.n} machines, ${o.kernelMb} MB over ${o.via}`);
    const gen = lab.spawn(client.ns, process.execPath, ['--import', 'tsx', CLIENTS_TS, configPath], { cwd: ROOT });
    let out = '';
    let err = '';
    gen.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    gen.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const timeoutMs = o.timeoutMs ?? 900_000;
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => gen.kill('SIGKILL'), timeoutMs);
      gen.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    if (code !== 0) throw new Error(`storm clients exited ${code}: ${err.slice(-2000)}`);
    const clients = JSON.parse(out.trim().split('\n').pop()!) as ClientsOutput;
    const cpuSeconds = cpu ? cpu.read() - cpu0 : null;
    sampler.stop();
    const hwm = pids.map((pid) => statusKiB(pid, 'VmHWM')).filter((x) => Number.isFinite(x));
    const result: StackResult = {
      stack,
      n: o.n,
      via: o.via,
      clients,
      cpuSeconds,
      peakRssKiB: Math.max(sampler.peakKiB, stack === 'ours' ? (hwm[0] ?? 0) : 0),
      rcvbufErrors: { server: await nstat(lab, server.ns), client: await nstat(lab, client.ns) },
      warnings: warnings(ourLog),
      ...(stack === 'ours' ? { stats: await daemonStats(server.ns) } : {}),
      ...(httpServer ? { httpServer } : {}),
    };
    return result;
  } finally {
    sampler.stop();
    await lab.cleanup();
    cpu?.remove();
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  }
}

export function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
