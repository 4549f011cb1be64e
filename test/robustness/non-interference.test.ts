import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Lab, have, waitForOutput, type Host } from '../helpers/netns.js';
import { startDaemonProcess, stopDaemon, waitForLine, type DaemonProcess } from './process.js';

const FLOOD = fileURLToPath(new URL('./flood.ts', import.meta.url));
const FOREIGN_COUNT = 13_000;

/** Resident set of a process, in KiB. */
function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/**
 * The daemon on a namespace LAN. tcpdump in the server's namespace prints every UDP datagram the
 * server sends from 67 or 4011 (broadcast, unicast or to a relay alike), one line each.
 */
describe('never interfere: ordinary DHCP traffic gets nothing from us (namespace LAN)', () => {
  let lab: Lab;
  let srv: Host;
  let cli: Host;
  let daemon: DaemonProcess;
  let capture: ChildProcess;
  let captured = '';
  const repliesSeen = (): string[] => captured.split('\n').filter((l) => / IP 10\.78\.0\.2\.(67|4011) > /.test(l));

  before(async () => {
    for (const tool of ['ip', 'tcpdump']) assert.ok(have(tool), `${tool} is not installed (CI installs it: see .ci/run)`);
    lab = await Lab.create('nointf');
    srv = await lab.addHost('srv', '10.78.0.2/24');
    cli = await lab.addHost('cli', '10.78.0.3/24');
    // Without a route, a send to 255.255.255.255 fails with ENETUNREACH.
    await lab.ip(cli.ns, 'route', 'add', 'default', 'dev', 'eth0');
    capture = lab.spawn(srv.ns, 'tcpdump', ['-i', 'eth0', '-nn', '-l', '-Q', 'out', 'udp and (src port 67 or src port 4011)']);
    capture.stdout?.on('data', (d: Buffer) => (captured += d.toString()));
    await waitForOutput(capture, /listening on eth0/, 10_000);
    daemon = startDaemonProcess(['-d', '-i', 'eth0', '--no-tftp', 'pxelinux.0'], { built: true, prefix: ['ip', 'netns', 'exec', srv.ns] });
    await waitForLine(daemon, /dropped privileges/);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon);
    await lab?.cleanup();
  });

  async function flood(mode: string, count: number): Promise<void> {
    const r = await lab.exec(cli.ns, process.execPath, ['--import', 'tsx', FLOOD, mode, srv.address, String(count)], 120_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`sent ${mode === 'repeat' ? count * 2 : count}`));
  }

  it(`${FOREIGN_COUNT} ordinary DHCP packets (no PXEClient, BOOTREPLYs, REQUEST/INFORM on 67, DISCOVER on 4011) get not one packet`, async () => {
    const rssBefore = rssKiB(daemon.child.pid!);
    await flood('foreign', FOREIGN_COUNT);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(repliesSeen(), []);
    assert.equal(daemon.child.exitCode, null, daemon.output());
    console.log(`foreign flood: RSS ${rssBefore} → ${rssKiB(daemon.child.pid!)} KiB`);
  });

  it('while a PXE DISCOVER still gets its one offer (the capture works)', async () => {
    await flood('pxe', 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(repliesSeen().length, 1, `${captured}\n${daemon.output()}`);
    assert.match(repliesSeen()[0]!, /> 255\.255\.255\.255\.68: /);
  });

  it('client retransmissions: each DISCOVER and 4011 REQUEST gets exactly one answer, nothing piles up', async () => {
    const before = repliesSeen().length;
    await flood('repeat', 5);
    await new Promise((r) => setTimeout(r, 1000));
    const lines = repliesSeen().slice(before);
    assert.equal(lines.filter((l) => /10\.78\.0\.2\.67 > 255\.255\.255\.255\.68/.test(l)).length, 5, lines.join('\n'));
    assert.equal(lines.filter((l) => /10\.78\.0\.2\.4011 > 10\.78\.0\.3\.68/.test(l)).length, 5, lines.join('\n'));
    assert.equal(lines.length, 10);
  });

  it('20 000 PXE DISCOVERs from random MACs keep memory flat', async () => {
    await flood('pxe', 2000); // warm-up: JIT, buffers
    const rssBefore = rssKiB(daemon.child.pid!);
    await flood('pxe', 20_000);
    await new Promise((r) => setTimeout(r, 500));
    const rssAfter = rssKiB(daemon.child.pid!);
    console.log(`random-MAC flood: RSS ${rssBefore} → ${rssAfter} KiB`);
    assert.equal(daemon.child.exitCode, null, daemon.output());
    // No per-client state: 20 000 new clients may not add a megabyte each (or even one in total,
    // beyond GC slack).
    assert.ok(rssAfter - rssBefore < 32 * 1024, `RSS grew by ${rssAfter - rssBefore} KiB`);
  });
});
