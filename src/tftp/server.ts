import { realpath } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/logger.js';
import { RateLimiter, Stats } from '../core/counters.js';
import { DecodeError } from '../wire/reader.js';
import {
  DATA_HEADER_LEN,
  decodeTftp,
  encodeTftp,
  TftpErrorCode,
  TftpOpcode,
  type TftpRequest,
} from '../wire/tftp-packet.js';
import { memoryFile, openInRoot, toNetascii, type OpenFile } from '../files/root.js';
import { negotiate } from './negotiate.js';
import { TftpSession, type SessionIo, type SessionSummary } from './session.js';
import { udpTransport, type OpenTransport, type Peer, type Transport } from './transport.js';

/** One port-69 socket: an interface (with -i) or the bind address. */
export interface TftpListen {
  /** Address the listener binds (0.0.0.0 in the daemon). */
  address: string;
  port: number;
  device?: { name: string; index: number };
  /** Local address transfer sockets bind to, so replies leave from the address the client knows. */
  transferAddress: string;
  /** Egress MTU: blksize is clamped to MTU − 32. */
  mtu: number;
}

export interface TftpServerOptions {
  root: string;
  listen: readonly TftpListen[];
  maxTransfers: number;
  /** Transfers one client address may hold at once (default: half of maxTransfers, at least 1). */
  maxPerClient?: number;
  idleTimeoutMs: number;
  /** Largest window granted (RFC 7440), and its byte bound. */
  maxWindow?: number;
  maxWindowBytes?: number;
  log: Logger;
  stats?: Stats;
  /** Socket factory; tests pass a lossy one. */
  openTransport?: OpenTransport;
}

export interface TftpServer {
  /** Bound listener ports, in `listen` order. */
  readonly ports: number[];
  readonly stats: Stats;
  /** Transfers in progress (opening ones included). */
  readonly active: number;
  close(): Promise<void>;
}

/** Netascii copies are built in memory; text files are small, anything larger is refused. */
const NETASCII_MAX = 16 * 1024 * 1024;
const DEFAULT_MAX_WINDOW = 64;
const DEFAULT_MAX_WINDOW_BYTES = 512 * 1024;

const sessionClock = {
  now: () => performance.now(),
  setTimer: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimer: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
};

/** Printable, capped: names come from the network (STYLE.md, like dnsmasq's sanitise). */
function clean(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/**
 * Start the read-only TFTP server: a listener per `listen` entry, a fresh socket (transfer ID, RFC
 * 1350 §4) per transfer. Resolves once every listener is bound.
 * @throws UserError when a listener cannot be bound (nothing stays open then)
 */
export async function startTftpServer(o: TftpServerOptions): Promise<TftpServer> {
  const { log } = o;
  const stats = o.stats ?? new Stats();
  const debug = log.isLevelEnabled('debug');
  const openTransport = o.openTransport ?? udpTransport((err) => log.debug('TFTP socket error', { err: err.message }));
  const listeners: Transport[] = [];
  /** Key `address:port` of the client's TID → its transfer, or null while the file is opening. */
  const transfers = new Map<string, { session: TftpSession | null; transport?: Transport }>();
  const perClient = new Map<string, number>();
  const maxPerClient = o.maxPerClient ?? Math.max(1, Math.ceil(o.maxTransfers / 2));
  let closing = false;
  /** Info lines come per transfer or per refused write: capped, so a flood of requests cannot flood the log. */
  const lines = new RateLimiter(50, 200);
  /** Null when over the cap; else extra fields saying how many lines the cap left out before. */
  const capped = (): Record<string, number> | null => {
    if (!lines.take()) return null;
    const n = lines.suppressed;
    lines.suppressed = 0;
    return n > 0 ? { 'lines-suppressed': n } : {};
  };

  const reply = (via: Transport, to: Peer, code: number, message: string): void => {
    const b = encodeTftp({ kind: 'error', code, message });
    via.send(b, 0, b.length, to.port, to.address);
  };

  const release = (key: string, from: Peer): void => {
    transfers.delete(key);
    const n = (perClient.get(from.address) ?? 1) - 1;
    if (n <= 0) perClient.delete(from.address);
    else perClient.set(from.address, n);
  };

  const logEnd = (from: Peer, file: string, s: SessionSummary): void => {
    stats.count(`tftp-${s.outcome}`);
    const fields = {
      client: `${from.address}:${from.port}`,
      file,
      bytes: s.bytes,
      seconds: Number((s.ms / 1000).toFixed(3)),
      blksize: s.blockSize,
      windowsize: s.windowSize,
      retransmits: s.retransmits,
    };
    if (s.outcome === 'client-error' && s.duringNegotiation) {
      log.debug('TFTP size probe ended by client', fields);
      return;
    }
    const extra = capped();
    if (!extra) return;
    if (s.outcome === 'done') log.info('TFTP transfer complete', { ...fields, ...extra });
    else
      log.info('TFTP transfer ended', {
        ...fields,
        ...extra,
        outcome: s.outcome,
        ...(s.clientError ? { 'client-error': clean(s.clientError.message) } : {}),
      });
  };

  async function openFile(
    req: TftpRequest,
  ): Promise<{ file: OpenFile } | { code: number; reason: string; message: string }> {
    let root: string;
    try {
      root = await realpath(o.root);
    } catch {
      return { code: TftpErrorCode.FILE_NOT_FOUND, reason: 'no-root', message: 'File not found' };
    }
    const r = await openInRoot(root, req.filename);
    if (!r.ok) return r.refusal;
    if (req.mode !== 'netascii') return { file: r.file };
    // RFC 1350 netascii: converted once, in memory; tsize is then the converted size.
    const { file } = r;
    try {
      if (file.size > NETASCII_MAX)
        return {
          code: TftpErrorCode.ACCESS_VIOLATION,
          reason: 'netascii-too-big',
          message: 'File too large for netascii',
        };
      const raw = Buffer.alloc(file.size);
      const n = await file.readv([raw], 0);
      return { file: memoryFile(file.name, toNetascii(raw.subarray(0, n))) };
    } finally {
      await file.close();
    }
  }

  async function startTransfer(
    l: TftpListen,
    via: Transport,
    from: Peer,
    key: string,
    req: TftpRequest,
  ): Promise<void> {
    const opened = await openFile(req);
    if (!('file' in opened) || closing) {
      if ('file' in opened) await opened.file.close();
      else {
        stats.count(`tftp-${opened.reason}`);
        const level = opened.reason === 'not-found' ? 'debug' : 'info';
        log.log(level, 'TFTP request refused', {
          client: `${from.address}:${from.port}`,
          file: clean(req.filename),
          reason: opened.reason,
        });
        reply(via, from, opened.code, opened.message);
      }
      return release(key, from);
    }
    const { file } = opened;
    const negotiated = negotiate(req.options, {
      mtu: l.mtu,
      maxWindow: o.maxWindow ?? DEFAULT_MAX_WINDOW,
      maxWindowBytes: o.maxWindowBytes ?? DEFAULT_MAX_WINDOW_BYTES,
      fileSize: file.size,
    });
    let t: Transport;
    try {
      t = await openTransport({ address: l.transferAddress, port: 0, purpose: 'TFTP transfer', peer: from });
    } catch (err) {
      await file.close();
      log.error('cannot open a TFTP transfer socket', { err: (err as Error).message });
      reply(via, from, TftpErrorCode.NOT_DEFINED, 'Server error');
      return release(key, from);
    }
    const io: SessionIo = { ...sessionClock, send: (b, off, len) => t.send(b, off, len, from.port, from.address) };
    // A window goes out in one send where the kernel can segment it (UDP GSO): one syscall, not 16.
    if (negotiated.windowSize > 1 && t.segment) {
      io.maxBatch = t.segment(DATA_HEADER_LEN + negotiated.blockSize, () => {
        io.maxBatch = 1;
      });
    }
    const session = new TftpSession({ file, negotiated, idleTimeoutMs: o.idleTimeoutMs }, io, (s) => {
      release(key, from);
      void t.close();
      logEnd(from, file.name, s);
    });
    t.onMessage((msg, peer) => {
      if (peer.port !== from.port || peer.address !== from.address) {
        // RFC 1350 §4: a packet from a foreign TID gets ERROR 5; the transfer goes on.
        stats.count('tftp-unknown-tid');
        return reply(t, peer, TftpErrorCode.UNKNOWN_TID, 'Unknown transfer ID');
      }
      // Fast path for the packet that dominates a transfer: a 4-byte ACK.
      if (msg.length >= 4 && msg[0] === 0 && msg[1] === TftpOpcode.ACK) return session.ack(msg.readUInt16BE(2));
      try {
        session.onPacket(decodeTftp(msg));
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        stats.count(`tftp-${err.code}`);
        if (debug)
          log.debug('malformed TFTP packet dropped', { client: `${peer.address}:${peer.port}`, reason: err.code });
      }
    });
    transfers.set(key, { session, transport: t });
    stats.count('tftp-transfer-started');
    if (debug)
      log.debug('TFTP transfer starting', {
        client: key,
        file: file.name,
        size: file.size,
        oack: Object.fromEntries(negotiated.oack),
      });
    session.start();
  }

  function onRequest(l: TftpListen, via: Transport, msg: Buffer, from: Peer): void {
    let p;
    try {
      p = decodeTftp(msg);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      stats.count(`tftp-${err.code}`);
      if (debug)
        log.debug('malformed TFTP request dropped', { client: `${from.address}:${from.port}`, reason: err.code });
      return;
    }
    if (p.kind === 'wrq') {
      stats.count('tftp-write-refused');
      const extra = capped();
      if (extra)
        log.info('TFTP write refused (read-only server)', {
          client: `${from.address}:${from.port}`,
          file: clean(p.filename),
          ...extra,
        });
      return reply(via, from, TftpErrorCode.ACCESS_VIOLATION, 'Server is read-only');
    }
    if (p.kind !== 'rrq') return stats.count('tftp-not-a-request');
    const key = `${from.address}:${from.port}`;
    const existing = transfers.get(key);
    if (existing) {
      // §8.4: a repeated RRQ from the same TID is a retransmission, not a second transfer.
      stats.count('tftp-duplicate-request');
      return existing.session?.onDuplicateRequest();
    }
    if (p.mode !== 'octet' && p.mode !== 'netascii') {
      stats.count('tftp-bad-mode');
      return reply(via, from, TftpErrorCode.ILLEGAL_OPERATION, 'Unsupported mode');
    }
    const mine = perClient.get(from.address) ?? 0;
    if (closing || transfers.size >= o.maxTransfers || mine >= maxPerClient) {
      stats.count('tftp-busy');
      if (debug)
        log.debug('TFTP request refused: too many transfers', {
          client: key,
          active: transfers.size,
          client_active: mine,
        });
      return reply(via, from, TftpErrorCode.NOT_DEFINED, 'Server busy, try again');
    }
    transfers.set(key, { session: null });
    perClient.set(from.address, mine + 1);
    startTransfer(l, via, from, key, p).catch((err: unknown) => {
      stats.count('internal-error');
      log.error('TFTP transfer failed to start', { client: key, err: (err as Error).message });
      if (transfers.get(key)?.session === null) release(key, from);
    });
  }

  try {
    const shared = o.listen.length > 1;
    for (const l of o.listen) {
      const t = await openTransport({
        address: l.address,
        port: l.port,
        reuseAddr: shared,
        purpose: 'TFTP',
        ...(l.device ? { device: l.device } : {}),
      });
      listeners.push(t);
      t.onMessage((msg, from) => onRequest(l, t, msg, from));
    }
  } catch (err) {
    await Promise.all(listeners.map((t) => t.close()));
    throw err;
  }

  return {
    ports: listeners.map((t) => t.port),
    stats,
    get active() {
      return transfers.size;
    },
    async close() {
      closing = true;
      const open = [...transfers.values()];
      for (const { session } of open) session?.abort();
      await Promise.all(
        [...listeners, ...open.flatMap((x) => (x.transport ? [x.transport] : []))].map((t) => t.close()),
      );
    },
  };
}
