import { execFile, type ChildProcess } from 'node:child_process';
import { statSync, watch, type FSWatcher } from 'node:fs';
import { promisify } from 'node:util';
import type { Lan } from './topology.js';
import { Transcript } from './transcript.js';

const run = promisify(execFile);

/** DHCP message types (RFC 2132 §9.6) by number, for summaries. */
const DHCP_TYPE: Record<string, string> = {
  '1': 'DISCOVER',
  '2': 'OFFER',
  '3': 'REQUEST',
  '4': 'DECLINE',
  '5': 'ACK',
  '6': 'NAK',
  '7': 'RELEASE',
  '8': 'INFORM',
};

/** One captured frame, reduced to what the checks need. */
export interface Frame {
  /** Capture time, ms since the epoch (same clock as Date.now()). */
  at: number;
  ethSrc: string;
  ipSrc: string;
  ipDst: string;
  srcPort: number;
  dstPort: number;
  /** DHCP fields, when the frame is DHCP (ports 67, 68, 4011). */
  dhcp?: { op: number; type: string; xid: string; chaddr: string; yiaddr: string; file: string; userClass: string };
  /** tshark's protocol and info columns, for summaries. */
  info: string;
  /** TFTP read request: the file name. */
  rrq?: string;
}

const FIELDS = [
  'frame.time_epoch',
  'eth.src',
  'ip.src',
  'ip.dst',
  'udp.srcport',
  'udp.dstport',
  'dhcp.type',
  'dhcp.option.dhcp',
  'dhcp.id',
  'dhcp.hw.mac_addr',
  'dhcp.ip.your',
  'dhcp.file',
  'dhcp.option.user_class.text',
  'tftp.opcode',
  'tftp.source_file',
  '_ws.col.Protocol',
  '_ws.col.Info',
];

/**
 * tcpdump on the switch's bridge: every frame of the LAN, written to a file packet by packet (-U,
 * immediate mode) until `stop()`; read back with tshark, whose dissectors name the DHCP fields.
 */
export class Capture {
  readonly #child: ChildProcess;
  readonly #lan: Lan;
  readonly file: string;

  private constructor(lan: Lan, child: ChildProcess, file: string) {
    this.#lan = lan;
    this.#child = child;
    this.file = file;
  }

  /** Start capturing; resolves once tcpdump reports that it is listening. */
  static async start(lan: Lan, file: string): Promise<Capture> {
    const child = lan.spawn(lan.lab.switchNs, 'tcpdump', [
      '-n',
      '-i',
      'br0',
      '-U',
      '--immediate-mode',
      '-s',
      '0',
      '-w',
      file,
    ]);
    const out = new Transcript('tcpdump', child);
    await out.waitFor(/listening on br0/, 30_000);
    return new Capture(lan, child, file);
  }

  /**
   * Wait until a frame matching `want` is in the file, or `ms` pass; then the capture surely holds
   * everything before it. Resolves with whether it appeared.
   */
  async waitFor(want: (f: Frame) => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      const size = sizeOf(this.file);
      // The last packet may be half-written while we read; tshark then fails, and we look again.
      const frames = await this.frames().catch(() => []);
      if (frames.some(want)) return true;
      // tcpdump writes each frame as it comes (-U): read again only once the file has grown.
      if (!(await grownPast(this.file, size, end - Date.now()))) return false;
    }
  }

  /** Stop tcpdump (by PID), which flushes the file. */
  async stop(): Promise<void> {
    await this.#lan.stop(this.#child);
  }

  /** Read the file back: port 4011 decoded as DHCP, as the PXE spec uses it. */
  async frames(): Promise<Frame[]> {
    const args = [
      '-n',
      '-r',
      this.file,
      '-d',
      'udp.port==4011,dhcp',
      '-T',
      'fields',
      '-E',
      'separator=\t',
      '-E',
      'occurrence=f',
    ];
    for (const f of FIELDS) args.push('-e', f);
    const { stdout } = await run('tshark', args, { maxBuffer: 256 << 20 });
    return stdout
      .split('\n')
      .filter((l) => l !== '')
      .map(parseRow);
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Resolve true once `file` is larger than `size` (inotify via fs.watch), false after `ms`. */
function grownPast(file: string, size: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (sizeOf(file) > size) return resolve(true);
    if (ms <= 0) return resolve(false);
    let watcher: FSWatcher | undefined;
    const finish = (grown: boolean): void => {
      clearTimeout(timer);
      watcher?.close();
      resolve(grown);
    };
    const timer = setTimeout(() => finish(sizeOf(file) > size), ms);
    try {
      watcher = watch(file, () => {
        if (sizeOf(file) > size) finish(true);
      });
    } catch {
      /* no file yet (tcpdump creates it before "listening"): the timer still ends the wait */
    }
    // Written between the first look and the watch starting.
    if (sizeOf(file) > size) finish(true);
  });
}

function parseRow(row: string): Frame {
  const [
    time,
    ethSrc,
    ipSrc,
    ipDst,
    sport,
    dport,
    op,
    type,
    xid,
    chaddr,
    yiaddr,
    file,
    userClass,
    tftpOp,
    rrq,
    proto,
    info,
  ] = row.split('\t');
  const frame: Frame = {
    at: Number(time) * 1000,
    ethSrc: ethSrc ?? '',
    ipSrc: ipSrc ?? '',
    ipDst: ipDst ?? '',
    srcPort: Number(sport),
    dstPort: Number(dport),
    info: `${proto ?? ''} ${info ?? ''}`.trim(),
  };
  if (type) {
    frame.dhcp = {
      op: Number(op),
      type: DHCP_TYPE[type] ?? `TYPE_${type}`,
      xid: xid ?? '',
      chaddr: chaddr ?? '',
      yiaddr: yiaddr ?? '',
      file: file ?? '',
      userClass: userClass ?? '',
    };
  }
  if (tftpOp === '1' && rrq) frame.rrq = rrq;
  return frame;
}

/**
 * Whether a frame is the read request for `file`: GRUB asks for `/grub/grub.cfg`, which our TFTP
 * server reads as `grub/grub.cfg` (a leading `/` is dropped, docs/tftp.md#file-names).
 */
export function isRequestFor(f: Frame, file: string): boolean {
  return f.rrq !== undefined && f.rrq.replace(/^\/+/, '') === file;
}

/** One line per frame, for failure output. */
export function summarize(frames: Frame[], t0: number): string {
  return frames
    .map((f) => {
      const t = ((f.at - t0) / 1000).toFixed(3).padStart(8);
      const what = f.dhcp
        ? `DHCP ${f.dhcp.type} xid=${f.dhcp.xid} chaddr=${f.dhcp.chaddr} yiaddr=${f.dhcp.yiaddr}` +
          (f.dhcp.file ? ` file=${f.dhcp.file}` : '') +
          (f.dhcp.userClass ? ` user-class=${f.dhcp.userClass}` : '')
        : f.rrq
          ? `TFTP RRQ ${f.rrq}`
          : f.info;
      const ends = f.ipSrc ? `${f.ipSrc}:${f.srcPort} -> ${f.ipDst}:${f.dstPort}` : '';
      return `${t}s ${f.ethSrc} ${ends} ${what}`;
    })
    .join('\n');
}
