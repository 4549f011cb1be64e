/**
 * A lockstep TFTP read (blksize 1468, tsize) that notes when the first DATA block came, for tests
 * that prove a file streams. Run as a command inside a namespace:
 *   node --import tsx test/helpers/tftp-timed.ts SERVER NAME DEST
 * prints one JSON line: {"ok":true,"bytes":…,"tsize":…,"firstDataMs":…,"ms":…} or
 * {"ok":false,"code":…,"message":…,"ms":…}, and writes the file to DEST.
 */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeTftp, encodeTftp } from '../../src/wire/tftp-packet.js';

export type TimedTftp =
  | { ok: true; data: Buffer; tsize?: number; firstDataMs: number; ms: number }
  | { ok: false; code: number; message: string; ms: number };

const BLKSIZE = 1468;

export function timedTftpGet(server: string, name: string, port = 69): Promise<TimedTftp> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t0 = performance.now();
    const chunks: Buffer[] = [];
    let next = 1;
    let tsize: number | undefined;
    let firstDataMs = -1;
    let to = port;
    let quiet = 0;
    let last = encodeTftp({
      kind: 'rrq',
      filename: name,
      mode: 'octet',
      options: new Map([
        ['blksize', String(BLKSIZE)],
        ['tsize', '0'],
      ]),
    });
    const send = (b: Buffer): void => {
      last = b;
      s.send(b, to, server);
    };
    const finish = (r: TimedTftp): void => {
      clearInterval(tick);
      s.close();
      resolve(r);
    };
    // Resend the last packet after a second of silence; give up after 15.
    const tick = setInterval(() => {
      if (++quiet > 75) return finish({ ok: false, code: -1, message: 'no answer', ms: performance.now() - t0 });
      if (quiet % 5 === 0) s.send(last, to, server);
    }, 200);
    s.on('message', (msg, from) => {
      quiet = 0;
      to = from.port;
      const p = decodeTftp(msg);
      if (p.kind === 'error')
        return finish({ ok: false, code: p.code, message: p.message, ms: performance.now() - t0 });
      if (p.kind === 'oack') {
        const t = p.options.get('tsize');
        if (t !== undefined) tsize = Number(t);
        return send(encodeTftp({ kind: 'ack', block: 0 }));
      }
      if (p.kind !== 'data') return;
      if (p.block === (next & 0xffff)) {
        if (firstDataMs < 0) firstDataMs = performance.now() - t0;
        chunks.push(Buffer.from(p.data));
        next++;
      }
      send(encodeTftp({ kind: 'ack', block: p.block }));
      if (p.block === ((next - 1) & 0xffff) && p.data.length < BLKSIZE) {
        const data = Buffer.concat(chunks);
        finish({ ok: true, data, ...(tsize !== undefined ? { tsize } : {}), firstDataMs, ms: performance.now() - t0 });
      }
    });
    s.bind(0, () => s.send(last, to, server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [server, name, dest] = process.argv.slice(2);
  if (!server || !name || !dest) {
    process.stderr.write('usage: tftp-timed.ts SERVER NAME DEST\n');
    process.exit(2);
  }
  void timedTftpGet(server, name).then((r) => {
    if (r.ok) writeFileSync(dest, r.data);
    const { data, ...rest } = r.ok ? r : { ...r, data: undefined };
    process.stdout.write(`${JSON.stringify({ ...rest, ...(data ? { bytes: data.length } : {}) })}\n`);
    process.exitCode = r.ok ? 0 : 1;
  });
}
