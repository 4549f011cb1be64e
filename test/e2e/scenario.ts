import { join } from 'node:path';
import { Capture, isRequestFor, summarize, type Frame } from './capture.js';
import { qemuCommand, type ClientSpec } from './clients.js';
import { NET } from './tftproot.js';
import { MAC, type Lan } from './topology.js';
import { Transcript } from './transcript.js';

/**
 * A client boots in 15-40 s here; this is generous, since other tests share the 2-core machine and
 * QEMU runs without KVM, yet keeps a failing `make e2e` near 12 minutes.
 */
export const CLIENT_TIMEOUT_MS = 200_000;
/** After the marker, the last files may still be in flight (BIOS: ipxe.lkrn's own fetch). */
const FILES_TIMEOUT_MS = 20_000;

/** Everything one client's boot left behind, for checks, timings and failure output. */
export interface BootRun {
  spec: ClientSpec;
  /** Wall clock (ms) when QEMU was started. */
  t0: number;
  console: Transcript;
  /** Index of the first daemon log line of this boot. */
  logFrom: number;
  frames: Frame[];
  /** Wall clock (ms) when the marker appeared on the serial console. */
  markerAt?: number;
  /** Why waiting failed (marker or files), if it did. */
  waitError?: string;
}

/** Our TFTP log line for a finished transfer of `file`. */
function completeLine(file: string): RegExp {
  return new RegExp(`TFTP transfer complete .*\\bfile=${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(\\s|$)`);
}

/**
 * Boot one QEMU client on the LAN, capturing the bridge: wait for its marker on the serial console,
 * then for every expected file to be complete in our TFTP log; then stop QEMU and the capture.
 */
export async function bootClient(lan: Lan, spec: ClientSpec, echo?: (line: string) => void): Promise<BootRun> {
  const capture = await Capture.start(lan, join(lan.opts.work, `${spec.name}.pcapng`));
  const logFrom = lan.daemon.lines.length;
  const t0 = Date.now();
  const qemu = lan.spawn(lan.client.ns, spec.qemu, qemuCommand(spec, lan.opts.work));
  const console = new Transcript(`${spec.name} console`, qemu, echo);
  let waitError: string | undefined;
  let markerAt: number | undefined;
  try {
    markerAt = (await console.waitFor(new RegExp(spec.marker), CLIENT_TIMEOUT_MS)).at;
    const rest = Math.max(FILES_TIMEOUT_MS, CLIENT_TIMEOUT_MS - (Date.now() - t0));
    await Promise.all(spec.files.map((f) => lan.daemon.waitFor(completeLine(f), rest, logFrom)));
    const last = spec.files[spec.files.length - 1]!;
    if (!(await capture.waitFor((f) => isRequestFor(f, last), 15_000)))
      waitError = `the capture never showed the request for ${last}`;
  } catch (err) {
    waitError = (err as Error).message;
  } finally {
    await lan.stop(qemu);
    await capture.stop();
  }
  return {
    spec,
    t0,
    console,
    logFrom,
    frames: await capture.frames(),
    ...(markerAt !== undefined ? { markerAt } : {}),
    ...(waitError ? { waitError } : {}),
  };
}

/** Files our TFTP server sent completely during this boot, in order. */
export function filesSent(lan: Lan, run: BootRun): string[] {
  return lan.daemon.matching(/TFTP transfer complete/, run.logFrom).map((l) => /\bfile=(\S+)/.exec(l.text)?.[1] ?? '?');
}

const isOurs = (f: Frame): boolean => f.ipSrc === NET.server;
const isRouter = (f: Frame): boolean => f.ipSrc === NET.router;

/**
 * What went wrong with one boot, as sentences; empty when the client passed: marker, files in our
 * TFTP log, and the DHCP exchange in the capture (docs/addressing.md).
 */
export function problems(lan: Lan, run: BootRun): string[] {
  const { spec, frames } = run;
  const out: string[] = [];
  if (run.waitError) out.push(run.waitError);
  const sent = filesSent(lan, run);
  for (const f of spec.files) if (!sent.includes(f)) out.push(`our TFTP log shows no complete transfer of ${f}`);
  const dhcp = frames.filter((f) => f.dhcp?.chaddr === spec.mac);
  const discover = dhcp.find((f) => f.dhcp!.type === 'DISCOVER');
  if (!discover) return [...out, `no DHCPDISCOVER from ${spec.mac} in the capture`];
  const same = (f: Frame): boolean => f.dhcp!.xid === discover.dhcp!.xid;
  const ourOffer = dhcp.find((f) => isOurs(f) && same(f) && f.dhcp!.type === 'OFFER');
  if (!ourOffer) out.push('no proxy DHCPOFFER from us for the first DISCOVER');
  else {
    if (ourOffer.dhcp!.yiaddr !== '0.0.0.0') out.push(`our OFFER carries yiaddr ${ourOffer.dhcp!.yiaddr}`);
    if (ourOffer.dhcp!.file !== spec.bootFile)
      out.push(`our OFFER names "${ourOffer.dhcp!.file}", not ${spec.bootFile}`);
  }
  if (!dhcp.some((f) => isRouter(f) && same(f) && f.dhcp!.type === 'OFFER' && f.dhcp!.yiaddr !== '0.0.0.0')) {
    out.push('no address OFFER from the router (dnsmasq) for the first DISCOVER');
  }
  if (!dhcp.some((f) => isRouter(f) && f.dhcp!.type === 'ACK' && f.dhcp!.yiaddr !== '0.0.0.0')) {
    out.push('the client never got its address ACK from the router');
  }
  if (dhcp.some((f) => isOurs(f) && f.srcPort === 67 && f.dhcp!.type !== 'OFFER')) {
    out.push('we answered something other than a DISCOVER on port 67');
  }
  const ack4011 = dhcp.find((f) => isOurs(f) && f.srcPort === 4011 && f.dhcp!.type === 'ACK');
  if (spec.uses4011 && !ack4011) out.push('no DHCPACK from us on port 4011 (UEFI BINL path)');
  if (spec.uses4011 && ack4011 && ack4011.dhcp!.file !== spec.bootFile) {
    out.push(`our 4011 ACK names "${ack4011.dhcp!.file}", not ${spec.bootFile}`);
  }
  if (!spec.uses4011 && dhcp.some((f) => f.dstPort === 4011))
    out.push('the client went to port 4011, but the offer was bypass-shaped');
  if (spec.name === 'ipxe') out.push(...ipxeProblems(dhcp, sent), ...httpProblems(lan, run));
  return out;
}

/** Paths our HTTP server answered with 200 during this boot, in order. */
export function httpServed(lan: Lan, run: BootRun): string[] {
  return lan.daemon
    .matching(/\bHTTP .*\bstatus=200\b/, run.logFrom)
    .map((l) => /\bpath="?([^"\s]+)/.exec(l.text)?.[1] ?? '?'); // quoted when it holds '='
}

/** The iPXE client's script, kernel and initrd came over HTTP, whole. */
function httpProblems(lan: Lan, run: BootRun): string[] {
  const served = httpServed(lan, run);
  const out: string[] = [];
  if (!served.some((p) => p.startsWith('/pxe-pdhcp/boot/'))) out.push('our HTTP log shows no generated iPXE script');
  for (const f of ['/boot.ipxe', '/initrd.bin']) {
    if (!served.includes(f)) out.push(`our HTTP log shows no complete GET of ${f}`);
  }
  return out;
}

/** iPXE chainload: the second round (user class iPXE) gets a script URL, and ipxe.efi is sent once. */
function ipxeProblems(dhcp: Frame[], sent: string[]): string[] {
  const out: string[] = [];
  const again = dhcp.find((f) => f.dhcp!.type === 'DISCOVER' && f.dhcp!.userClass === 'iPXE');
  if (!again) return ['no DHCPDISCOVER with user class iPXE: ipxe.efi did not start'];
  const offer = dhcp.find((f) => isOurs(f) && f.dhcp!.type === 'OFFER' && f.dhcp!.xid === again.dhcp!.xid);
  if (!/^http:\/\/[\d.]+\/pxe-pdhcp\/boot\//.test(offer?.dhcp!.file ?? ''))
    out.push(`iPXE's DISCOVER got "${offer?.dhcp!.file ?? 'no offer'}" from us, not a script URL on our HTTP server`);
  const n = sent.filter((f) => f === 'ipxe.efi').length;
  if (n !== 1) out.push(`ipxe.efi was sent ${n} times (the chainload loop is not broken)`);
  return out;
}

/** Boot-time and answer-delay figures of one run. */
export interface Timings {
  /** Seconds from QEMU start to the first TFTP request for the boot file. */
  toBootFile: number | undefined;
  /** One entry per client DHCP packet: what it was and how fast we (or only the router) answered. */
  answers: { at: number; what: string; ourDelayMs?: number; routerDelayMs?: number }[];
}

export function timings(run: BootRun): Timings {
  const { frames, spec, t0 } = run;
  const rrq = frames.find((f) => isRequestFor(f, spec.bootFile));
  const used = new Set<Frame>();
  const replyTo = (req: Frame, by: (f: Frame) => boolean): number | undefined => {
    const r = frames.find(
      (f) => !used.has(f) && f.at >= req.at && f.dhcp?.op === 2 && f.dhcp.xid === req.dhcp!.xid && by(f),
    );
    if (!r) return undefined;
    used.add(r);
    return r.at - req.at;
  };
  const answers = frames
    .filter((f) => f.dhcp?.op === 1 && f.dhcp.chaddr === spec.mac)
    .map((req) => {
      const ours = replyTo(req, isOurs);
      const router = replyTo(req, isRouter);
      const what = `${req.dhcp!.type} to :${req.dstPort}${req.dhcp!.userClass ? ` (${req.dhcp!.userClass})` : ''}`;
      return {
        at: (req.at - t0) / 1000,
        what,
        ...(ours !== undefined ? { ourDelayMs: ours } : {}),
        ...(router !== undefined ? { routerDelayMs: router } : {}),
      };
    });
  return { toBootFile: rrq ? (rrq.at - t0) / 1000 : undefined, answers };
}

/** The figures as text, for the test output and make lab. */
export function formatTimings(run: BootRun): string {
  const t = timings(run);
  const marker = run.markerAt !== undefined ? ((run.markerAt - run.t0) / 1000).toFixed(2) : '-';
  const lines = [
    `${run.spec.name}: QEMU start -> first TFTP request for ${run.spec.bootFile}: ${t.toBootFile?.toFixed(2) ?? '-'} s; -> marker: ${marker} s`,
  ];
  for (const a of t.answers) {
    const ours =
      a.ourDelayMs !== undefined
        ? `our answer after ${a.ourDelayMs.toFixed(2)} ms`
        : 'no answer from us (not ours to answer)';
    const router = a.routerDelayMs !== undefined ? `, router after ${a.routerDelayMs.toFixed(2)} ms` : '';
    lines.push(`  t=${a.at.toFixed(2)}s ${a.what.padEnd(24)} ${ours}${router}`);
  }
  return lines.join('\n');
}

/** Capture summary, our log and the serial console of one run, for a failure message. */
export function diagnostics(lan: Lan, run: BootRun): string {
  return [
    `--- capture (${run.frames.length} frames, times from QEMU start) ---`,
    summarize(
      run.frames.filter((f) => !/^TFTP (Data|Acknowledgement)/.test(f.info)),
      run.t0,
    ),
    '--- pxe-pdhcp log ---',
    lan.daemon.lines
      .slice(run.logFrom)
      .map((l) => l.text)
      .join('\n'),
    '--- serial console ---',
    run.console.text,
  ].join('\n');
}

/** What the bystander run left behind. */
export interface BystanderRun {
  t0: number;
  output: string;
  code: number;
  logFrom: number;
  frames: Frame[];
}

/**
 * An ordinary DHCP client (busybox udhcpc, vendor class "udhcp") asks for a lease on the same LAN.
 * Once the daemon has logged that it ignored both its packets, the capture is stopped.
 */
export async function bootBystander(lan: Lan): Promise<BystanderRun> {
  const capture = await Capture.start(lan, join(lan.opts.work, 'bystander.pcapng'));
  const logFrom = lan.daemon.lines.length;
  const t0 = Date.now();
  let r: { stdout: string; stderr: string; code: number };
  try {
    // -q: quit once leased; -n: fail rather than wait forever; -s /bin/true: leave eth0 alone.
    r = await lan.exec(
      lan.bystander.ns,
      'busybox',
      ['udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '3', '-s', '/bin/true'],
      60_000,
    );
    // The DISCOVER and the REQUEST: seen and dropped by us (debug lines), so any answer would be out.
    if (r.code === 0) {
      await lan.daemon.waitForCount(/ignored port=dhcp .*reason=/, 2, 10_000, logFrom);
      await capture.waitFor((f) => isRouter(f) && f.dhcp?.type === 'ACK' && f.dhcp.chaddr === MAC.bystander, 15_000);
    }
  } finally {
    await capture.stop();
  }
  return { t0, output: `${r.stdout}${r.stderr}`, code: r.code, logFrom, frames: await capture.frames() };
}

/** What went wrong for the bystander; empty when it got its lease from the router and nothing from us. */
export function bystanderProblems(run: BystanderRun, mac: string, serverMac: string): string[] {
  const out: string[] = [];
  if (run.code !== 0) out.push(`udhcpc failed (status ${run.code}): ${run.output.trim()}`);
  else if (!new RegExp(`obtained from ${NET.router.replace(/\./g, '\\.')}\\b`).test(run.output))
    out.push(`the lease did not come from the router: ${run.output.trim()}`);
  if (!run.frames.some((f) => isRouter(f) && f.dhcp?.type === 'ACK' && f.dhcp.chaddr === mac))
    out.push('no DHCPACK from the router to the bystander in the capture');
  // Our ARP for another host (a client that just powered off, whose TCP or TFTP state is winding
  // down) is not a packet to the bystander; anything else from us is.
  const leased = /lease of (\S+) obtained/.exec(run.output)?.[1];
  const arpForOther = (f: Frame): boolean => {
    const who = /Who has (\S+)\?/.exec(f.info)?.[1];
    return who !== undefined && who !== leased;
  };
  const fromUs = run.frames.filter((f) => (f.ethSrc === serverMac || f.ipSrc === NET.server) && !arpForOther(f));
  if (fromUs.length > 0) out.push(`${fromUs.length} frame(s) from our server during the bystander's exchange`);
  return out;
}
