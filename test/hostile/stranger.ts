/**
 * The attacker's own-address probes of the hostile-LAN tests, run in the attacker's namespace:
 *   node --import tsx test/hostile/stranger.ts SERVER FILE PROBES
 * Opens a transfer of FILE from one socket (and never ACKs it), learns the transfer port from the
 * first DATA, then from a second socket sends PROBES stray ACKs to that port, then ERROR packets to
 * the transfer port and to port 69. Prints one JSON line of what came back.
 */
import { createSocket, type Socket } from 'node:dgram';
import { decodeTftp, encodeTftp } from '../../src/wire/tftp-packet.js';

const [server, file, probesText] = process.argv.slice(2) as [string, string, string];
const probes = Number(probesText);

async function bound(): Promise<{ s: Socket; got: Buffer[]; from: number[] }> {
  const s = createSocket('udp4');
  const got: Buffer[] = [];
  const from: number[] = [];
  s.on('message', (m, r) => {
    got.push(m);
    from.push(r.port);
  });
  await new Promise<void>((r) => s.bind(0, r));
  return { s, got, from };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const owner = await bound();
owner.s.send(encodeTftp({ kind: 'rrq', filename: file, mode: 'octet', options: new Map() }), 69, server);
for (let i = 0; i < 100 && owner.got.length === 0; i++) await sleep(20);
const port = owner.from[0] ?? 0;
const stray = await bound();
const t0 = Date.now();
for (let i = 0; i < probes; i++) {
  stray.s.send(encodeTftp({ kind: 'ack', block: 1 }), port, server);
  if (i % 50 === 49) await sleep(5);
}
await sleep(500);
const seconds = (Date.now() - t0) / 1000;
const errors5 = stray.got.filter((m) => {
  const p = decodeTftp(m);
  return p.kind === 'error' && p.code === 5;
}).length;
const errorsOnly = await bound();
const error = encodeTftp({ kind: 'error', code: 0, message: 'ping' });
for (let i = 0; i < 20; i++) {
  errorsOnly.s.send(error, port, server);
  errorsOnly.s.send(error, 69, server);
}
await sleep(500);
console.log(JSON.stringify({ port, probes, seconds, errors5, answersToErrors: errorsOnly.got.length }));
for (const b of [owner, stray, errorsOnly]) b.s.close();
