import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { until } from '../helpers/daemon.js';
import { Lab, have, waitForOutput, type Host } from '../helpers/netns.js';
import { startDaemonProcess, stopDaemon, waitForLine, type DaemonProcess } from '../helpers/process.js';

const FLOOD = fileURLToPath(new URL('../helpers/flood.ts', import.meta.url));
const FOREIGN_COUNT = 13_000;
/**
 * That nothing is sent has no event to wait for, so it takes a window; it opens only once a
 * control's answer has shown the capture live and the daemon through everything sent before it.
 */
const QUIET_WINDOW_MS = 500;
/** Bound on waiting for an answer to show in the capture. */
const ANSWER_WAIT_MS = 10_000;
/** flood.ts repeat: a PXE DISCOVER on 67 and a PXE REQUEST on 4011, with these xids. */
const CONTROL = { discover: 0xabc0001, request: 0xabc0002 } as const;

/** Resident set of a process, in KiB. */
function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/**
 * The daemon on a namespace LAN. tcpdump in the server's namespace prints every UDP datagram the
 * server sends from 67 or 4011 (broadcast, unicast or to a relay alike), with its xid (-v).
 */
describe('never interfere: ordinary DHCP traffic gets nothing from us (namespace LAN)', () => {
  let lab: Lab;
  let srv: Host;
  let cli: Host;
  let daemon: DaemonProcess;
  let capture: ChildProcess;
  let captured = '';
  /** The address line of each reply captured (with -v, the one naming ports and xid). */
  const replies: string[] = [];
  const repliesSeen = (): string[] => replies;
  /** Replies carrying this xid (`0x…` as tcpdump prints it). */
  const withXid = (xid: number): string[] => replies.filter((l) => l.includes(`xid 0x${xid.toString(16)},`));
  /** Wait until `n` replies with this xid are in the capture. */
  const answered = (xid: number, n: number, what: string): Promise<void> =>
    until(() => withXid(xid).length >= n, ANSWER_WAIT_MS, `${what} (reply number ${n} with xid 0x${xid.toString(16)})`);

  before(async () => {
    for (const tool of ['ip', 'tcpdump'])
      assert.ok(have(tool), `${tool} is not installed (CI installs it: see .ci/run)`);
    lab = await Lab.create('nointf');
    srv = await lab.addHost('srv', '10.78.0.2/24');
    cli = await lab.addHost('cli', '10.78.0.3/24');
    // Without a route, a send to 255.255.255.255 fails with ENETUNREACH.
    await lab.ip(cli.ns, 'route', 'add', 'default', 'dev', 'eth0');
    capture = lab.spawn(srv.ns, 'tcpdump', [
      '-i',
      'eth0',
      '-nn',
      '-v',
      '-l',
      '-Q',
      'out',
      'udp and (src port 67 or src port 4011)',
    ]);
    let partial = '';
    capture.stdout?.on('data', (d: Buffer) => {
      const text = partial + d.toString();
      const cut = text.lastIndexOf('\n') + 1;
      partial = text.slice(cut);
      for (const l of text.slice(0, cut).split('\n')) {
        if (/(^|\s)10\.78\.0\.2\.(67|4011) > /.test(l)) replies.push(l.trim());
      }
      if (captured.length < 1 << 20) captured += d.toString(); // for failure messages
    });
    await waitForOutput(capture, /listening on eth0/, 10_000);
    daemon = startDaemonProcess(['-d', '-i', 'eth0', '--no-tftp', 'pxelinux.0'], {
      built: true,
      prefix: ['ip', 'netns', 'exec', srv.ns],
    });
    await waitForLine(daemon, /dropped privileges/);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon);
    await lab?.cleanup();
  });

  async function flood(mode: string, count: number): Promise<void> {
    const r = await lab.exec(
      cli.ns,
      process.execPath,
      ['--import', 'tsx', FLOOD, mode, srv.address, String(count)],
      120_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`sent ${mode === 'repeat' ? count * 2 : count}`));
  }

  it(`${FOREIGN_COUNT} ordinary DHCP packets (no PXEClient, BOOTREPLYs, REQUEST/INFORM on 67, DISCOVER on 4011) get not one packet, while PXE packets after them get their one answer each (the capture works)`, async () => {
    const rssBefore = rssKiB(daemon.child.pid!);
    await flood('foreign', FOREIGN_COUNT);
    // The control, on both ports: each socket reads its queue in order, so these answers come
    // only after the daemon has taken every foreign packet.
    await flood('repeat', 1);
    await answered(CONTROL.discover, 1, 'the offer to the PXE DISCOVER sent after the foreign flood');
    await answered(CONTROL.request, 1, 'the ACK to the 4011 REQUEST sent after the foreign flood');
    await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS));
    const control = [...withXid(CONTROL.discover), ...withXid(CONTROL.request)];
    assert.deepEqual(
      repliesSeen().filter((l) => !control.includes(l)),
      [],
      'not one reply to the foreign flood',
    );
    assert.equal(repliesSeen().length, 2, `one answer to each control packet:\n${captured}\n${daemon.output()}`);
    assert.match(withXid(CONTROL.discover)[0]!, /10\.78\.0\.2\.67 > 255\.255\.255\.255\.68: /);
    assert.match(withXid(CONTROL.request)[0]!, /10\.78\.0\.2\.4011 > 10\.78\.0\.3\.68: /);
    assert.equal(daemon.child.exitCode, null, daemon.output());
    console.log(`foreign flood: RSS ${rssBefore} → ${rssKiB(daemon.child.pid!)} KiB`);
  });

  it('client retransmissions: each DISCOVER and 4011 REQUEST gets exactly one answer, nothing piles up', async () => {
    const before = repliesSeen().length;
    await flood('repeat', 5);
    await until(
      () => repliesSeen().length - before >= 10,
      ANSWER_WAIT_MS,
      `10 answers to the retransmissions (have ${repliesSeen().length - before})`,
    );
    // No further answer may follow (a pile-up would): the 10 above are the positive control.
    await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS));
    const lines = repliesSeen().slice(before);
    assert.equal(lines.filter((l) => /10\.78\.0\.2\.67 > 255\.255\.255\.255\.68/.test(l)).length, 5, lines.join('\n'));
    assert.equal(lines.filter((l) => /10\.78\.0\.2\.4011 > 10\.78\.0\.3\.68/.test(l)).length, 5, lines.join('\n'));
    assert.equal(lines.length, 10);
  });

  it('20 000 PXE DISCOVERs from random MACs keep memory flat', async () => {
    await flood('pxe', 2000); // warm-up: JIT, buffers
    const rssBefore = rssKiB(daemon.child.pid!);
    await flood('pxe', 20_000);
    // Measure once the daemon has worked through the flood: the control is answered only after it.
    const [discovers, requests] = [withXid(CONTROL.discover).length, withXid(CONTROL.request).length];
    await flood('repeat', 1);
    await answered(CONTROL.discover, discovers + 1, 'the offer to the DISCOVER sent after the random-MAC flood');
    await answered(CONTROL.request, requests + 1, 'the ACK to the 4011 REQUEST sent after the random-MAC flood');
    const rssAfter = rssKiB(daemon.child.pid!);
    console.log(`random-MAC flood: RSS ${rssBefore} → ${rssAfter} KiB`);
    assert.equal(daemon.child.exitCode, null, daemon.output());
    // No per-client state: 20 000 new clients may not add a megabyte each (or even one in total,
    // beyond GC slack).
    assert.ok(rssAfter - rssBefore < 32 * 1024, `RSS grew by ${rssAfter - rssBefore} KiB`);
  });
});
