import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../dist/bin/pxe-pdhcp.js', import.meta.url));
const LOOPBACK = [
  '-l',
  '127.0.0.1',
  '-t',
  '127.0.0.1',
  '-b',
  '127.0.0.1',
  '--bind-address',
  '127.0.0.1',
  '--proxy-port',
  '0',
  '--tftp-port',
  '0',
];

/** Run the built command to its end (start-up errors end it at once). */
function run(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stderr: r.stderr.replace(/^npm warn.*\n/gm, '') };
}

/** Every error a user can cause: one line on stderr, exit status 1, no stack trace. */
function assertOneLine(args: string[], want: RegExp): void {
  const { status, stderr } = run(args);
  assert.equal(status, 1, stderr);
  assert.match(stderr, want);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
}

describe('start-up errors of the built command (foreground and detached)', () => {
  for (const mode of [['-d'], []]) {
    const label = mode.length ? 'foreground' : 'detached';
    it(`${label}: a missing interface`, () =>
      assertOneLine([...mode, '-i', 'nosuch0', 'x.0'], /^pxe-pdhcp: interface nosuch0 does not exist$/m));
    it(`${label}: an address that is not on this host`, () =>
      assertOneLine(
        [...mode, '-l', '192.0.2.77', '-t', '192.0.2.77', '-b', '192.0.2.255', 'x.0'],
        /not an address of this host/,
      ));
    it(`${label}: a log file that cannot be written`, () =>
      assertOneLine(
        [...mode, ...LOOPBACK, '--dhcp-port', '0', '--log-file', '/etc/passwd/x.log', 'x.0'],
        /cannot write log file \/etc\/passwd\/x\.log: ENOTDIR/,
      ));
    it(`${label}: a port in use`, async () => {
      const holder = createSocket('udp4');
      await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
      try {
        const port = String(holder.address().port);
        assertOneLine([...mode, ...LOOPBACK, '--dhcp-port', port, 'x.0'], /already in use/);
      } finally {
        holder.close();
      }
    });
  }
});
