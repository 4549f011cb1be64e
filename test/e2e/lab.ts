/**
 * `make lab CLIENT=bios|uefi|ipxe|secureboot|arm64`: build the e2e LAN, boot one QEMU client through our daemon and
 * show the transcript live (router, our log, the client's serial console), then clean up.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIENT_NAMES, CLIENTS, type ClientName } from './clients.js';
import { bootClient, diagnostics, formatTimings, problems } from './scenario.js';
import { assembleTftpRoot, missingFiles, NET } from './tftproot.js';
import { Lan, missingTools, serverArgs } from './topology.js';

const started = Date.now();
const color = process.stdout.isTTY;
const TINT: Record<string, string> = { router: '33', 'pxe-pdhcp': '32', console: '36', lab: '1' };

function say(source: string, line: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  const tag = source.padEnd(9);
  const tint = TINT[source];
  process.stdout.write(color && tint ? `${t} \x1b[${tint}m${tag}\x1b[0m ${line}\n` : `${t} ${tag} ${line}\n`);
}

/** dnsmasq's --log-dhcp is chatty; a person wants its DHCP messages, not the option dumps. */
function routerLine(line: string): void {
  if (/DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK|INFORM)/.test(line))
    say('router', line.replace(/^.*dnsmasq-dhcp\[\d+\]: /, ''));
}

function fail(message: string): never {
  process.stderr.write(`make lab: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const name = (process.argv[2] ?? process.env.CLIENT ?? 'bios') as ClientName;
  if (!CLIENT_NAMES.includes(name)) fail(`CLIENT must be one of ${CLIENT_NAMES.join(', ')}, not "${name}"`);
  if (process.getuid?.() !== 0) fail('needs root (network namespaces, tap devices): sudo make lab');
  const missing = [...missingTools(), ...missingFiles()];
  if (missing.length > 0) fail(`missing: ${missing.join(', ')}`);
  const spec = CLIENTS[name];
  const work = mkdtempSync(join(tmpdir(), 'pxe-lab-'));
  chmodSync(work, 0o755); // the daemon reads the TFTP root inside after dropping root
  const tftpRoot = join(work, 'tftp');
  assembleTftpRoot(tftpRoot);
  let lan: Lan | undefined;
  const cleanup = async (): Promise<void> => {
    await lan?.cleanup();
    rmSync(work, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      say('lab', `${sig}: cleaning up`);
      void cleanup().then(() => process.exit(130));
    });
  }
  try {
    say(
      'lab',
      `LAN ${NET.router}/${NET.prefix}: router ${NET.router} (dnsmasq, DHCP only, no PXE options), pxe-pdhcp ${NET.server}`,
    );
    lan = await Lan.create({
      work,
      tftpRoot,
      echo: (source, line) => (source === 'router' ? routerLine(line) : say(source, line)),
    });
    await lan.startRouter();
    say('lab', `pxe-pdhcp ${serverArgs(tftpRoot).join(' ')}`);
    await lan.startServer();
    say('lab', `booting ${spec.title}`);
    const run = await bootClient(lan, spec, (line) => say('console', line));
    const found = problems(lan, run);
    say(
      'lab',
      found.length === 0
        ? `${name} booted: marker "${spec.marker}" seen, files ${spec.files.join(', ')} sent`
        : `${name} FAILED`,
    );
    if (found.length > 0) process.stdout.write(`- ${found.join('\n- ')}\n${diagnostics(lan, run)}\n`);
    process.stdout.write(`${formatTimings(run)}\n`);
    process.exitCode = found.length === 0 ? 0 : 1;
  } finally {
    await cleanup();
    say('lab', 'cleaned up: QEMU, dnsmasq, pxe-pdhcp stopped, namespaces deleted');
  }
}

main().catch((err: unknown) => fail((err as Error).message));
