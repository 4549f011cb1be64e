/**
 * The honest client of the hostile-LAN tests, run inside a client namespace:
 *   node --import tsx test/hostile/ask.ts '{"kind":"discover"|"request4011","count":N,"server":IP,"ciaddr":IP}'
 * It asks `count` times, one question at a time, and prints one JSON line: how many were answered
 * and the answer times in milliseconds (p50, max), so a test can bound what an attack costs others.
 */
import { answering, discover, Endpoint, request4011 } from '../helpers/pxe-client.js';

interface Ask {
  kind: 'discover' | 'request4011';
  count: number;
  server: string;
  ciaddr?: string;
  iface?: string;
}

const ask = JSON.parse(process.argv[2] ?? '{}') as Ask;
const WAIT_MS = 2000;
const ep = await Endpoint.open(68, ask.iface ?? 'eth0');
const times: number[] = [];
for (let i = 0; i < ask.count; i++) {
  const xid = 0x5000 + i;
  const mac = `52:54:00:aa:00:${(i % 256).toString(16).padStart(2, '0')}`;
  ep.clear();
  const t0 = performance.now();
  if (ask.kind === 'discover') await ep.send(discover('bios', mac, xid), 67, '255.255.255.255');
  else await ep.send(request4011('ipxe', mac, xid, ask.ciaddr!, ask.server), 4011, ask.server);
  const got = await ep.collect((r) => answering(r, xid).length > 0, WAIT_MS);
  if (answering(got, xid).length > 0) times.push(performance.now() - t0);
}
ep.close();
times.sort((a, b) => a - b);
const at = (q: number): number =>
  Number((times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? -1).toFixed(2));
console.log(JSON.stringify({ asked: ask.count, answered: times.length, p50: at(0.5), max: at(1) }));
