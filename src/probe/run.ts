import { randomInt } from 'node:crypto';
import { archName } from '../wire/arch.js';
import { DhcpOption, DhcpPort, MessageType } from '../wire/dhcp-constants.js';
import { u8Option } from '../wire/dhcp-options.js';
import { isIPv4, macToString } from '../wire/ip.js';
import { borrowAddress } from './address.js';
import { planBoot, summarizeOffer, type BootPlan, type OfferSummary } from './analyze.js';
import {
  buildBootRequest,
  buildDiscover,
  buildRelease,
  buildRequest,
  firmwareOf,
  type Firmware,
  type ProbeIdentity,
} from './client-packets.js';
import { linkOf } from '../net/interfaces.js';
import { openDhcpChannel, type DhcpChannel, type Received } from './dhcp-channel.js';
import { diagnose, type Finding } from './diagnose.js';
import { fetchBoot, type FetchReport } from './fetch.js';
import { fetchHttpBoot } from './http-fetch.js';
import { readStatus, type StatusReport } from './status.js';

/** An undo step; runs at most once. */
export type Undo = () => Promise<void>;

function once(step: Undo): Undo {
  let done: Promise<void> | undefined;
  return () => (done ??= step());
}

export interface ProbeOptions extends ProbeIdentity {
  iface: string;
  fetch: boolean;
  /** How long offers are collected; also bounds the other waits. */
  timeoutMs: number;
  /** TFTP blksize and windowsize asked for the boot file, kernel and initrd. */
  blksize?: number;
  windowsize: number;
  /** `--status`: the daemon's metrics listener (or its `/status` page), read once the files are fetched. */
  statusUrl?: string;
}

/** The answer the firmware ends up booting. */
export interface FinalAnswer {
  nextServer: string;
  file: string;
  /** Which server's packet it came from. */
  from: string;
}

export interface ProbeResult {
  interface: string;
  mac: string;
  arch: number;
  archName: string;
  firmware: Firmware;
  offers: OfferSummary[];
  lease?: { address: string; server: string; subnetMask?: string; acked: boolean; answer: string };
  plan: BootPlan;
  bootRequest?: { target: string; answered: boolean; sourcePort?: number; reply?: OfferSummary };
  final?: FinalAnswer;
  fetch?: FetchReport;
  /** With `--status`: what the daemon says decided this client's answer (and, in `fetch`, where its TFTP files came from). */
  status?: StatusReport;
  released: boolean;
  findings: Finding[];
  /** Exit status 0: a lease, a boot file, and (with --fetch) every download. */
  ok: boolean;
}

const xid = (): number => randomInt(1, 0xffffffff);
const type = (r: Received): number | undefined => u8Option(r.packet.options, DhcpOption.MESSAGE_TYPE);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Broadcast DISCOVER, repeat it at 1 and 3 s while nobody answers (as iPXE does), keep one reply per server. */
async function discover(ch: DhcpChannel, o: ProbeOptions, id: number): Promise<Received[]> {
  let count = 0;
  const match = (r: Received): boolean => {
    const ok = r.packet.transactionId === id && type(r) === MessageType.OFFER;
    if (ok) count++;
    return ok;
  };
  const pending = ch.collect(match, o.timeoutMs);
  await ch.send(buildDiscover(o, id), '255.255.255.255', DhcpPort.SERVER);
  let waited = 0;
  for (const gap of [1000, 2000]) {
    if (waited + gap >= o.timeoutMs) break;
    await sleep(gap);
    waited += gap;
    if (count === 0) await ch.send(buildDiscover(o, id), '255.255.255.255', DhcpPort.SERVER);
  }
  const seen = new Set<string>();
  return (await pending).filter((r) => !seen.has(r.from.address) && seen.add(r.from.address));
}

/** REQUEST/ACK for the router's offer (RFC 2131 §4.3.2). */
async function takeLease(
  ch: DhcpChannel,
  o: ProbeOptions,
  id: number,
  offer: OfferSummary,
): Promise<ProbeResult['lease']> {
  const match = (r: Received): boolean =>
    r.packet.transactionId === id && (type(r) === MessageType.ACK || type(r) === MessageType.NAK);
  for (let tries = 0; tries < 3; tries++) {
    await ch.send(buildRequest(o, id, offer.server, offer.yourIp), '255.255.255.255', DhcpPort.SERVER);
    const r = await ch.first(match, 1500);
    if (!r) continue;
    const acked = type(r) === MessageType.ACK;
    const ack = summarizeOffer(r.packet, r.from);
    return {
      address: offer.yourIp,
      server: offer.server,
      ...((ack.subnetMask ?? offer.subnetMask) ? { subnetMask: ack.subnetMask ?? offer.subnetMask! } : {}),
      acked,
      answer: acked ? 'ACK' : 'NAK',
    };
  }
  return { address: offer.yourIp, server: offer.server, acked: false, answer: 'none' };
}

/** The port 4011 request (docs/addressing.md#port-4011-requests), with EDK2's growing waits. */
async function askBootServer(
  ch: DhcpChannel,
  o: ProbeOptions,
  plan: Extract<BootPlan, { kind: 'ask-4011' }>,
  clientIp: string,
): Promise<ProbeResult['bootRequest']> {
  const id = xid();
  const req = buildBootRequest(o, id, {
    clientIp,
    serverId: plan.via.server,
    ...(plan.bootItemType !== undefined ? { bootItemType: plan.bootItemType } : {}),
  });
  const match = (r: Received): boolean => r.packet.transactionId === id && r.from.address === plan.target;
  for (const wait of [1000, 2000, 2000]) {
    await ch.send(req, plan.target, DhcpPort.PROXY);
    const r = await ch.first(match, wait);
    if (r)
      return {
        target: plan.target,
        answered: true,
        sourcePort: r.from.port,
        reply: summarizeOffer(r.packet, r.from, o.uuid && Buffer.concat([Buffer.of(0), o.uuid])),
      };
  }
  return { target: plan.target, answered: false };
}

function finalOf(res: ProbeResult): FinalAnswer | undefined {
  if (res.plan.kind === 'direct')
    return { nextServer: res.plan.nextServer, file: res.plan.file, from: res.plan.via.server };
  const reply = res.bootRequest?.reply;
  if (reply?.bootFile)
    return {
      nextServer: reply.nextServer !== '0.0.0.0' ? reply.nextServer : reply.server,
      file: reply.bootFile,
      from: reply.server,
    };
  return undefined;
}

/** Where to fetch from: siaddr, else option 66 when it is an address, else the answering server. */
function tftpServerOf(res: ProbeResult): string {
  const f = res.final!;
  if (f.nextServer !== '0.0.0.0') return f.nextServer;
  const named = res.offers.find((x) => x.server === f.from)?.tftpServerName;
  return named && isIPv4(named) ? named : f.from;
}

/**
 * Act as a PXE client on `o.iface`: DISCOVER, collect offers, take the lease, ask port 4011 when
 * the offer calls for it, optionally fetch over TFTP, then release. Always undoes what it did.
 * `undo` collects the steps that give back what the probe took (run in order, each once), so a
 * signal handler can run them too.
 * @throws UserError when the interface or port 68 cannot be used
 */
export async function runProbe(o: ProbeOptions, undo: Undo[] = []): Promise<ProbeResult> {
  const link = linkOf(o.iface);
  const ch = await openDhcpChannel({ name: o.iface, index: link.index });
  const sentUuid = o.uuid && Buffer.concat([Buffer.of(0), o.uuid]);
  const res: ProbeResult = {
    interface: o.iface,
    mac: macToString(o.mac),
    arch: o.arch,
    archName: archName(o.arch),
    firmware: firmwareOf(o),
    offers: [],
    plan: { kind: 'none', reason: 'no offers' },
    released: false,
    findings: [],
    ok: false,
  };
  try {
    const id = xid();
    res.offers = (await discover(ch, o, id)).map((r) => summarizeOffer(r.packet, r.from, sentUuid));
    res.plan = planBoot(res.offers, res.firmware);
    const offer = res.offers.find((x) => x.kind === 'address');
    if (offer) res.lease = await takeLease(ch, o, id, offer);
    if (res.lease?.acked) {
      const giveBack = await borrowAddress(o.iface, res.lease.address, res.lease.subnetMask);
      if (giveBack) undo.push(once(giveBack));
      const lease = res.lease;
      undo.unshift(
        once(async () => {
          await ch.send(buildRelease(o, xid(), lease.server, lease.address), lease.server, DhcpPort.SERVER).then(
            () => (res.released = true),
            () => undefined,
          );
        }),
      );
      if (res.plan.kind === 'ask-4011') res.bootRequest = await askBootServer(ch, o, res.plan, lease.address);
    }
    const final = finalOf(res);
    if (final) res.final = final;
    if (o.fetch && res.final && res.lease?.acked && /^http:\/\//i.test(res.final.file)) {
      // iPXE given a script URL, or UEFI HTTP Boot: the boot file comes over HTTP.
      res.fetch = await fetchHttpBoot(res.final.file);
    } else if (o.fetch && res.final && res.lease?.acked) {
      res.fetch = await fetchBoot({
        server: tftpServerOf(res),
        bootFile: res.final.file,
        mac: o.mac,
        clientIp: res.lease.address,
        ...(o.uuid ? { uuid: o.uuid } : {}),
        arch: o.arch,
        blksize: o.blksize ?? link.mtu - 32,
        windowsize: o.windowsize,
      });
    }
    // Before the borrowed address goes: the status page may be on this LAN.
    if (o.statusUrl) {
      const who = { mac: res.mac, ...(res.lease?.acked ? { ip: res.lease.address } : {}) };
      res.status = await readStatus(o.statusUrl, who, res.fetch?.transfers ?? []);
    }
  } finally {
    for (const step of undo) await step();
    await ch.close();
  }
  res.ok = Boolean(res.lease?.acked && res.final && (!o.fetch || res.fetch?.ok));
  res.findings = diagnose(res);
  return res;
}
