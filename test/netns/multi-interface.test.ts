import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { ProbeResult } from '../../src/probe/run.js';
import { Lab, waitForOutput, type Host } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DAEMON = `${ROOT}dist/bin/pxe-pdhcp.js`;
const PROBE = `${ROOT}dist/bin/pxe-probe.js`;

/**
 * `-i` given twice: one daemon serves two LANs, each answer leaves through the interface its
 * request came in on and names that interface's address, and neither LAN hears the other's.
 */
describe('two interfaces (-i eth0 -i eth1)', () => {
  let lanA: Lab;
  let lanB: Lab;
  let server: Host;
  let clientA: Host;
  let clientB: Host;

  before(async () => {
    lanA = await Lab.create('pxmia');
    lanB = await Lab.create('pxmib');
    server = await lanA.addHost('srv', '10.81.0.2/24');
    await lanB.attach(server.ns, 'eth1', '10.82.0.2/24');
    clientA = await lanA.addHost('cla', null, '52:54:00:81:00:01');
    clientB = await lanB.addHost('clb', null, '52:54:00:82:00:01');
    const daemon = lanA.spawn(server.ns, process.execPath, [
      DAEMON,
      '-d',
      '-i',
      'eth0',
      '-i',
      'eth1',
      '--no-tftp',
      'pxelinux.0',
    ]);
    await waitForOutput(daemon, /interface=eth0[\s\S]*interface=eth1/, 10_000);
  });
  after(async () => {
    await lanA?.cleanup();
    await lanB?.cleanup();
  });

  async function probe(lab: Lab, host: Host): Promise<ProbeResult> {
    // No router on these LANs: the probe reports the offers it saw and exits 1 (no lease).
    const r = await lab.exec(host.ns, process.execPath, [PROBE, '-i', 'eth0', '--timeout', '2', '--json']);
    assert.equal(r.code, 1, r.stderr);
    return JSON.parse(r.stdout) as ProbeResult;
  }

  it('answers each LAN from that LAN’s own address, and only there', async () => {
    const [a, b] = await Promise.all([probe(lanA, clientA), probe(lanB, clientB)]);
    for (const [result, own] of [
      [a, '10.81.0.2'],
      [b, '10.82.0.2'],
    ] as const) {
      const proxies = result.offers.filter((o) => o.kind === 'proxy');
      assert.equal(proxies.length, 1, JSON.stringify(result.offers));
      assert.equal(proxies[0]!.server, own);
      assert.equal(proxies[0]!.source, `${own}:67`);
      assert.equal(proxies[0]!.nextServer, own);
      assert.equal(proxies[0]!.bootFile, 'pxelinux.0');
    }
  });
});
