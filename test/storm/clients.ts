/**
 * The storm's clients, all in this one process, run inside the client namespace by `run.ts`:
 * `node --import tsx test/storm/clients.ts CONFIG.json` (a `ClientsConfig`). Writes one JSON line
 * (`ClientsOutput`) to stdout when every machine has booted or given up.
 */
import { readFileSync } from 'node:fs';
import { openUdp } from '../../src/net/udp.js';
import { boot, DhcpMux, type MachineResult, type MachineSpec, type StormFiles } from './machine.js';

export interface ClientsConfig {
  iface: string;
  machines: MachineSpec[];
  files: StormFiles;
  via: 'tftp' | 'http';
  httpPort: number;
}

export interface ClientsOutput {
  results: MachineResult[];
  /** CPU seconds this generator used, and its wall time. */
  cpuSeconds: number;
  wallSeconds: number;
}

export async function runClients(c: ClientsConfig): Promise<ClientsOutput> {
  const index = Number(readFileSync(`/sys/class/net/${c.iface}/ifindex`, 'utf8'));
  const socket = await openUdp({
    port: 68,
    address: '0.0.0.0',
    device: { name: c.iface, index },
    broadcast: true,
    purpose: 'storm clients',
  });
  const mux = new DhcpMux(socket);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now() + 100;
  const results = await Promise.all(c.machines.map((m) => boot(m, mux, c.files, c.via, t0, c.httpPort)));
  const cpu = process.cpuUsage(cpu0);
  socket.close();
  return {
    results,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\//, ''))) {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ClientsConfig;
  const out = await runClients(config);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
