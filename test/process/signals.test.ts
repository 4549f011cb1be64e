import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requestBytes } from '../helpers/packets.js';
import {
  listeningPorts,
  loopbackArgs,
  startDaemonProcess,
  stopDaemon,
  waitForLine,
  type DaemonProcess,
} from '../helpers/process.js';

let client: Socket;
const received: Buffer[] = [];
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pxe-pdhcp-signals-'));
  client = createSocket('udp4');
  client.on('message', (m) => received.push(m));
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
});

after(() => {
  client.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Send a DISCOVER with this xid; resolve true when its offer arrives within `ms`. */
async function offered(port: number, xid: number, ms = 2000): Promise<boolean> {
  client.send(requestBytes({ xid }), port, '127.0.0.1');
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (received.some((m) => m.length >= 8 && m.readUInt32BE(4) === xid)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

function start(logFile?: string): DaemonProcess {
  return startDaemonProcess(loopbackArgs(client.address().port, logFile ? ['--log-file', logFile] : []), {
    built: true,
  });
}

describe('signals (built daemon)', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} stops within 1 s, exit 0, last log line written`, async () => {
      const logFile = join(dir, `${signal}.log`);
      const d = start(logFile);
      try {
        // Not just 'listening': the stop handlers are installed right after the last start-up line.
        await waitForLine({ ...d, output: () => safeRead(logFile) }, /dropped privileges/);
        const t0 = Date.now();
        d.child.kill(signal);
        const code = await d.exited;
        const ms = Date.now() - t0;
        assert.equal(code, 0, d.output());
        assert.ok(ms < 1000, `took ${ms} ms to stop`);
        const lines = readFileSync(logFile, 'utf8').trim().split('\n');
        assert.match(lines[lines.length - 1]!, new RegExp(`stopping.*${signal}`));
      } finally {
        await stopDaemon(d);
      }
    });
  }

  it('SIGHUP never kills it, and it keeps answering', async () => {
    const d = start();
    try {
      const ports = await listeningPorts(d);
      // The last start-up line (as root, which we run as): the HUP handler is installed right after it.
      await waitForLine(d, /dropped privileges/);
      for (let i = 1; i <= 5; i++) {
        d.child.kill('SIGHUP');
        // Each SIGHUP is handled when its i-th reload line appears.
        await waitForLine(d, new RegExp(`(?:configuration reloaded[\\s\\S]*?){${i}}`), 5000);
      }
      assert.equal(d.child.exitCode, null, d.output());
      assert.equal(d.child.signalCode, null);
      assert.ok(await offered(ports.dhcp, 0x5151), 'no offer after SIGHUP');
    } finally {
      await stopDaemon(d);
    }
  });

  it('an unexpected error (its stderr reader gone, EPIPE) ends it with status 1, not limping on', async () => {
    const d = start();
    const ports = await listeningPorts(d);
    d.child.stderr?.destroy();
    d.child.stdout?.destroy();
    // The next answer logs a line to the closed pipe.
    client.send(requestBytes({ xid: 0x7e7e }), ports.dhcp, '127.0.0.1');
    const timer = setTimeout(() => d.child.kill('SIGKILL'), 3000);
    const code = await d.exited;
    clearTimeout(timer);
    assert.equal(code, 1);
  });
});

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
