import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { have } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('systemd unit (src/daemon/systemd/pxe-pdhcp.service.in)', () => {
  let dir: string;
  let unitPath: string;
  let unit: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pxe-pdhcp-unit-'));
    unitPath = join(dir, 'pxe-pdhcp.service');
    // The same recipe `make install` uses, with the paths of a default install.
    execFileSync('make', ['-s', '--no-print-directory', 'unit-file', `UNIT_FILE=${unitPath}`, 'PREFIX=/usr/local'], {
      cwd: ROOT,
    });
    unit = readFileSync(unitPath, 'utf8');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has every placeholder filled in', () => {
    assert.doesNotMatch(unit, /@[A-Z]+@/);
    assert.match(
      unit,
      new RegExp(`^ExecStart=${process.execPath} /usr/local/lib/pxe-pdhcp/dist/bin/pxe-pdhcp\\.js -d `, 'm'),
    );
  });

  it('runs unprivileged with only CAP_NET_BIND_SERVICE and the usual protections', () => {
    for (const line of [
      'DynamicUser=yes',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'RestrictAddressFamilies=AF_INET AF_UNIX AF_NETLINK',
      'Restart=on-failure',
      'PrivateMounts=yes',
      'MemoryMax=768M',
      'TasksMax=64',
      'SocketBindAllow=udp:67',
      'SocketBindAllow=udp:69',
      'SocketBindDeny=any',
    ]) {
      assert.match(unit, new RegExp(`^${line}$`, 'm'), `missing ${line}`);
    }
  });

  it('leaves out MemoryDenyWriteExecute (V8 JIT) and PrivateUsers (capability in the host namespace)', () => {
    assert.doesNotMatch(unit, /^\s*MemoryDenyWriteExecute=/m);
    assert.doesNotMatch(unit, /^\s*PrivateUsers=/m);
  });

  it('scores as exposed as little as a network daemon can (systemd-analyze security --offline)', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unitPath], { encoding: 'utf8' });
    const m = /Overall exposure level for .*: (\d+\.\d+)/.exec(`${r.stdout}${r.stderr}`);
    assert.ok(m, `no score in: ${r.stdout}${r.stderr}`);
    assert.ok(Number(m[1]) <= 2.5, `exposure ${m[1]} (SECURITY.md states the figure)`);
  });

  it('passes systemd-analyze verify with no warning', () => {
    assert.ok(have('systemd-analyze'), 'systemd-analyze is not installed (Debian package systemd)');
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', unitPath], { encoding: 'utf8' });
    // verify exits 0 on unknown keys and bad values, so any output counts as a failure.
    assert.equal(r.status, 0, r.stderr);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
  });
});
