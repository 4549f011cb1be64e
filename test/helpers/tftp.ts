import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counters } from '../../src/core/counters.js';
import type { Logger } from '../../src/core/logger.js';
import { FileRoot } from '../../src/files/root.js';
import { udpDatagrams, type Datagrams, type OpenDatagrams, type Peer } from '../../src/net/datagram.js';
import type { TftpCounter } from '../../src/tftp/context.js';
import { TFTP_DEFAULTS, TftpServer, type TftpListen, type TftpServerOptions } from '../../src/tftp/server.js';
import { decodeTftp, encodeTftp, type TftpPacket } from '../../src/wire/tftp-packet.js';

/** A temporary TFTP root with the given files; `remove()` deletes it. */
export function tempRoot(files: Record<string, Buffer | string> = {}): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tftp-root-'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export { memoryLogger } from './log.js';

export interface Impairment {
  /** Shares in [0, 1] of outgoing datagrams to drop, send twice, or hold back behind the next one. */
  drop: number;
  duplicate: number;
  reorder: number;
  /** Seeded random source, so a failing run can be replayed. */
  random: () => number;
}

export function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/**
 * A transport factory that impairs what the *server* sends: like netboot's lossyDialer. Applied only
 * to transfer sockets (port 0), so requests and the first answer path stay testable as is.
 */
export function lossyTransport(imp: Impairment, counts = { dropped: 0, duplicated: 0, reordered: 0 }): OpenDatagrams {
  const real = udpDatagrams(() => undefined);
  return async (o) => {
    const t = await real(o);
    if (o.port !== 0) return t;
    let held: (() => void) | null = null;
    const wrapped: Datagrams = {
      port: t.port,
      onMessage: (h) => t.onMessage(h),
      close: () => t.close(),
      send(buf, offset, length, to) {
        const copy = Buffer.from(buf.subarray(offset, offset + length));
        const go = (): void => t.send(copy, 0, copy.length, to);
        const r = imp.random();
        if (r < imp.drop) {
          counts.dropped++;
          return;
        }
        if (r < imp.drop + imp.duplicate) {
          counts.duplicated++;
          go();
        } else if (r < imp.drop + imp.duplicate + imp.reorder && held === null) {
          counts.reordered++;
          held = go;
          return;
        }
        go();
        if (held) {
          const h = held;
          held = null;
          h();
        }
      },
    };
    return wrapped;
  };
}

/** A scripted TFTP client for tests: sends packets, queues what comes back with its source port. */
export class ScriptClient {
  readonly inbox: { packet: TftpPacket; from: Peer }[] = [];
  #wake: (() => void) | null = null;
  private constructor(readonly socket: Socket) {
    socket.on('message', (msg, from) => {
      this.inbox.push({ packet: decodeTftp(msg), from: { address: from.address, port: from.port } });
      this.#wake?.();
    });
  }

  static async open(): Promise<ScriptClient> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return new ScriptClient(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  #pending = 0;

  send(p: TftpPacket, port: number): void {
    this.#pending++;
    this.socket.send(encodeTftp(p), port, '127.0.0.1', () => this.#pending--);
  }

  /** Next packet, or throw after `ms`. */
  async next(ms = 2000): Promise<{ packet: TftpPacket; from: Peer }> {
    const deadline = Date.now() + ms;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no TFTP packet arrived');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = null;
    }
    return this.inbox.shift()!;
  }

  /** Collect what arrives within `ms`. */
  async drain(ms: number): Promise<{ packet: TftpPacket; from: Peer }[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.inbox.splice(0);
  }

  /** Close once every queued datagram has left (a close right after send would drop it). */
  async close(): Promise<void> {
    while (this.#pending > 0) await new Promise((r) => setImmediate(r));
    this.socket.close();
  }
}

/** A TFTP server on loopback for tests, with the daemon's defaults where a test names no limit. */
export async function startTestTftp(o: {
  root: string;
  listen: TftpListen[];
  maxTransfers: number;
  idleTimeoutMs: number;
  log: Logger;
  openDatagrams?: OpenDatagrams;
  extra?: Partial<TftpServerOptions>;
}): Promise<{ server: TftpServer; counters: Counters<TftpCounter> }> {
  const counters = new Counters<TftpCounter>();
  const server = await TftpServer.start({
    root: new FileRoot(o.root),
    listen: o.listen,
    limits: {
      maxTransfers: o.maxTransfers,
      maxUnconfirmed: Math.min(TFTP_DEFAULTS.maxUnconfirmed, o.maxTransfers),
      maxPerAddress: TFTP_DEFAULTS.maxPerAddress,
      maxUnconfirmedPerAddress: TFTP_DEFAULTS.maxUnconfirmedPerAddress,
      suspectStrikes: TFTP_DEFAULTS.suspectStrikes,
      suspectMs: TFTP_DEFAULTS.suspectMs,
      unconfirmedGraceMs: TFTP_DEFAULTS.unconfirmedGraceMs,
    },
    idleTimeoutMs: o.idleTimeoutMs,
    log: o.log,
    counters,
    ...(o.openDatagrams ? { openDatagrams: o.openDatagrams } : {}),
    ...o.extra,
  });
  return { server, counters };
}

/** A file held in memory, as the TFTP session reads files. */
export function memorySource(data: Buffer): {
  size: number;
  readv(buffers: Buffer[], position: number): Promise<number>;
} {
  return {
    size: data.length,
    readv: (buffers, position) => {
      let pos = position;
      for (const b of buffers) {
        if (pos >= data.length) break;
        pos += data.copy(b, 0, pos);
      }
      return Promise.resolve(pos - position);
    },
  };
}
