import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { UserError } from '../../src/core/errors.js';
import { dropPrivileges, findAccount, lookupAccount, type ProcessIds } from '../../src/daemon/privileges.js';
import { Lab, have } from '../helpers/netns.js';
import { listeningPorts, loopbackArgs, startDaemonProcess, stopDaemon, waitForLine } from '../helpers/process.js';

/** A process-id double that records calls; `stuck` makes setuid a no-op (a failed drop). */
function fakeIds(uid: number, stuck = false): ProcessIds & { calls: string[] } {
  const s = { uid, gid: uid, groups: [uid], calls: [] as string[] };
  return {
    calls: s.calls,
    getuid: () => s.uid,
    geteuid: () => s.uid,
    getgid: () => s.gid,
    getegid: () => s.gid,
    getgroups: () => s.groups,
    setgroups: (g) => {
      s.calls.push(`setgroups ${g.join(',')}`);
      s.groups = g;
    },
    setgid: (g) => {
      s.calls.push(`setgid ${g}`);
      s.gid = g;
    },
    setuid: (u) => {
      s.calls.push(`setuid ${u}`);
      if (!stuck) s.uid = u;
    },
  };
}

/** Uid/Gid lines of /proc/PID/status: real, effective, saved, filesystem. */
function ids(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] =>
    (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').split(/\s+/).filter(Boolean).map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

describe('dropPrivileges', () => {
  it('finds accounts by name or uid in passwd text', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
    assert.deepEqual(findAccount(passwd, 'nobody'), { name: 'nobody', uid: 65534, gid: 65534 });
    assert.deepEqual(findAccount(passwd, '65534'), { name: 'nobody', uid: 65534, gid: 65534 });
    assert.equal(findAccount(passwd, 'daemon'), undefined);
  });

  it('drops groups, then group, then user, as root', () => {
    const f = fakeIds(0);
    const r = dropPrivileges('nobody', f);
    const nobody = lookupAccount('nobody');
    assert.deepEqual(r, { dropped: true, account: nobody });
    assert.deepEqual(f.calls, [`setgroups ${nobody.gid}`, `setgid ${nobody.gid}`, `setuid ${nobody.uid}`]);
  });

  it('does nothing when not started as root', () => {
    const f = fakeIds(1000);
    assert.deepEqual(dropPrivileges('nobody', f), { dropped: false, reason: 'not-root' });
    assert.deepEqual(f.calls, []);
  });

  it('refuses to go on when root is still reachable', () => {
    assert.throws(
      () => dropPrivileges('nobody', fakeIds(0, true)),
      (e) => e instanceof UserError && /refusing to run as root/.test(e.message),
    );
    assert.throws(() => dropPrivileges('root', fakeIds(0)), /refusing to run as root/);
    assert.throws(() => dropPrivileges('no-such-user-here', fakeIds(0)), /no such account "no-such-user-here"/);
  });
});

describe('privilege drop of the built daemon', () => {
  const lab: { l?: Lab } = {};
  after(async () => lab.l?.cleanup());

  it('started as root with --user nobody, runs as nobody:nogroup with no other group', async (t) => {
    assert.equal(process.getuid?.(), 0, 'this test must run as root (CI does)');
    const nobody = lookupAccount('nobody');
    const d = startDaemonProcess(loopbackArgs(9, ['--user', 'nobody']), { built: true });
    t.after(() => stopDaemon(d));
    await waitForLine(d, /dropped privileges user=nobody/);
    const got = ids(d.child.pid!);
    assert.deepEqual(got.uid, [nobody.uid, nobody.uid, nobody.uid, nobody.uid]);
    assert.deepEqual(got.gid, [nobody.gid, nobody.gid, nobody.gid, nobody.gid]);
    assert.deepEqual(got.groups, [nobody.gid]);
  });

  for (const [user, message] of [
    ['root', /^pxe-pdhcp: refusing to run as root: .*\n$/],
    ['no-such-user-here', /^pxe-pdhcp: user: no such account "no-such-user-here"\n$/],
  ] as const) {
    it(`--user ${user}: one clear line and exit 1`, async () => {
      const d = startDaemonProcess(loopbackArgs(9, ['--user', user, '--log-level', 'warn']), { built: true });
      assert.equal(await d.exited, 1);
      assert.match(d.output(), message);
    });
  }

  it('started unprivileged with only CAP_NET_BIND_SERVICE, binds 67 and just runs', async (t) => {
    assert.ok(have('setpriv'), 'setpriv is not installed (Debian package util-linux)');
    lab.l = await Lab.create('privs');
    const ns = `${lab.l.id}-solo`;
    await lab.l.addNamespace(ns);
    const nobody = lookupAccount('nobody');
    const setpriv = [
      'ip',
      'netns',
      'exec',
      ns,
      'setpriv',
      `--reuid=${nobody.uid}`,
      `--regid=${nobody.gid}`,
      '--clear-groups',
      '--inh-caps=+net_bind_service',
      '--ambient-caps=+net_bind_service',
    ];
    const args = loopbackArgs(9);
    args.splice(args.indexOf('--dhcp-port') + 1, 1, '67');
    args.splice(args.indexOf('--proxy-port') + 1, 1, '4011');
    const d = startDaemonProcess(args, { built: true, prefix: setpriv });
    t.after(() => stopDaemon(d));
    assert.deepEqual(await listeningPorts(d), { dhcp: 67, proxy: 4011 });
    assert.doesNotMatch(d.output(), /dropped privileges|refusing/);
    assert.equal(ids(d.child.pid!).uid[0], nobody.uid);
  });
});
