import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { have, Lab, waitForOutput, type Host } from '../helpers/netns.js';
import { pattern, tempRoot } from '../helpers/tftp.js';

const SERVE = fileURLToPath(new URL('../helpers/tftp-serve.ts', import.meta.url));
const data = pattern(3 * 1024 * 1024, 11);
const root = tempRoot({ 'r3m.bin': data });
const out = tempRoot();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

void describe('TFTP through a link that drops 10 % of the packets (nftables)', () => {
  let lab: Lab;
  let srv: Host;
  let cli: Host;
  before(async () => {
    for (const tool of ['ip', 'nft', 'atftp'])
      assert.ok(have(tool), `${tool} is not installed (CI installs it: see .ci/run)`);
    lab = await Lab.create('tftploss');
    srv = await lab.addHost('srv', '10.77.9.1/24');
    cli = await lab.addHost('cli', '10.77.9.2/24');
    // The server may send a window as one UDP GSO buffer; a veth would carry it whole, and nftables
    // would drop whole windows. Segment before the link instead, as a NIC does, so loss is per datagram.
    await lab.ip(srv.ns, 'link', 'set', 'eth0', 'gso_max_segs', '1');
    const server = lab.spawn(srv.ns, process.execPath, ['--import', 'tsx', SERVE, root.dir, srv.address, '69']);
    await waitForOutput(server, /listening 69/, 15_000);
    // Every packet the client receives is dropped with probability 1/10: DATA and OACK alike.
    for (const args of [
      ['add', 'table', 'inet', 'lossy'],
      ['add', 'chain', 'inet', 'lossy', 'input', '{ type filter hook input priority 0 ; }'],
      [
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
      ],
    ]) {
      const r = await lab.exec(cli.ns, 'nft', args);
      assert.equal(r.code, 0, `nft ${args.join(' ')}: ${r.stderr}`);
    }
  });
  after(async () => {
    await lab?.cleanup();
    root.remove();
    out.remove();
  });

  void it('3 MiB with atftp (blksize 1468, windowsize 16) arrives intact within 60 s', async () => {
    const dest = join(out.dir, 'r3m.bin');
    const started = Date.now();
    const r = await lab.exec(
      cli.ns,
      'atftp',
      [
        '--option',
        'blksize 1468',
        '--option',
        'tsize 0',
        '--option',
        'windowsize 16',
        '-g',
        '-r',
        'r3m.bin',
        '-l',
        dest,
        srv.address,
        '69',
      ],
      60_000,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, `atftp failed after ${seconds}s: ${r.stderr}`);
    assert.equal(sha(readFileSync(dest)), sha(data));
    assert.ok(seconds < 60, `took ${seconds}s`);
    const rules = await lab.exec(cli.ns, 'nft', ['list', 'table', 'inet', 'lossy']);
    const dropped = Number(/counter packets (\d+)/.exec(rules.stdout)?.[1] ?? 0);
    assert.ok(dropped > 50, `the link really dropped packets (${dropped})`);
    console.log(`lossy transfer: ${seconds.toFixed(1)} s, ${dropped} packets dropped`);
  });
});
