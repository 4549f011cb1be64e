import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A host on the lab LAN: a network namespace whose `eth0` hangs on the lab bridge. */
export interface Host {
  /** Full namespace name (unique per run). */
  ns: string;
  /** Address given with `addHost`, without the prefix length. */
  address: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

const live = new Set<Lab>();
process.on('exit', () => {
  for (const lab of live) lab.cleanupSync();
});

/**
 * A LAN made of network namespaces: a switch namespace holding bridge `br0`, and hosts joined to it
 * by veth pairs. Names carry the test's prefix and our PID, so parallel runs never collide.
 * Everything is torn down by `cleanup()` (and, as a last resort, when the process exits).
 */
export class Lab {
  readonly id: string;
  readonly switchNs: string;
  readonly #namespaces: string[] = [];
  readonly #children = new Set<ChildProcess>();
  #hosts = 0;

  private constructor(prefix: string) {
    this.id = `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    this.switchNs = `${this.id}-sw`;
  }

  /** Make the switch namespace with its bridge. */
  static async create(prefix: string): Promise<Lab> {
    const lab = new Lab(prefix);
    live.add(lab);
    await lab.addNamespace(lab.switchNs);
    await lab.ip(lab.switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await lab.ip(lab.switchNs, 'link', 'set', 'br0', 'up');
    return lab;
  }

  async addNamespace(ns: string): Promise<void> {
    await run('ip', ['netns', 'add', ns]);
    this.#namespaces.push(ns);
    await this.ip(ns, 'link', 'set', 'lo', 'up');
  }

  /** `ip -n NS ...` */
  async ip(ns: string, ...args: string[]): Promise<void> {
    await run('ip', ['-n', ns, ...args]);
  }

  /**
   * Add a host named `name` with `eth0` on the bridge. `cidr` like `10.77.0.2/24`, or null for an
   * interface with no address (a DHCP client's). `mac` fixes the hardware address.
   */
  async addHost(name: string, cidr: string | null, mac?: string): Promise<Host> {
    const ns = `${this.id}-${name}`;
    await this.addNamespace(ns);
    await this.attach(ns, 'eth0', cidr, mac);
    return { ns, address: cidr ? cidr.split('/')[0]! : '0.0.0.0' };
  }

  /** Join an existing namespace (say another lab's host) to this lab's bridge as `ifname`. */
  async attach(ns: string, ifname: string, cidr: string | null, mac?: string): Promise<void> {
    const peer = `p${this.#hosts++}`;
    await run('ip', [
      'link',
      'add',
      ifname,
      'netns',
      ns,
      ...(mac ? ['address', mac] : []),
      'type',
      'veth',
      'peer',
      'name',
      peer,
      'netns',
      this.switchNs,
    ]);
    await this.ip(this.switchNs, 'link', 'set', peer, 'master', 'br0');
    await this.ip(this.switchNs, 'link', 'set', peer, 'up');
    if (cidr) await this.ip(ns, 'addr', 'add', cidr, 'dev', ifname);
    await this.ip(ns, 'link', 'set', ifname, 'up');
    await this.carrier(ns, ifname);
  }

  /** Wait until a link has carrier: until then os.networkInterfaces() leaves it out. */
  async carrier(ns: string, ifname: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const { stdout } = await run('ip', ['-n', ns, '-o', 'link', 'show', ifname]);
      if (/[<,]LOWER_UP[,>]/.test(stdout) && !stdout.includes('NO-CARRIER')) return;
      if (Date.now() > deadline) throw new Error(`${ns}/${ifname} has no carrier after ${ms} ms: ${stdout}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Run a command to completion inside a namespace; never throws on a non-zero status. */
  async exec(ns: string, cmd: string, args: string[], timeoutMs = 60_000): Promise<ExecResult> {
    try {
      const r = await run('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
      return { stdout: r.stdout, stderr: r.stderr, code: 0 };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; code?: number | string };
      return { stdout: e.stdout ?? '', stderr: e.stderr ?? String(err), code: typeof e.code === 'number' ? e.code : 1 };
    }
  }

  /** Start a long-running command inside a namespace; it is ended (by PID) at cleanup. */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** End one child we started: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(child: ChildProcess, graceMs = 3000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stop every child and delete every namespace of this lab. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.#children].map((c) => this.stop(c)));
    for (const ns of this.#namespaces.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    this.#namespaces.length = 0;
    live.delete(this);
  }

  /** Synchronous last resort, for process exit. */
  cleanupSync(): void {
    for (const c of this.#children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
    for (const ns of this.#namespaces) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  }
}

/** Resolve when `pattern` appears in a child's stdout or stderr (accumulated), or reject after `ms`. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const check = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (pattern.test(seen)) {
        done();
        resolve(seen);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${ms} ms waiting for ${String(pattern)}; output so far:\n${seen}`));
    }, ms);
    const onExit = (code: number | null): void => {
      done();
      reject(new Error(`process exited (${code}) before ${String(pattern)}; output:\n${seen}`));
    };
    const done = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', onExit);
  });
}

/** True when a command is on PATH. */
export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * dnsmasq as the LAN's router on `ns`: a plain DHCP server (no DNS) handing out `range` (`FIRST,LAST`)
 * for an hour, leases in `leaseFile`; resolves once it serves.
 */
export async function startRouter(
  lab: Lab,
  ns: string,
  range: string,
  leaseFile: string,
  extra: string[] = [],
): Promise<ChildProcess> {
  const child = lab.spawn(ns, 'dnsmasq', [
    ...['-d', '-C', '/dev/null', '--port=0', '-i', 'eth0', '--no-ping'],
    ...[`--dhcp-range=${range},1h`, `--dhcp-leasefile=${leaseFile}`, ...extra],
  ]);
  await waitForOutput(child, /DHCP, IP range/, 10_000);
  return child;
}
