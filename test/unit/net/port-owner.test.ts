import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ownersOf,
  parseProcNetUdp,
  procProcesses,
  socketInode,
  udpPortHolders,
  udpPortHoldersFrom,
  type ProcessFds,
} from '../../../src/net/port-owner.js';

// /proc/net/udp as a little-endian host writes it (proc(5)): dnsmasq on 0.0.0.0:67 and
// 0.0.0.0:4011, a second socket on 67 bound to 10.77.0.2, a TFTP server on 127.0.0.1:69.
const HEADER =
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';
const row = (sl: number, local: string, inode: number): string =>
  `  ${sl}: ${local} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 ${inode} 2 ffff9b1c 0\n`;
const PROC_NET_UDP =
  HEADER +
  row(1, '00000000:0043', 4242) +
  row(2, '00000000:0FAB', 4243) +
  row(3, '02004D0A:0043', 5150) +
  row(4, '0100007F:0045', 777);

const PROCESSES: ProcessFds[] = [
  { pid: 1, fdLinks: ['/dev/null', 'socket:[12]'], comm: 'systemd' },
  { pid: 812, fdLinks: ['/dev/null', 'pipe:[99]', 'socket:[4242]', 'socket:[4243]'], comm: 'dnsmasq' },
  // A child sharing the parent's socket after fork: the first holder is named.
  { pid: 813, fdLinks: ['socket:[4242]'], comm: 'dnsmasq-helper' },
  { pid: 900, fdLinks: ['socket:[777]'] },
];

describe('parseProcNetUdp', () => {
  it('reads address (host byte order), port and inode of each line, skipping the header', () => {
    assert.deepEqual(parseProcNetUdp(PROC_NET_UDP), [
      { address: '0.0.0.0', port: 67, inode: 4242 },
      { address: '0.0.0.0', port: 4011, inode: 4243 },
      { address: '10.77.0.2', port: 67, inode: 5150 },
      { address: '127.0.0.1', port: 69, inode: 777 },
    ]);
  });

  it('on a big-endian host the address is read as written', () => {
    assert.equal(parseProcNetUdp(HEADER + row(1, '0A4D0002:0043', 1), false)[0]!.address, '10.77.0.2');
  });

  it('skips malformed lines and an empty file', () => {
    const text =
      HEADER +
      '  1: nonsense\n' +
      '  2: 0100007F:0045 00000000:0000 07 x x x x x notanumber\n' +
      row(3, '0100007F:0044', 8) +
      '\n';
    assert.deepEqual(parseProcNetUdp(text), [{ address: '127.0.0.1', port: 68, inode: 8 }]);
    assert.deepEqual(parseProcNetUdp(''), []);
  });
});

describe('socketInode and ownersOf', () => {
  it('socketInode reads socket links only', () => {
    assert.equal(socketInode('socket:[4242]'), 4242);
    assert.equal(socketInode('pipe:[4242]'), undefined);
    assert.equal(socketInode('/dev/null'), undefined);
    assert.equal(socketInode('socket:[]'), undefined);
  });

  it('maps each wanted inode to its first holder', () => {
    const owners = ownersOf(new Set([4242, 4243, 777, 31337]), PROCESSES);
    assert.deepEqual(
      [...owners].sort(([a], [b]) => a - b),
      [
        [777, { pid: 900, name: '?' }],
        [4242, { pid: 812, name: 'dnsmasq' }],
        [4243, { pid: 812, name: 'dnsmasq' }],
      ],
    );
  });

  it('does not walk the processes when no inode is wanted', () => {
    let walked = false;
    const processes = (function* () {
      walked = true;
      yield* PROCESSES;
    })();
    assert.equal(ownersOf(new Set(), processes).size, 0);
    assert.equal(walked, false);
  });
});

describe('udpPortHoldersFrom (pure, over fake /proc texts)', () => {
  it('names every socket on the port, with its process', () => {
    assert.deepEqual(udpPortHoldersFrom(67, PROC_NET_UDP, PROCESSES, true), [
      { address: '0.0.0.0', owner: { pid: 812, name: 'dnsmasq' } },
      // A socket no process we could read holds (another user's, when not root).
      { address: '10.77.0.2' },
    ]);
    assert.deepEqual(udpPortHoldersFrom(4011, PROC_NET_UDP, PROCESSES, true), [
      { address: '0.0.0.0', owner: { pid: 812, name: 'dnsmasq' } },
    ]);
    assert.deepEqual(udpPortHoldersFrom(69, PROC_NET_UDP, PROCESSES, true), [
      { address: '127.0.0.1', owner: { pid: 900, name: '?' } },
    ]);
  });

  it('a free port has no holder', () => {
    assert.deepEqual(udpPortHoldersFrom(68, PROC_NET_UDP, PROCESSES, true), []);
    assert.deepEqual(udpPortHoldersFrom(67, '', PROCESSES, true), []);
  });
});

describe('udpPortHolders over a fake /proc tree', () => {
  const proc = mkdtempSync(join(tmpdir(), 'fake-proc-'));
  after(() => rmSync(proc, { recursive: true, force: true }));
  mkdirSync(join(proc, 'net'));
  writeFileSync(join(proc, 'net', 'udp'), PROC_NET_UDP);
  for (const p of PROCESSES) {
    mkdirSync(join(proc, String(p.pid), 'fd'), { recursive: true });
    p.fdLinks.forEach((link, fd) => symlinkSync(link, join(proc, String(p.pid), 'fd', String(fd))));
    if (p.comm) writeFileSync(join(proc, String(p.pid), 'comm'), `${p.comm}\n`);
  }
  mkdirSync(join(proc, 'self'));
  mkdirSync(join(proc, '4444')); // no fd directory we may read

  it('reads the same answers from files as from texts', () => {
    const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
    assert.deepEqual(udpPortHolders(67, proc), udpPortHoldersFrom(67, PROC_NET_UDP, PROCESSES, le));
    assert.deepEqual(udpPortHolders(69, proc), udpPortHoldersFrom(69, PROC_NET_UDP, PROCESSES, le));
  });

  it('lists only processes holding sockets, with their comm trimmed', () => {
    const seen = [...procProcesses(proc)].sort((a, b) => a.pid - b.pid);
    assert.deepEqual(
      seen.map((p) => [p.pid, p.comm]),
      [
        [1, 'systemd'],
        [812, 'dnsmasq'],
        [813, 'dnsmasq-helper'],
        [900, undefined],
      ],
    );
    assert.deepEqual([...seen[1]!.fdLinks].sort(), [...PROCESSES[1]!.fdLinks].sort());
  });

  it('a /proc without net/udp gives no holders', () => {
    assert.deepEqual(udpPortHolders(67, join(proc, 'missing')), []);
  });
});
