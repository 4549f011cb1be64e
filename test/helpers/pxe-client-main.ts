/**
 * The PXE client of the namespace tests, run inside the client's namespace:
 *   node --import tsx test/helpers/pxe-client-main.ts '<json scenario>'
 * It prints one JSON line per step ({ step, received, ... }); the test decodes and judges them.
 *
 * Scenarios:
 * - `{ "mode": "pxe", "mac": ... }`: DISCOVER as BIOS and as UEFI firmware and collect the offers
 *   of both servers; take the router's address (REQUEST/ACK) and put it on eth0; then ask the proxy
 *   on port 4011 from port 68 (iPXE, legacy ROMs) and from port 4011 (EDK2).
 * - `{ "mode": "relay", "mac": ..., "server": ..., "giaddr": ... }`: act as a relay agent: send a
 *   DISCOVER carrying giaddr straight to the server's port 67 and listen on 67 and 68.
 */
import { execFileSync } from 'node:child_process';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { ipOption } from '../../src/wire/dhcp-options.js';
import type { DhcpPacket } from '../../src/wire/dhcp-packet.js';
import { ipToNumber } from '../../src/wire/ip.js';
import {
  answering,
  discover,
  Endpoint,
  request4011,
  REQUESTER_PORT,
  selectRequest,
  typeOf,
  type Firmware,
  type Received,
} from './pxe-client.js';

interface Scenario {
  mode: 'pxe' | 'relay';
  mac: string;
  iface?: string;
  server?: string;
  giaddr?: string;
}

const BROADCAST = '255.255.255.255';
/** Long enough for dnsmasq, which may probe an address with ping before offering it. */
const OFFER_WAIT_MS = 8000;
/** After the awaited replies, how long we keep listening for replies that should not come. */
const SETTLE_MS = 500;

let nextXid = 0x5e000001;

function emit(step: string, received: Received[], extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ step, received, ...extra })}\n`);
}

const isProxy = (p: DhcpPacket): boolean => p.yourIp === '0.0.0.0';
const isAddressOffer = (p: DhcpPacket): boolean => p.yourIp !== '0.0.0.0';

/** Collect for `xid` until `enough` holds (or the wait ends), then a little longer. */
async function exchange(
  ep: Endpoint,
  xid: number,
  enough: (ps: DhcpPacket[]) => boolean,
  ms = OFFER_WAIT_MS,
): Promise<Received[]> {
  await ep.collect((r) => enough(answering(r, xid)), ms);
  await ep.collect(() => false, SETTLE_MS);
  return [...ep.received];
}

function prefixLength(mask: string): number {
  return ipToNumber(mask).toString(2).replace(/0/g, '').length;
}

async function pxe(s: Scenario): Promise<void> {
  const iface = s.iface ?? 'eth0';
  const ep68 = await Endpoint.open(68, iface);
  let routerOffer: DhcpPacket | undefined;
  let proxyServer: string | undefined;
  for (const fw of ['bios', 'uefi'] as Firmware[]) {
    const xid = nextXid++;
    ep68.clear();
    await ep68.send(discover(fw, s.mac, xid), 67, BROADCAST);
    const got = await exchange(ep68, xid, (ps) => ps.some(isProxy) && ps.some(isAddressOffer));
    emit(`discover-${fw}`, got, { xid });
    const ps = answering(got, xid);
    routerOffer ??= ps.find(isAddressOffer);
    proxyServer ??= ps.filter(isProxy).map((p) => ipOption(p.options, DhcpOption.SERVER_ID))[0];
  }
  if (!routerOffer || !proxyServer) {
    emit('done', [], { error: 'no address offer or no proxy offer' });
    return;
  }

  const xid = nextXid++;
  ep68.clear();
  await ep68.send(selectRequest('bios', s.mac, xid, routerOffer), 67, BROADCAST);
  const acked = await exchange(ep68, xid, (ps) => ps.some((p) => typeOf(p) === MessageType.ACK));
  const ack = answering(acked, xid).find((p) => typeOf(p) === MessageType.ACK && isAddressOffer(p));
  const mask = ack && ipOption(ack.options, DhcpOption.SUBNET_MASK);
  emit('request-67', acked, { xid, ...(ack ? { address: ack.yourIp } : {}) });
  if (!ack || !mask) {
    emit('done', [], { error: 'the router did not acknowledge the address' });
    return;
  }
  execFileSync('ip', ['addr', 'add', `${ack.yourIp}/${prefixLength(mask)}`, 'dev', iface]);

  const ep4011 = await Endpoint.open(4011, iface);
  for (const who of ['ipxe', 'edk2'] as const) {
    const ep = REQUESTER_PORT[who] === 68 ? ep68 : ep4011;
    const x = nextXid++;
    ep68.clear();
    ep4011.clear();
    await ep.send(request4011(who, s.mac, x, ack.yourIp, proxyServer), 4011, proxyServer);
    await exchange(ep, x, (ps) => ps.length > 0, 3000);
    emit(`request-4011-${who}`, [...ep68.received, ...ep4011.received], {
      xid: x,
      server: proxyServer,
      address: ack.yourIp,
    });
  }
  ep68.close();
  ep4011.close();
  emit('done', []);
}

async function relay(s: Scenario): Promise<void> {
  const iface = s.iface ?? 'eth0';
  const ep67 = await Endpoint.open(67, iface);
  const ep68 = await Endpoint.open(68, iface);
  const xid = nextXid++;
  await ep67.send(discover('bios', s.mac, xid, s.giaddr), 67, s.server!);
  await exchange(ep67, xid, (ps) => ps.length > 0, 3000);
  emit('relay-discover', [...ep67.received, ...ep68.received], { xid });
  ep67.close();
  ep68.close();
  emit('done', []);
}

const scenario = JSON.parse(process.argv[2] ?? '{}') as Scenario;
try {
  await (scenario.mode === 'relay' ? relay(scenario) : pxe(scenario));
} catch (err) {
  emit('done', [], { error: (err as Error).message });
  process.exitCode = 1;
}
