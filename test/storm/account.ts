import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * CPU time of a stack's servers and every process they fork (tftpd-hpa forks one per transfer): a
 * cgroup of their own, v2 (cpu.stat) or v1 cpuacct. Null when no hierarchy is writable.
 */
export class CpuAccount {
  private constructor(
    readonly dir: string,
    readonly read: () => number,
  ) {}

  static create(name: string): CpuAccount | null {
    const candidates: [string, string, (text: string) => number][] = [
      ['/sys/fs/cgroup/unified', 'cpu.stat', (t) => Number(/^usage_usec (\d+)/m.exec(t)?.[1]) / 1e6],
      ['/sys/fs/cgroup', 'cpu.stat', (t) => Number(/^usage_usec (\d+)/m.exec(t)?.[1]) / 1e6],
      ['/sys/fs/cgroup/cpuacct', 'cpuacct.usage', (t) => Number(t) / 1e9],
    ];
    for (const [base, file, parse] of candidates) {
      if (!existsSync(join(base, 'cgroup.procs'))) continue;
      const dir = join(base, name);
      try {
        mkdirSync(dir);
        if (!existsSync(join(dir, file))) throw new Error('no accounting file');
        return new CpuAccount(dir, () => parse(readFileSync(join(dir, file), 'utf8')));
      } catch {
        rmSync(dir, { recursive: false, force: true });
      }
    }
    return null;
  }

  add(pid: number): void {
    writeFileSync(join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** Every process in the group now. */
  pids(): number[] {
    try {
      return readFileSync(join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Remove the (by now empty) cgroup. */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      process.stderr.write(`storm: could not remove cgroup ${this.dir}\n`);
    }
  }
}

function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The largest sum of VmRSS over a stack's processes, sampled every 200 ms (forks included). */
export function peakSampler(): { start: (pids: () => number[]) => void; stop: () => void; peakKiB: number } {
  let timer: NodeJS.Timeout | undefined;
  const s = {
    peakKiB: 0,
    start(pids: () => number[]): void {
      const sample = (): void => {
        const sum = pids().reduce((a, p) => a + rssKiB(p), 0);
        if (sum > s.peakKiB) s.peakKiB = sum;
      };
      sample();
      timer = setInterval(sample, 200);
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return s;
}
