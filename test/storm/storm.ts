/**
 * `make storm`: N machines switched on together (power-on spread over 50 ms), booted by our daemon
 * and by the C reference stacks in the same run, one stack after the other, each on a fresh
 * namespace LAN. Every machine has its own MAC and address; 30 % are UEFI (EDK2: DISCOVER, 4011
 * REQUEST, a tsize probe, then the NBP windowed, windowsize 4, blksize 1468), the rest BIOS ROMs
 * (lockstep, blksize 1432 or a bare 512-byte request). Then a kernel and an initrd (KERNEL_MB
 * together) over TFTP (blksize 1468; windowsize 8 on UEFI) or HTTP. Firmware retry timing: DISCOVER
 * at 4, 8, 16, 32 s; TFTP 1 s doubling; RRQ repeated after "Server busy" or silence, 4 times in all.
 *
 * Environment: N (100), KERNEL_MB (20), VIA (tftp|http), STACK (ours|dnsmasq|dnsmasq+tftpd-hpa|all,
 * default all), STORM_DAEMON_ARGS (extra options for our daemon), STORM_NODE_ARGS (extra node flags for it, e.g.
 * `--cpu-prof --cpu-prof-dir=DIR`, a directory the daemon's user can write), STORM_JSON (write raw results).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { have } from '../helpers/netns.js';
import { table } from './report.js';
import { MAIN, runStack, STACKS, type Stack, type StackResult } from './run.js';

function fail(message: string): never {
  process.stderr.write(`storm: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  if (!existsSync(MAIN)) fail(`${MAIN} is missing: run make build`);
  const n = Number(process.env.N ?? 100);
  const kernelMb = Number(process.env.KERNEL_MB ?? 20);
  const via = (process.env.VIA ?? 'tftp') as 'tftp' | 'http';
  if (via !== 'tftp' && via !== 'http') fail(`VIA=${String(via)}: tftp or http`);
  const which = process.env.STACK ?? 'all';
  const stacks: Stack[] = which === 'all' ? [...STACKS] : (which.split(',') as Stack[]);
  for (const s of stacks) if (!STACKS.includes(s)) fail(`STACK=${s}: one of ${STACKS.join(', ')} or all`);
  for (const tool of ['ip', 'nstat', ...(stacks.some((s) => s !== 'ours') ? ['dnsmasq'] : [])])
    if (!have(tool)) fail(`${tool} is not installed`);
  if (stacks.includes('dnsmasq+tftpd-hpa') && !have('in.tftpd')) fail('in.tftpd is not installed (Debian: tftpd-hpa)');
  if (via === 'http' && stacks.some((s) => s !== 'ours') && !have('nginx'))
    fail('VIA=http needs nginx for the C stacks');
  const daemonArgs = (process.env.STORM_DAEMON_ARGS ?? '').split(' ').filter(Boolean);
  const results: StackResult[] = [];
  for (const stack of stacks) {
    const r = await runStack(stack, {
      n,
      kernelMb,
      via,
      daemonArgs,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    results.push(r);
    process.stdout.write(`${table([r])}\n\n`);
  }
  process.stdout.write(`\n## Storm: N=${n}, KERNEL_MB=${kernelMb}, VIA=${via}\n\n${table(results)}\n`);
  if (process.env.STORM_JSON) writeFileSync(process.env.STORM_JSON, JSON.stringify(results, null, 2));
}

await main();
