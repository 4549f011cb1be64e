import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { have, Lab, type Host } from '../helpers/netns.js';
import { NET } from './tftproot.js';
import { Transcript } from './transcript.js';

/** The repository root, where `dist/bin/pxe-pdhcp.js` is built. */
export const REPO = resolve(import.meta.dirname, '../..');

/** Hardware addresses of the lab hosts and clients; the boot rules name the UEFI client's. */
export const MAC = {
  server: '52:54:00:77:00:fe',
  router: '52:54:00:77:00:fd',
  bios: '52:54:00:77:00:01',
  uefi: '52:54:00:77:00:02',
  ipxe: '52:54:00:77:00:03',
  secureboot: '52:54:00:77:00:04',
  arm64: '52:54:00:77:00:05',
  bystander: '52:54:00:77:00:09',
} as const;

/** Clients whose boot loader is GRUB, which needs next-server from the router (see startRouter). */
export const GRUB_MACS: readonly string[] = [MAC.secureboot, MAC.arm64];

/** Commands the e2e run needs, with the Debian package that has each. */
export const TOOLS: Record<string, string> = {
  ip: 'iproute2',
  dnsmasq: 'dnsmasq-base',
  busybox: 'busybox',
  tcpdump: 'tcpdump',
  tshark: 'tshark',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-system-aarch64': 'qemu-system-arm',
};

/** Tools that are not installed, as "name (package)"; empty when all are there. */
export function missingTools(): string[] {
  return Object.entries(TOOLS)
    .filter(([cmd]) => !have(cmd))
    .map(([cmd, pkg]) => `${cmd} (Debian package ${pkg})`);
}

/**
 * The one pxe-pdhcp configuration for every client: the "mixed lab" of README.md. Boot rules, first
 * match wins: iPXE on UEFI gets the script, the UEFI client's MAC syslinux.efi, the Secure Boot
 * client's MAC shim, any other x64 UEFI client ipxe.efi, ARM64 UEFI the arm64 GRUB, the rest (BIOS)
 * the positional default pxelinux.0. Only the TFTP root, made per run, is given on the command line.
 */
export const MIXED_LAB_CONFIG = join(REPO, 'test/e2e/mixed-lab.json');

export function serverArgs(tftpRoot: string): string[] {
  return ['-d', '--config', MIXED_LAB_CONFIG, '--tftp-root', tftpRoot];
}

/** Options for building the LAN. */
export interface LanOptions {
  /** Scratch directory for leases, captures, firmware variables. */
  work: string;
  tftpRoot: string;
  /** Run the daemon with -v: its debug lines show the packets it ignored. */
  verbose?: boolean;
  /** Print daemon and router lines live (make lab). */
  echo?: (source: string, line: string) => void;
}

/**
 * The LAN: a switch namespace with bridge br0; "router" runs dnsmasq as a plain DHCP server (no PXE
 * options at all, the home-router situation); "server" runs our built daemon; "client" bridges a
 * tap device, where QEMU's NIC appears, onto the LAN; "bystander" is an ordinary DHCP client.
 */
export class Lan {
  readonly #lab: Lab;
  readonly server: Host;
  readonly router: Host;
  readonly client: Host;
  readonly bystander: Host;
  readonly opts: LanOptions;
  daemon!: Transcript;
  daemonChild!: ChildProcess;
  dhcp!: Transcript;

  private constructor(lab: Lab, hosts: Record<'server' | 'router' | 'client' | 'bystander', Host>, opts: LanOptions) {
    this.#lab = lab;
    this.server = hosts.server;
    this.router = hosts.router;
    this.client = hosts.client;
    this.bystander = hosts.bystander;
    this.opts = opts;
  }

  get lab(): Lab {
    return this.#lab;
  }

  /** Build the namespaces and links; nothing runs yet. On failure everything is deleted. */
  static async create(opts: LanOptions): Promise<Lan> {
    const lab = await Lab.create('pxe-e2e');
    try {
      const router = await lab.addHost('router', `${NET.router}/${NET.prefix}`, MAC.router);
      const server = await lab.addHost('server', `${NET.server}/${NET.prefix}`, MAC.server);
      const client = await lab.addHost('client', null);
      const bystander = await lab.addHost('bystander', null, MAC.bystander);
      // Keep the capture to what the test is about: no IPv6 router solicitations or MLD reports.
      for (const ns of [lab.switchNs, router.ns, server.ns, client.ns, bystander.ns]) {
        await lab.exec(ns, 'sysctl', [
          '-qw',
          'net.ipv6.conf.all.disable_ipv6=1',
          'net.ipv6.conf.default.disable_ipv6=1',
        ]);
      }
      // The client namespace is a little switch of its own: its LAN port and QEMU's tap.
      await lab.ip(client.ns, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
      await lab.ip(client.ns, 'link', 'set', 'eth0', 'master', 'br0');
      await lab.ip(client.ns, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
      await lab.ip(client.ns, 'link', 'set', 'tap0', 'master', 'br0');
      await lab.ip(client.ns, 'link', 'set', 'tap0', 'up');
      await lab.ip(client.ns, 'link', 'set', 'br0', 'up');
      return new Lan(lab, { router, server, client, bystander }, opts);
    } catch (err) {
      await lab.cleanup();
      throw err;
    }
  }

  /**
   * dnsmasq as the LAN's ordinary DHCP server: a range and a router option, no PXE options; for the
   * GRUB clients alone, next-server.
   */
  async startRouter(): Promise<void> {
    const child = this.#lab.spawn(this.router.ns, 'dnsmasq', [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--log-facility=-',
      '--log-dhcp',
      '--interface=eth0',
      '--bind-interfaces',
      `--dhcp-leasefile=${join(this.opts.work, 'dnsmasq.leases')}`,
      `--dhcp-range=${NET.rangeStart},${NET.rangeEnd},255.255.255.0,10m`,
      `--dhcp-option=option:router,${NET.router}`,
      // GRUB's network stack takes its TFTP server from the router's DHCPACK only: siaddr, else
      // option 66 (grub-core/net/drivers/efi/efinet.c reads PXE Mode->DhcpAck, never ProxyOffer;
      // grub_net_configure_by_dhcp_ack() in grub-core/net/bootp.c). dnsmasq puts its own address in
      // siaddr, so the two GRUB clients get next-server = pxe-pdhcp's host from the router, the one
      // setting README's "Secure Boot" section asks of the router. Every other client gets nothing.
      ...GRUB_MACS.map((mac) => `--dhcp-host=${mac},set:grub`),
      `--dhcp-option=tag:grub,option:server-ip-address,${NET.server}`,
    ]);
    const echo = this.opts.echo;
    this.dhcp = new Transcript('dnsmasq', child, echo ? (l) => echo('router', l) : undefined);
    await this.dhcp.waitFor(/DHCP, IP range/, 15_000);
  }

  /** Our built daemon in the server namespace, with its bundled TFTP server. */
  async startServer(daemonArgs = serverArgs(this.opts.tftpRoot)): Promise<void> {
    const args = [join(REPO, 'dist/bin/pxe-pdhcp.js'), ...(this.opts.verbose ? ['-v'] : []), ...daemonArgs];
    this.daemonChild = this.#lab.spawn(this.server.ns, process.execPath, args);
    const echo = this.opts.echo;
    this.daemon = new Transcript('pxe-pdhcp', this.daemonChild, echo ? (l) => echo('pxe-pdhcp', l) : undefined);
    await this.daemon.waitFor(/listening/, 20_000);
  }

  /** Start a long-running command in a namespace; it is ended by PID at cleanup. */
  spawn(ns: string, cmd: string, args: string[]): ChildProcess {
    return this.#lab.spawn(ns, cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  stop(child: ChildProcess): Promise<void> {
    return this.#lab.stop(child);
  }

  exec(ns: string, cmd: string, args: string[], ms?: number): ReturnType<Lab['exec']> {
    return this.#lab.exec(ns, cmd, args, ms);
  }

  /** Stop every process we started (by PID) and delete every namespace. */
  cleanup(): Promise<void> {
    return this.#lab.cleanup();
  }
}
