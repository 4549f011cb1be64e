/**
 * End to end on a LAN of network namespaces (docs/addressing.md): a home router running
 * dnsmasq as a plain DHCP server, our built daemon started as a user would start it, a PXE client
 * replaying captured firmware packets, a relay agent, and an ordinary DHCP client (busybox udhcpc).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BootpOp, BROADCAST_FLAG, DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { ipOption, u8Option } from '../../src/wire/dhcp-options.js';
import { decodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';
import { ipToNumber } from '../../src/wire/ip.js';
import { Lab, have, waitForOutput, type Host } from '../helpers/netns.js';
import { fixture } from '../helpers/packets.js';
import { DISCOVER_FIXTURE, REQUEST_4011_FIXTURE, type Received } from '../helpers/pxe-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist/bin/pxe-pdhcp.js');
const CLIENT = join(ROOT, 'test/helpers/pxe-client-main.ts');

const ROUTER = { cidr: '10.77.0.1/24', mac: '02:00:00:77:00:01' };
const SERVER = { cidr: '10.77.0.2/24', mac: '02:00:00:77:00:02' };
const RELAY = { cidr: '10.77.0.9/24', mac: '02:00:00:77:00:09' };
const PXE_MAC = '02:00:00:77:00:10';
const PLAIN_MAC = '02:00:00:77:00:20';
const OUR_IP = '10.77.0.2';
const ROUTER_IP = '10.77.0.1';
const POOL = { first: '10.77.0.100', last: '10.77.0.150' };
const NBP = 'pxelinux.0';
/** Options that belong to the address server; a proxy reply never carries them (docs/dhcp-options.md#reply-options). */
const ADDRESS_OPTIONS = [1, 3, 6, 51, 58, 59];
/** `tcpdump -n -e` line: time, source MAC > destination MAC, ..., `: source IP.port > ...`. */
const SOURCE_LINE = /^\S+ ([0-9a-f:]{17}) > [0-9a-f:]{17}, ethertype IPv4 [^:]*: (\d+\.\d+\.\d+\.\d+)[.: ]/;
/**
 * That we send a plain client nothing has no event to wait for: after its lease (the positive
 * control), a wrong answer of ours, which would take milliseconds, gets this long to show up.
 */
const LATE_ANSWER_WINDOW_MS = 1000;

interface Step {
  step: string;
  received: Received[];
  xid?: number;
  address?: string;
  server?: string;
  error?: string;
}

interface Reply {
  from: string;
  local: number;
  length: number;
  p: DhcpPacket;
}

function replies(step: Step | undefined, xid = step?.xid): Reply[] {
  assert.ok(step, 'the client did not report this step');
  return step.received
    .map((r) => ({ from: r.from, local: r.local, length: r.hex.length / 2, p: decodeDhcp(Buffer.from(r.hex, 'hex')) }))
    .filter((r) => r.p.transactionId === xid);
}

const fromUs = (r: Reply): boolean => r.from.startsWith(`${OUR_IP}:`);
const fromRouter = (r: Reply): boolean => r.from.startsWith(`${ROUTER_IP}:`);

function inPool(ip: string): boolean {
  const n = ipToNumber(ip);
  return n >= ipToNumber(POOL.first) && n <= ipToNumber(POOL.last);
}

/** The fields every proxy reply of ours carries (docs/addressing.md#reply-header-fields, #the-port-4011-ack, docs/dhcp-options.md#reply-options). */
function assertProxyReply(p: DhcpPacket, requestFixture: string, type: number): void {
  const req = decodeDhcp(fixture(requestFixture));
  assert.equal(p.op, BootpOp.REPLY);
  assert.equal(p.hops, 0);
  assert.equal(p.yourIp, '0.0.0.0', 'yiaddr must be 0 in a proxy reply');
  assert.equal(p.nextServer, OUR_IP, 'siaddr');
  assert.equal(p.bootFile, NBP);
  assert.equal(p.clientHardware.subarray(0, 6).toString('hex'), PXE_MAC.replace(/:/g, ''));
  assert.equal(u8Option(p.options, DhcpOption.MESSAGE_TYPE), type);
  assert.equal(ipOption(p.options, DhcpOption.SERVER_ID), OUR_IP);
  assert.equal(p.options.get(DhcpOption.VENDOR_CLASS_ID)?.toString('latin1'), 'PXEClient');
  const uuid = req.options.get(DhcpOption.CLIENT_UUID);
  if (uuid) assert.deepEqual(p.options.get(DhcpOption.CLIENT_UUID), uuid, 'option 97 echoed');
  for (const code of ADDRESS_OPTIONS) assert.ok(!p.options.has(code), `option ${code} must not be sent`);
}

async function runClient(lab: Lab, host: Host, scenario: Record<string, unknown>): Promise<Map<string, Step>> {
  const child = lab.spawn(host.ns, process.execPath, ['--import', 'tsx', CLIENT, JSON.stringify(scenario)], {
    cwd: ROOT,
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const steps = new Map<string, Step>();
  for (const line of out.split('\n').filter(Boolean)) {
    const s = JSON.parse(line) as Step;
    steps.set(s.step, s);
  }
  const done = steps.get('done');
  assert.ok(done, `the PXE client ended without finishing:\n${err}`);
  assert.equal(done.error, undefined, `the PXE client failed: ${done.error}\n${err}`);
  return steps;
}

describe('pxe-pdhcp beside a home router, in network namespaces', () => {
  let lab: Lab;
  let daemon: ChildProcess;
  let daemonLog = '';
  let work: string;

  before(async () => {
    for (const tool of ['ip', 'dnsmasq', 'busybox', 'tcpdump']) {
      assert.ok(have(tool), `${tool} is not installed (Debian: iproute2, dnsmasq-base, busybox, tcpdump)`);
    }
    assert.ok(existsSync(MAIN), `${MAIN} is missing: run make build first`);
    work = mkdtempSync(join(tmpdir(), 'pxe-core-'));
    lab = await Lab.create('core');
    const router = await lab.addHost('router', ROUTER.cidr, ROUTER.mac);
    const server = await lab.addHost('server', SERVER.cidr, SERVER.mac);
    const dnsmasq = lab.spawn(router.ns, 'dnsmasq', [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--user=root',
      '--log-dhcp',
      `--dhcp-leasefile=${join(work, 'leases')}`,
      `--dhcp-range=${POOL.first},${POOL.last},255.255.255.0,1h`,
      `--dhcp-option=option:router,${ROUTER_IP}`,
    ]);
    await waitForOutput(dnsmasq, /DHCP, IP range/, 10_000);
    daemon = lab.spawn(server.ns, process.execPath, [MAIN, '-d', '-i', 'eth0', NBP], { cwd: ROOT });
    daemon.stderr?.on('data', (c: Buffer) => (daemonLog += c.toString()));
    daemon.stdout?.on('data', (c: Buffer) => (daemonLog += c.toString()));
    await waitForOutput(daemon, /listening/, 15_000);
  });

  after(async () => {
    await lab?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('a PXE client', () => {
    let steps: Map<string, Step>;
    before(async () => {
      const host = await lab.addHost('pxe', null, PXE_MAC);
      steps = await runClient(lab, host, { mode: 'pxe', mac: PXE_MAC });
    });

    for (const fw of ['bios', 'uefi'] as const) {
      it(`gets the router's address offer and our proxy offer for a ${fw} DISCOVER`, () => {
        const rs = replies(steps.get(`discover-${fw}`));
        const router = rs.filter(fromRouter);
        const ours = rs.filter(fromUs);
        assert.equal(router.length, 1, `one offer from the router, got ${router.length}`);
        assert.ok(inPool(router[0]!.p.yourIp), `router offers a pool address, got ${router[0]!.p.yourIp}`);
        assert.equal(ipOption(router[0]!.p.options, DhcpOption.ROUTER), ROUTER_IP);
        assert.equal(ours.length, 1, `one proxy offer from us, got ${ours.length}: ${daemonLog}`);
        const offer = ours[0]!;
        assert.equal(offer.from, `${OUR_IP}:67`);
        assert.equal(offer.local, 68);
        assert.ok(offer.length >= 300, `padded to 300 bytes, got ${offer.length}`);
        assert.equal(offer.p.clientIp, '0.0.0.0');
        assert.equal(offer.p.relayIp, '0.0.0.0');
        assert.ok(offer.p.flags & BROADCAST_FLAG, 'broadcast flag set (docs/addressing.md#reply-header-fields)');
        assertProxyReply(offer.p, DISCOVER_FIXTURE[fw], MessageType.OFFER);
        const vendor = offer.p.options.get(DhcpOption.VENDOR_SPECIFIC);
        const order = [...offer.p.options.keys()];
        if (fw === 'bios') {
          assert.equal(vendor?.toString('hex'), '060108ff', 'BIOS: option 43 = discovery control 8');
          assert.deepEqual(order, [53, 54, 60, 97, 43]);
        } else {
          assert.equal(vendor, undefined, 'UEFI (BINL shape): no option 43');
          assert.deepEqual(order, [53, 54, 60, 97]);
        }
      });
    }

    it("takes the router's address; its REQUEST on port 67 gets nothing from us", () => {
      const step = steps.get('request-67');
      const rs = replies(step);
      const ack = rs.filter(fromRouter).find((r) => u8Option(r.p.options, DhcpOption.MESSAGE_TYPE) === MessageType.ACK);
      assert.ok(ack, 'the router acknowledges the address');
      assert.ok(step?.address && inPool(step.address));
      assert.deepEqual(rs.filter(fromUs), [], 'we ignore REQUESTs on port 67');
    });

    for (const [who, port] of [
      ['ipxe', 68],
      ['edk2', 4011],
    ] as const) {
      it(`gets our 4011 ACK from port 4011 back to port ${port} (${who} style)`, () => {
        const step = steps.get(`request-4011-${who}`);
        const rs = replies(step);
        assert.equal(rs.length, 1, `exactly one reply, got ${rs.length}: ${daemonLog}`);
        const ack = rs[0]!;
        assert.equal(ack.from, `${OUR_IP}:4011`, 'sent from port 4011');
        assert.equal(ack.local, port, `sent to the requester's port ${port}`);
        assert.equal(ack.p.clientIp, step?.address, 'ciaddr copied');
        assertProxyReply(ack.p, REQUEST_4011_FIXTURE[who], MessageType.ACK);
        if (who === 'edk2') assert.ok(!ack.p.options.has(DhcpOption.VENDOR_SPECIFIC), 'UEFI 4011 ACK: no option 43');
      });
    }
  });

  it('answers a relayed DISCOVER by unicast to giaddr:67', async () => {
    const host = await lab.addHost('relay', RELAY.cidr, RELAY.mac);
    const giaddr = host.address;
    const steps = await runClient(lab, host, { mode: 'relay', mac: PXE_MAC, server: OUR_IP, giaddr });
    const rs = replies(steps.get('relay-discover'));
    assert.equal(rs.length, 1, `one reply, got ${rs.length}: ${daemonLog}`);
    const r = rs[0]!;
    assert.equal(r.from, `${OUR_IP}:67`);
    assert.equal(r.local, 67, 'delivered to the relay port 67, not broadcast to 68');
    assert.equal(r.p.relayIp, giaddr, 'giaddr kept in the reply');
    assert.equal(r.p.yourIp, '0.0.0.0');
    assertProxyReply(r.p, DISCOVER_FIXTURE.bios, MessageType.OFFER);
  });

  it('leaves an ordinary DHCP client alone: busybox udhcpc gets its lease from the router only', async () => {
    const host = await lab.addHost('plain', null, PLAIN_MAC);
    const pcap = join(work, 'plain.pcap');
    const dump = lab.spawn(host.ns, 'tcpdump', ['-i', 'eth0', '-n', '-U', '-Z', 'root', '-w', pcap, 'ip']);
    await waitForOutput(dump, /listening on/, 10_000);
    const dhcp = await lab.exec(
      host.ns,
      'busybox',
      ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-s', '/bin/true', '-T', '1', '-t', '5'],
      30_000,
    );
    assert.equal(dhcp.code, 0, `udhcpc failed: ${dhcp.stderr}`);
    assert.match(
      dhcp.stderr + dhcp.stdout,
      new RegExp(`lease of 10\\.77\\.0\\.\\d+ obtained from ${ROUTER_IP.replace(/\./g, '\\.')}`),
    );
    await new Promise((r) => setTimeout(r, LATE_ANSWER_WINDOW_MS));
    await lab.stop(dump);
    const read = await lab.exec(host.ns, 'tcpdump', ['-r', pcap, '-n', '-e']);
    const sources = read.stdout
      .split('\n')
      .map((l) => SOURCE_LINE.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ mac: m[1]!, ip: m[2]! }));
    assert.ok(
      sources.some((s) => s.mac === ROUTER.mac && s.ip === ROUTER_IP),
      `the capture saw the router:\n${read.stdout}${read.stderr}`,
    );
    const ours = sources.filter((s) => s.mac === SERVER.mac || s.ip === OUR_IP);
    assert.deepEqual(ours, [], 'no packet from our address or MAC reached the plain client');
  });
});
