import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Lab, have, type Host } from '../helpers/netns.js';
import { pattern, tempRoot } from '../helpers/tftp.js';
import { startDaemonProcess, stopDaemon, waitForLine, type DaemonProcess } from '../helpers/process.js';

const data = pattern(1024 * 1024, 23);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * The built daemon's TFTP server on a namespace LAN where the client's namespace drops 10 % of
 * what it receives (nftables numgen, input hook) and the switch duplicates one in five UDP packets
 * in each direction (netdev ingress `dup` on the bridge ports), so DATA, OACK and ACKs all arrive
 * twice now and then.
 */
describe('TFTP through 10 % loss and duplicated packets, real clients (namespace LAN)', () => {
  let lab: Lab;
  let srv: Host;
  let cli: Host;
  let daemon: DaemonProcess;
  const root = tempRoot({ 'big.bin': data, 'pxelinux.0': Buffer.alloc(10) });
  const out = tempRoot();

  async function nft(ns: string, ...args: string[]): Promise<void> {
    const r = await lab.exec(ns, 'nft', args);
    assert.equal(r.code, 0, `nft ${args.join(' ')}: ${r.stderr}`);
  }

  async function counter(ns: string, table: string): Promise<number> {
    const r = await lab.exec(ns, 'nft', ['list', 'table', ...table.split(' ')]);
    return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  }

  before(async () => {
    for (const tool of ['ip', 'nft', 'atftp', 'curl', 'tftp'])
      assert.ok(have(tool), `${tool} is not installed (CI installs it: see .ci/run)`);
    // The daemon reads the root as nobody.
    chmodSync(root.dir, 0o755);
    for (const f of ['big.bin', 'pxelinux.0']) chmodSync(join(root.dir, f), 0o644);
    lab = await Lab.create('tftpdup');
    srv = await lab.addHost('srv', '10.79.0.2/24');
    cli = await lab.addHost('cli', '10.79.0.3/24');
    // A window may leave as one GSO buffer; segment it as a NIC would, so loss hits datagrams.
    await lab.ip(srv.ns, 'link', 'set', 'eth0', 'gso_max_segs', '1');
    await nft(cli.ns, 'add', 'table', 'inet', 'lossy');
    await nft(cli.ns, 'add', 'chain', 'inet', 'lossy', 'input', '{ type filter hook input priority 0 ; }');
    await nft(
      cli.ns,
      'add',
      'rule',
      'inet',
      'lossy',
      'input',
      'meta',
      'l4proto',
      'udp',
      'numgen',
      'random',
      'mod',
      '10',
      '0',
      'counter',
      'drop',
    );
    // Bridge ports: p0 leads to srv, p1 to cli (addHost order).
    await nft(lab.switchNs, 'add', 'table', 'netdev', 'dups');
    // From the server, only DATA (UDP length over 100) is duplicated: atftp aborts a transfer on a
    // second OACK ("unexpected OACK"), a limit of that client, not of the server under test. From
    // the client, everything is (requests, ACKs: the duplicate-ACK path).
    for (const [port, other, only] of [
      ['p0', 'p1', ['udp', 'length', '>', '100']],
      ['p1', 'p0', []],
    ] as const) {
      await nft(
        lab.switchNs,
        'add',
        'chain',
        'netdev',
        'dups',
        `in_${port}`,
        `{ type filter hook ingress device ${port} priority 0 ; }`,
      );
      await nft(
        lab.switchNs,
        'add',
        'rule',
        'netdev',
        'dups',
        `in_${port}`,
        'ip',
        'protocol',
        'udp',
        ...only,
        'numgen',
        'random',
        'mod',
        '5',
        '0',
        'counter',
        'dup',
        'to',
        other,
      );
    }
    daemon = startDaemonProcess(['-d', '-i', 'eth0', '--tftp-root', root.dir, 'pxelinux.0'], {
      built: true,
      prefix: ['ip', 'netns', 'exec', srv.ns],
    });
    await waitForLine(daemon, /TFTP server listening/);
  });

  after(async () => {
    if (daemon) await stopDaemon(daemon);
    await lab?.cleanup();
    root.remove();
    out.remove();
  });

  const clients: [string, (dest: string) => [string, string[]]][] = [
    [
      'atftp (blksize 1468, windowsize 8)',
      (dest) => [
        'atftp',
        [
          '--option',
          'blksize 1468',
          '--option',
          'windowsize 8',
          '--option',
          'tsize 0',
          '-g',
          '-r',
          'big.bin',
          '-l',
          dest,
          '10.79.0.2',
          '69',
        ],
      ],
    ],
    [
      'curl (blksize 1468)',
      (dest) => ['curl', ['-sS', '--tftp-blksize', '1468', '-o', dest, 'tftp://10.79.0.2/big.bin']],
    ],
    ['tftp-hpa (512-byte blocks)', (dest) => ['tftp', ['-m', 'binary', '10.79.0.2', '-c', 'get', 'big.bin', dest]]],
  ];

  for (const [name, command] of clients) {
    it(`1 MiB with ${name} arrives with the right sha256`, async () => {
      const dest = join(out.dir, `${name.split(' ')[0]}.bin`);
      const [dropsBefore, dupsBefore] = [
        await counter(cli.ns, 'inet lossy'),
        await counter(lab.switchNs, 'netdev dups'),
      ];
      const started = Date.now();
      const [cmd, args] = command(dest);
      const r = await lab.exec(cli.ns, cmd, args, 120_000);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      assert.equal(r.code, 0, `${cmd} failed after ${seconds} s: ${r.stderr}`);
      assert.equal(sha(readFileSync(dest)), sha(data));
      const drops = (await counter(cli.ns, 'inet lossy')) - dropsBefore;
      const dups = (await counter(lab.switchNs, 'netdev dups')) - dupsBefore;
      assert.ok(drops > 10 && dups > 10, `the link really dropped (${drops}) and duplicated (${dups}) packets`);
      console.log(`${name}: ${seconds} s, ${drops} packets dropped, ${dups} duplicated`);
    });
  }

  it('the daemon is still running and logged no internal error', () => {
    assert.equal(daemon.child.exitCode, null, daemon.output());
    assert.doesNotMatch(daemon.output(), /internal-error|handler failed|unexpected error/);
  });
});
