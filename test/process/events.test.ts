import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import type { PxeEvent } from '../../src/core/events.js';
import { TestClient, until } from '../helpers/daemon.js';
import { requestBytes } from '../helpers/packets.js';
import { BUILT_MAIN, loopbackArgs } from '../helpers/process.js';

// The built command (`make build` first): `--events -` writes JSON lines on stdout, read here line by
// line as they come; `--exit-after` ends it with status 0, `--exit-timeout` with 1.

function daemon(clientPort: number, extra: string[]) {
  assert.ok(existsSync(BUILT_MAIN), `${BUILT_MAIN} is missing: run make build first`);
  const child = spawn(process.execPath, [BUILT_MAIN, ...loopbackArgs(clientPort, ['--log-format', 'json', ...extra])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: PxeEvent[] = [];
  const bad: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as PxeEvent);
    } catch {
      bad.push(line);
    }
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports = async (): Promise<{ dhcp: number; proxy: number }> => {
    await until(() => /"message":"listening"/.test(stderr), 10_000, 'the listening line');
    const m = /"ports":"(\d+),(\d+)"/.exec(stderr)!;
    return { dhcp: Number(m[1]), proxy: Number(m[2]) };
  };
  return { child, events, bad, exited, ports, stderr: () => stderr };
}

describe('the built daemon: --events - and --exit-after', () => {
  it('prints one JSON line per event on stdout, logs on stderr, and exits 0 once the events happened', async () => {
    const client = await TestClient.open();
    const d = daemon(client.port, ['--events', '-', '--exit-after', 'offer:52:54:00:0f:00:03', '--exit-timeout', '20']);
    try {
      const { dhcp } = await d.ports();
      for (const [i, mac] of ['52:54:00:0f:00:01', '52:54:00:0f:00:02', '52:54:00:0f:00:03'].entries()) {
        await client.send(requestBytes({ mac, xid: i + 1 }), dhcp);
        await until(() => d.events.length > i, 5000, `event ${i + 1}`);
      }
      await client.send(requestBytes({ vendor: 'MSFT 5.0' }), dhcp);
      const code = await d.exited;
      assert.equal(code, 0, d.stderr());
      assert.deepEqual(d.bad, [], 'stdout holds JSON lines only');
      assert.deepEqual(
        d.events.map((e) => [e.type, e.mac]),
        [
          ['offer', '52:54:00:0f:00:01'],
          ['offer', '52:54:00:0f:00:02'],
          ['offer', '52:54:00:0f:00:03'],
        ],
      );
      assert.match(d.stderr(), /exit-after: every event has happened/);
    } finally {
      d.child.kill('SIGKILL');
      client.close();
    }
  });

  it('exits 1 at --exit-timeout, naming what did not happen', async () => {
    const t0 = Date.now();
    const d = daemon(68, ['--events', '-', '--exit-after', 'transfer-done:vmlinuz', '--exit-timeout', '1']);
    try {
      assert.equal(await d.exited, 1);
      assert.ok(Date.now() - t0 >= 1000);
      assert.match(d.stderr(), /"missing":"transfer-done:vmlinuz"/);
    } finally {
      d.child.kill('SIGKILL');
    }
  });
});
