import type { Socket } from 'node:dgram';
import { Agent, get } from 'node:http';
import { buildBootRequest, buildDiscover, firmwareOf, type ProbeIdentity } from '../../src/probe/client-packets.js';
import { planBoot, summarizeOffer } from '../../src/probe/analyze.js';
import { DhcpOption, MessageType } from '../../src/wire/dhcp-constants.js';
import { u8Option } from '../../src/wire/dhcp-options.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../src/wire/dhcp-packet.js';
import { tftpGet, type TftpStats } from './tftp-get.js';

/** One simulated machine of the storm. */
export interface MachineSpec {
  index: number;
  mac: string;
  /** Its own address on the client veth (taken statically: no DHCP server in a storm). */
  ip: string;
  kind: 'bios' | 'uefi';
  /** BIOS ROMs: 1432 (Intel-like) or undefined (a plain RFC 1350 request, 512-byte blocks). */
  nbpBlksize?: number;
  /** Milliseconds after the storm's start that it is switched on. */
  powerOnMs: number;
}

export interface StormFiles {
  kernel: { name: string; size: number };
  initrd: { name: string; size: number };
  /** Expected NBP sizes by name (whatever file the proxy names). */
  nbps: Record<string, number>;
}

export interface MachineResult {
  index: number;
  kind: 'bios' | 'uefi';
  ok: boolean;
  error?: string;
  /** Seconds from power-on: proxy answer, boot answer (4011 or the offer), NBP loaded, kernel+initrd loaded. */
  offerAt?: number;
  bootAt?: number;
  nbpAt?: number;
  doneAt?: number;
  discovers: number;
  requests4011: number;
  tftp: TftpStats;
  httpRetries: number;
}

/** The one DHCP socket (0.0.0.0:68 on the client link): replies are handed out by xid. */
export class DhcpMux {
  readonly #waiters = new Map<number, (p: DhcpPacket, from: { address: string; port: number }) => void>();
  constructor(readonly socket: Socket) {
    socket.on('message', (msg, from) => {
      let p: DhcpPacket;
      try {
        p = decodeDhcp(msg);
      } catch {
        return;
      }
      this.#waiters.get(p.transactionId)?.(p, from);
    });
  }

  /** Send `bytes` at each delay of `schedule` (ms) until `accept` takes a reply; null when none did. */
  async exchange(
    xid: number,
    bytes: Buffer,
    to: { address: string; port: number },
    schedule: readonly number[],
    accept: (p: DhcpPacket, from: { address: string; port: number }) => boolean,
    onSend: () => void,
  ): Promise<{ p: DhcpPacket; from: { address: string; port: number } } | null> {
    try {
      for (const wait of schedule) {
        const got = new Promise<{ p: DhcpPacket; from: { address: string; port: number } } | null>((resolve) => {
          const timer = setTimeout(() => resolve(null), wait);
          this.#waiters.set(xid, (p, from) => {
            if (!accept(p, from)) return;
            clearTimeout(timer);
            resolve({ p, from });
          });
        });
        onSend();
        this.socket.send(bytes, to.port, to.address);
        const r = await got;
        if (r) return r;
      }
      return null;
    } finally {
      this.#waiters.delete(xid);
    }
  }
}

/** PXE 2.1 §2.2.1: DISCOVER at 4, 8, 16 and 32 s. 4011 REQUESTs: the same for a boot server. */
const DISCOVER_SCHEDULE = [4000, 8000, 16000, 32000];
const REQUEST_SCHEDULE = [4000, 8000, 16000];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function httpGet(url: string, local: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent, localAddress: local }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${url}: HTTP ${res.statusCode}`));
      }
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${url}: 30 s without data`)));
    req.on('error', reject);
  });
}

/** Boot one machine: DHCP (proxy), maybe 4011, the NBP, then kernel and initrd. Never throws. */
export async function boot(
  m: MachineSpec,
  mux: DhcpMux,
  files: StormFiles,
  via: 'tftp' | 'http',
  t0: number,
  httpPort: number,
): Promise<MachineResult> {
  const stats: TftpStats = { requestRetries: 0, busy: 0, timeouts: 0, duplicates: 0 };
  const r: MachineResult = {
    index: m.index,
    kind: m.kind,
    ok: false,
    discovers: 0,
    requests4011: 0,
    tftp: stats,
    httpRetries: 0,
  };
  await sleep(Math.max(0, t0 + m.powerOnMs - performance.now()));
  const on = performance.now();
  const since = (): number => Number(((performance.now() - on) / 1000).toFixed(3));
  const mac = Buffer.from(m.mac.replace(/:/g, ''), 'hex');
  const id: ProbeIdentity = { mac, arch: m.kind === 'uefi' ? 7 : 0, uuid: Buffer.alloc(16, m.index & 0xff) };
  const fw = firmwareOf(id);
  try {
    const xid = (0x5a000000 + m.index * 16) >>> 0;
    const offer = await mux.exchange(
      xid,
      encodeDhcp(buildDiscover(id, xid)),
      { address: '255.255.255.255', port: 67 },
      DISCOVER_SCHEDULE,
      (p) =>
        u8Option(p.options, DhcpOption.MESSAGE_TYPE) === MessageType.OFFER &&
        p.clientHardware.subarray(0, 6).equals(mac),
      () => r.discovers++,
    );
    if (!offer) throw new Error('no proxy offer after 4 DISCOVERs');
    r.offerAt = since();
    const plan = planBoot([summarizeOffer(offer.p, offer.from)], fw);
    let server: string;
    let file: string;
    if (plan.kind === 'none') throw new Error(`no boot plan: ${plan.reason}`);
    if (plan.kind === 'direct') {
      server = plan.nextServer !== '0.0.0.0' ? plan.nextServer : plan.via.server;
      file = plan.file;
    } else {
      const xid2 = xid + 1;
      const ack = await mux.exchange(
        xid2,
        encodeDhcp(
          buildBootRequest(id, xid2, {
            clientIp: m.ip,
            serverId: plan.via.server,
            ...(plan.bootItemType !== undefined ? { bootItemType: plan.bootItemType } : {}),
          }),
        ),
        { address: plan.target, port: 4011 },
        REQUEST_SCHEDULE,
        (p) => u8Option(p.options, DhcpOption.MESSAGE_TYPE) === MessageType.ACK,
        () => r.requests4011++,
      );
      if (!ack) throw new Error(`no answer from ${plan.target}:4011`);
      const s = summarizeOffer(ack.p, ack.from);
      server = s.nextServer !== '0.0.0.0' ? s.nextServer : s.server;
      file = s.bootFile;
      if (!file) throw new Error('the 4011 answer names no boot file');
    }
    r.bootAt = since();
    // The NBP as firmware reads it: EDK2 probes the size first, then reads windowed; ROMs lockstep.
    const nbp =
      m.kind === 'uefi'
        ? (await tftpGet({ server, local: m.ip, file, blksize: 1468, probeOnly: true }, stats),
          await tftpGet({ server, local: m.ip, file, blksize: 1468, windowsize: 4 }, stats))
        : await tftpGet(
            { server, local: m.ip, file, ...(m.nbpBlksize ? { blksize: m.nbpBlksize, tsize: true } : {}) },
            stats,
          );
    const want = files.nbps[file];
    if (want !== undefined && nbp.bytes !== want) throw new Error(`${file}: ${nbp.bytes} bytes, expected ${want}`);
    r.nbpAt = since();
    for (const f of [files.kernel, files.initrd]) {
      let got: number;
      if (via === 'tftp') {
        got = (
          await tftpGet(
            {
              server,
              local: m.ip,
              file: f.name,
              blksize: 1468,
              tsize: true,
              ...(m.kind === 'uefi' ? { windowsize: 8 } : {}),
            },
            stats,
          )
        ).bytes;
      } else {
        const agent = new Agent({ keepAlive: false, maxSockets: 1 });
        got = -1;
        for (let attempt = 0; attempt < 4 && got < 0; attempt++) {
          try {
            got = await httpGet(`http://${server}:${httpPort}/${f.name}`, m.ip, agent);
          } catch (err) {
            if (attempt === 3) throw err;
            r.httpRetries++;
            await sleep(1000 << attempt);
          }
        }
        agent.destroy();
      }
      if (got !== f.size) throw new Error(`${f.name}: ${got} bytes, expected ${f.size}`);
    }
    r.doneAt = since();
    r.ok = true;
  } catch (err) {
    r.error = err instanceof Error ? err.message : String(err);
  }
  return r;
}
