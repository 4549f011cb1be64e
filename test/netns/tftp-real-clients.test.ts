import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { TftpServer } from '../../src/tftp/server.js';
import { have } from '../helpers/netns.js';
import { memoryLogger, pattern, startTestTftp, tempRoot } from '../helpers/tftp.js';

const run = promisify(execFile);
/** Sizes that matter: empty, exact multiples of 512 and 1468 (end with an empty DATA), 3 MiB, > 65535 blocks of 512. */
const FILES: Record<string, Buffer> = {
  'empty.bin': Buffer.alloc(0),
  'x512.bin': pattern(512 * 8, 2),
  'x1468.bin': pattern(1468 * 4, 3),
  'r3m.bin': pattern(3 * 1024 * 1024, 4),
  'rollover.bin': pattern(65536 * 512 + 1000, 5),
};
const root = tempRoot(FILES);
const out = tempRoot();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Client = (port: number, name: string, dest: string) => Promise<unknown>;
const CLIENTS: Record<string, { tool: string; get: Client }> = {
  'tftp-hpa': {
    tool: 'tftp',
    get: (port, name, dest) =>
      run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, dest], { timeout: 120_000 }),
  },
  atftp: {
    tool: 'atftp',
    get: (port, name, dest) =>
      run(
        'atftp',
        [
          '--option',
          `blksize ${name === 'rollover.bin' ? 512 : 1468}`,
          '--option',
          'tsize 0',
          '--option',
          'windowsize 16',
          '-g',
          '-r',
          name,
          '-l',
          dest,
          '127.0.0.1',
          String(port),
        ],
        {
          timeout: 120_000,
        },
      ),
  },
  curl: {
    tool: 'curl',
    get: (port, name, dest) =>
      run('curl', ['-sS', '--max-time', '120', '-o', dest, `tftp://127.0.0.1:${port}/${name}`], { timeout: 130_000 }),
  },
};

void describe('real TFTP clients against our server', () => {
  let server: TftpServer;
  const { log } = memoryLogger('info');
  before(async () => {
    for (const { tool } of Object.values(CLIENTS))
      assert.ok(have(tool), `${tool} is not installed (CI installs it: see .ci/run)`);
    ({ server } = await startTestTftp({
      root: root.dir,
      listen: [{ address: '127.0.0.1', port: 0, transferAddress: '127.0.0.1', mtu: 1500 }],
      maxTransfers: 16,
      idleTimeoutMs: 5000,
      log,
    }));
  });
  after(async () => {
    await server.close();
    root.remove();
    out.remove();
  });

  for (const [client, { get }] of Object.entries(CLIENTS)) {
    for (const name of Object.keys(FILES)) {
      void it(`${client} fetches ${name} (${FILES[name]!.length} bytes) intact`, async () => {
        const dest = join(out.dir, `${client}-${name}`);
        await get(server.ports[0]!, name, dest);
        assert.ok(existsSync(dest), 'the client wrote the file');
        assert.equal(sha(readFileSync(dest)), sha(FILES[name]!));
      });
    }
  }

  void it('refuses traversal and writes (tftp-hpa)', async () => {
    const port = String(server.ports[0]);
    const dest = join(out.dir, 'passwd');
    const trav = await run('tftp', ['127.0.0.1', port, '-c', 'get', '../../etc/passwd', dest]).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    // Outside the root reads as missing (ERROR 1), so nothing outside can be probed.
    assert.match(`${trav.stdout}${trav.stderr}`, /Error code 1/);
    assert.ok(!existsSync(dest) || readFileSync(dest).length === 0, 'nothing from outside the root');
    const put = await run('tftp', ['127.0.0.1', port, '-c', 'put', join(root.dir, 'x512.bin'), 'upload.bin']).catch(
      (e: { stdout: string; stderr: string }) => e,
    );
    assert.match(`${put.stdout}${put.stderr}`, /Error code 2/);
    assert.ok(!existsSync(join(root.dir, 'upload.bin')));
    await log.waitFor((l) => l.message === 'TFTP write refused (read-only server)');
  });
});
