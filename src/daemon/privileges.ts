import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UserError } from '../core/errors.js';

/** The account the daemon runs as after binding its privileged ports. */
export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** What a privilege drop did, for the log line. */
export type DropResult = { dropped: false; reason: 'not-root' } | { dropped: true; account: Account };

/** The process calls we need; injectable so the order of calls can be tested without root. */
export interface ProcessIds {
  getuid(): number;
  geteuid(): number;
  getgid(): number;
  getegid(): number;
  setgroups(groups: number[]): void;
  setgid(id: number): void;
  setuid(id: number): void;
  getgroups(): number[];
}

/** glibc's getent(1). */
const GETENT = '/usr/bin/getent';
/** The overflow uid/gid: what `getent` runs as when we are root. */
const NOBODY_ID = 65534;

/** Find `name` (or a numeric uid) in passwd(5) text. */
export function findAccount(passwd: string, user: string): Account | undefined {
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (name === user || uid === user) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/**
 * Look an account up: /etc/passwd first, then `getent passwd` so that NSS sources (LDAP, systemd's
 * dynamic users) work too. Node has no getpwnam(3).
 * @throws UserError when there is no such account
 */
export function lookupAccount(user: string): Account {
  let found: Account | undefined;
  try {
    found = findAccount(readFileSync('/etc/passwd', 'utf8'), user);
  } catch {
    /* no /etc/passwd: try NSS */
  }
  if (!found) {
    try {
      found = findAccount(
        // By absolute path, and never as root: NSS modules are code we need not trust.
        execFileSync(GETENT, ['passwd', user], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
          ...(process.getuid?.() === 0 ? { uid: NOBODY_ID, gid: NOBODY_ID } : {}),
        }),
        user,
      );
    } catch {
      /* getent exits 2 for an unknown name */
    }
  }
  if (!found || !Number.isInteger(found.uid) || !Number.isInteger(found.gid)) {
    throw new UserError(`user: no such account "${user}"`);
  }
  return found;
}

/**
 * Give up root once every privileged socket is bound (docs/daemon.md#dropping-privileges): supplementary groups
 * first, then the group, then the user, since after setuid we could no longer change groups. Then
 * check that no way back to root is left. Does nothing when not started as root (a service with
 * only CAP_NET_BIND_SERVICE, or systemd's DynamicUser).
 * @throws UserError when the account is unknown, a call fails, or root is still reachable
 */
export function dropPrivileges(user: string, ids: ProcessIds = process as unknown as ProcessIds): DropResult {
  if (ids.getuid() !== 0 && ids.geteuid() !== 0) return { dropped: false, reason: 'not-root' };
  const account = lookupAccount(user);
  try {
    ids.setgroups([account.gid]);
    ids.setgid(account.gid);
    ids.setuid(account.uid);
  } catch (err) {
    throw new UserError(`cannot drop privileges to ${user}: ${(err as Error).message}`);
  }
  const rootLeft =
    ids.getuid() === 0 ||
    ids.geteuid() === 0 ||
    ids.getgid() === 0 ||
    ids.getegid() === 0 ||
    ids.getgroups().includes(0);
  if (rootLeft) {
    throw new UserError(
      `refusing to run as root: dropping privileges to ${user} (uid ${account.uid}) left root access`,
    );
  }
  return { dropped: true, account };
}
