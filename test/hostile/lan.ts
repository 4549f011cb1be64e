import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, have, type Host } from '../helpers/netns.js';
import { BUILT_MAIN, startDaemonProcess, waitForLine, type DaemonProcess } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ASK = join(ROOT, 'test/hostile/ask.ts');
const SUBNET = '10.98.0';

/** A JSON log line of the daemon. */
export type Line = Record<string, unknown> & { level: string; message: string };

/**
 * The hostile LAN: the built daemon (`-d -i eth0 --user nobody`) on a bridge with an honest client,
 * an attacker that forges packets (spoof.c: any source address and port, port 0 included) and a
 * victim whose address the attacker borrows, with nftables counters of what reaches the victim.
 */
export class HostileLan {
  readonly server: Host;
  readonly client: Host;
  readonly attacker: Host;
  readonly victim: Host;
  daemon!: DaemonProcess;
  readonly #lab: Lab;
  readonly #spoof: string;
  readonly #work: string;

  private constructor(lab: Lab, hosts: Host[], spoof: string, work: string) {
    this.#lab = lab;
    [this.server, this.client, this.attacker, this.victim] = hosts as [Host, Host, Host, Host];
    this.#spoof = spoof;
    this.#work = work;
  }

  static async create(): Promise<HostileLan> {
    for (const tool of ['ip', 'nft', 'cc', 'curl', 'tftp'])
      assert.ok(have(tool), `${tool} is not installed (make deps installs it)`);
    const work = mkdtempSync(join(tmpdir(), 'hostile-'));
    const spoof = join(work, 'spoof');
    execFileSync('cc', ['-O2', '-Wall', '-o', spoof, join(ROOT, 'test/hostile/spoof.c')], { stdio: 'inherit' });
    const lab = await Lab.create('hostile');
    const hosts: Host[] = [];
    for (const [name, n] of [
      ['srv', 2],
      ['cli', 10],
      ['atk', 66],
      ['vic', 77],
    ] as const) {
      hosts.push(await lab.addHost(name, `${SUBNET}.${n}/24`));
    }
    // The server must take forged sources as a switch would deliver them.
    for (const key of ['all', 'eth0', 'default']) {
      await lab.exec(hosts[0]!.ns, 'sysctl', ['-qw', `net.ipv4.conf.${key}.rp_filter=0`]);
    }
    return new HostileLan(lab, hosts, spoof, work);
  }

  /** Start the daemon on `root` and wait until it serves, unprivileged. */
  async start(root: string, extra: string[] = []): Promise<void> {
    assert.ok(BUILT_MAIN, 'make build first');
    const args = ['-d', '-i', 'eth0', '--tftp-root', root, '--user', 'nobody', '--log-format', 'json', ...extra];
    this.daemon = startDaemonProcess([...args, 'pxelinux.0'], {
      built: true,
      prefix: ['ip', 'netns', 'exec', this.server.ns],
    });
    await waitForLine(this.daemon, /"message":"TFTP server listening"/);
    await waitForLine(this.daemon, /"message":"dropped privileges"/);
  }

  /** The daemon's JSON log lines so far. */
  lines(): Line[] {
    return this.daemon
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  }

  /** Open descriptors of the daemon (files and sockets). */
  fds(): number {
    return readdirSync(`/proc/${this.daemon.child.pid}/fd`).length;
  }

  /** Forge `count` UDP datagrams from the attacker. */
  async spoof(o: {
    from: string;
    sport: number;
    to?: string;
    dport: number;
    count: number;
    intervalUs?: number;
    payload: Buffer;
    portStep?: number;
    addresses?: number;
  }): Promise<number> {
    const args = [
      o.from,
      String(o.sport),
      o.to ?? this.server.address,
      String(o.dport),
      String(o.count),
      String(o.intervalUs ?? 0),
      o.payload.toString('hex'),
      String(o.portStep ?? 0),
      String(o.addresses ?? 1),
    ];
    const r = await this.#lab.exec(this.attacker.ns, this.#spoof, args, 120_000);
    assert.equal(r.code, 0, r.stderr);
    return Number(r.stdout.trim());
  }

  /** The honest client asks the proxy `count` times; answered count and answer times in ms. */
  async ask(kind: 'discover' | 'request4011', count: number): Promise<{ answered: number; p50: number; max: number }> {
    const spec = { kind, count, server: this.server.address, ciaddr: this.client.address };
    const r = await this.#lab.exec(this.client.ns, process.execPath, ['--import', 'tsx', ASK, JSON.stringify(spec)]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { answered: number; p50: number; max: number };
  }

  /** The honest client fetches `file` with curl over TFTP; resolves with its byte count, or -1. */
  async fetch(file: string, host: Host = this.client): Promise<number> {
    const out = join(this.#work, `got-${host.ns}-${Date.now()}`);
    const r = await this.#lab.exec(host.ns, 'curl', [
      '-sS',
      '--max-time',
      '20',
      '-o',
      out,
      '-w',
      '%{size_download}',
      `tftp://${this.server.address}/${file}`,
    ]);
    rmSync(out, { force: true });
    return r.code === 0 ? Number(r.stdout) : -1;
  }

  /** Run a command in a host's namespace. */
  exec(host: Host, cmd: string, args: string[], ms = 60_000): ReturnType<Lab['exec']> {
    return this.#lab.exec(host.ns, cmd, args, ms);
  }

  /** Start a long-running command in a host's namespace (ended at cleanup). */
  spawn(host: Host, cmd: string, args: string[]): ReturnType<Lab['spawn']> {
    return this.#lab.spawn(host.ns, cmd, args);
  }

  /** Count UDP packets and bytes arriving at the victim for `port` (nftables input counter). */
  async watchVictim(port: number): Promise<() => Promise<{ packets: number; bytes: number }>> {
    const nft = (...args: string[]): Promise<unknown> => this.#lab.exec(this.victim.ns, 'nft', args);
    const table = `watch${port}`;
    await nft('add', 'table', 'inet', table);
    await nft('add', 'chain', 'inet', table, 'input', '{ type filter hook input priority 0 ; }');
    await nft('add', 'rule', 'inet', table, 'input', 'udp', 'dport', String(port), 'counter');
    return async () => {
      const r = await this.#lab.exec(this.victim.ns, 'nft', ['list', 'table', 'inet', table]);
      const m = /counter packets (\d+) bytes (\d+)/.exec(r.stdout);
      return { packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
    };
  }

  async cleanup(): Promise<void> {
    await this.#lab.cleanup();
    rmSync(this.#work, { recursive: true, force: true });
  }
}
