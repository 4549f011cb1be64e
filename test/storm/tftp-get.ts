import { createSocket, type Socket } from 'node:dgram';
import { decodeTftp, encodeTftp, TftpErrorCode } from '../../src/wire/tftp-packet.js';

/**
 * A TFTP read as boot firmware does it, tuned to cost the generator little: bytes are counted, not
 * kept. Timing is the firmware's: a first timeout of 1 s, doubled at each consecutive silence, reset
 * by progress; after `maxTimeouts` silences in a row the transfer is lost. A "Server busy" (or any
 * ERROR 0) answer, or a request never answered, sends the RRQ again from a new port after the same
 * back-off, up to `maxRequests` times, as PXE ROMs and EDK2 retry their MTFTP open.
 */
export interface TftpGet {
  server: string;
  port?: number;
  /** Our own address: every socket of this machine is bound to it. */
  local: string;
  file: string;
  /** Undefined: a plain RFC 1350 request, no options (512-byte lockstep). */
  blksize?: number;
  windowsize?: number;
  /** Ask tsize too (EDK2 and PXE ROMs do). */
  tsize?: boolean;
  /** Only learn the size: OACK, then ERROR 8, as EDK2 probes a file before reading it. */
  probeOnly?: boolean;
  firstTimeoutMs?: number;
  maxTimeouts?: number;
  maxRequests?: number;
}

export interface TftpStats {
  /** RRQs sent beyond the first of each read (busy answers and silences). */
  requestRetries: number;
  /** "Server busy" answers received. */
  busy: number;
  /** Times we heard nothing for a full timeout once the transfer had started. */
  timeouts: number;
  /** DATA blocks received twice or out of order: the server's retransmissions as the client sees them. */
  duplicates: number;
}

export interface TftpGot {
  bytes: number;
  tsize?: number;
}

export class TftpFailure extends Error {}

const ACK = (block: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(4, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
};

function open(local: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, local, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/** One RRQ and what follows it on one port; resolves 'busy' when the server asks to try again. */
function attempt(
  o: TftpGet,
  stats: TftpStats,
  socket: Socket,
  requestRto: number,
): Promise<TftpGot | 'busy' | 'silent'> {
  const port = o.port ?? 69;
  const firstRto = o.firstTimeoutMs ?? 1000;
  const maxTimeouts = o.maxTimeouts ?? 5;
  const options = new Map<string, string>();
  if (o.blksize !== undefined) options.set('blksize', String(o.blksize));
  if (o.tsize || o.probeOnly) options.set('tsize', '0');
  if (o.windowsize !== undefined) options.set('windowsize', String(o.windowsize));
  const rrq = encodeTftp({ kind: 'rrq', filename: o.file, mode: 'octet', options });
  return new Promise((resolve, reject) => {
    let peer: { address: string; port: number } | null = null;
    let blksize = 512;
    let window = 1;
    let tsize: number | undefined;
    /** Next block wanted (a counter: its low 16 bits are on the wire). */
    let expect = 1;
    let inWindow = 0;
    let nakSent = false;
    let bytes = 0;
    let rto = requestRto;
    let silences = 0;
    let last = performance.now();
    let lastSent = rrq;
    let timer: NodeJS.Timeout;
    const finish = (r: TftpGot | 'busy' | 'silent' | Error): void => {
      clearTimeout(timer);
      socket.removeAllListeners('message');
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const send = (b: Buffer): void => {
      lastSent = b;
      socket.send(b, peer?.port ?? port, peer?.address ?? o.server);
    };
    const arm = (ms: number): void => {
      timer = setTimeout(check, ms);
    };
    const check = (): void => {
      const idle = performance.now() - last;
      if (idle < rto) return arm(rto - idle + 1);
      silences++;
      if (peer === null) {
        // No answer at all to this RRQ: the caller retries it from a new port.
        return finish('silent');
      }
      stats.timeouts++;
      if (silences > maxTimeouts) return finish(new TftpFailure(`${o.file}: ${silences - 1} timeouts in a row`));
      rto *= 2;
      last = performance.now();
      socket.send(lastSent, peer.port, peer.address);
      arm(rto);
    };
    socket.on('message', (msg, from) => {
      if (peer === null) peer = { address: from.address, port: from.port };
      else if (from.port !== peer.port || from.address !== peer.address) {
        socket.send(
          encodeTftp({ kind: 'error', code: TftpErrorCode.UNKNOWN_TID, message: 'Unknown TID' }),
          from.port,
          from.address,
        );
        return;
      }
      const op = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
      if (op === 3 && msg.length >= 4) {
        const block = msg.readUInt16BE(2);
        last = performance.now();
        if (block === (expect & 0xffff)) {
          silences = 0;
          rto = firstRto;
          const len = msg.length - 4;
          bytes += len;
          expect++;
          inWindow++;
          if (len < blksize) {
            send(ACK(block));
            return finish({ bytes, ...(tsize !== undefined ? { tsize } : {}) });
          }
          if (inWindow >= window) {
            inWindow = 0;
            send(ACK(block));
          }
          nakSent = false;
        } else {
          stats.duplicates++;
          const ahead = (block - (expect & 0xffff)) & 0xffff;
          if (window === 1 && block === ((expect - 1) & 0xffff)) {
            // Our ACK was lost and the server sent the block again: ACK it again, as ROMs do.
            send(ACK(block));
          } else if (window > 1 && ahead > 0 && ahead < 0x8000 && !nakSent) {
            // A gap inside a window: say where we are, once, and the next window starts there (RFC 7440 §4).
            nakSent = true;
            inWindow = 0;
            send(ACK(expect - 1));
          }
        }
        return;
      }
      let p;
      try {
        p = decodeTftp(msg);
      } catch {
        return;
      }
      last = performance.now();
      if (p.kind === 'oack') {
        blksize = Number(p.options.get('blksize') ?? 512);
        window = Number(p.options.get('windowsize') ?? 1);
        const ts = p.options.get('tsize');
        if (ts !== undefined) tsize = Number(ts);
        if (o.probeOnly) {
          socket.send(encodeTftp({ kind: 'error', code: 8, message: 'size probe' }), from.port, from.address);
          return finish({ bytes: 0, ...(tsize !== undefined ? { tsize } : {}) });
        }
        if (expect === 1) send(ACK(0));
        return;
      }
      if (p.kind === 'error') {
        if (p.code === TftpErrorCode.NOT_DEFINED && expect === 1) {
          stats.busy++;
          return finish('busy');
        }
        return finish(new TftpFailure(`${o.file}: ERROR ${p.code} ${p.message}`));
      }
    });
    socket.send(rrq, port, o.server);
    arm(rto);
  });
}

/** Read `o.file`; throws TftpFailure when the firmware would give up. */
export async function tftpGet(o: TftpGet, stats: TftpStats): Promise<TftpGot> {
  const maxRequests = o.maxRequests ?? 4;
  let wait = o.firstTimeoutMs ?? 1000;
  for (let i = 0; ; i++) {
    const socket = await open(o.local);
    try {
      const r = await attempt(o, stats, socket, wait);
      if (typeof r === 'object') return r;
      if (i + 1 >= maxRequests)
        throw new TftpFailure(`${o.file}: ${r === 'busy' ? 'server busy' : 'no answer'} after ${maxRequests} requests`);
      stats.requestRetries++;
      // A silent RRQ already waited its timeout; a busy answer waits before asking again.
      if (r === 'busy') await new Promise((resolve) => setTimeout(resolve, wait));
      wait *= 2;
    } finally {
      socket.close();
    }
  }
}
