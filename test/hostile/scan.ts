/**
 * The port scan of the hostile-LAN tests, run in the attacker's namespace:
 *   node --import tsx test/hostile/scan.ts SERVER FIRST LAST
 * Sends a stray ACK from the attacker's own address to every UDP port FIRST..LAST of the server
 * and prints how many TFTP answers came back (a transfer port that answered would be found).
 */
import { createSocket } from 'node:dgram';
import { encodeTftp } from '../../src/wire/tftp-packet.js';

const [server, first, last] = process.argv.slice(2) as [string, string, string];
const s = createSocket('udp4');
let answers = 0;
s.on('message', () => answers++);
s.on('error', () => undefined);
await new Promise<void>((r) => s.bind(0, r));
const probe = encodeTftp({ kind: 'ack', block: 0 });
for (let port = Number(first); port <= Number(last); port++) {
  s.send(probe, port, server);
  if (port % 200 === 0) await new Promise((r) => setTimeout(r, 2));
}
await new Promise((r) => setTimeout(r, 1000));
console.log(JSON.stringify({ probed: Number(last) - Number(first) + 1, answers }));
s.close();
