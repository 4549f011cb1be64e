import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../../../src/core/counters.js';
import { UserError } from '../../../src/core/errors.js';
import {
  EventBus,
  eventMatches,
  eventTime,
  ExitWatch,
  formatEvent,
  parseExitCondition,
  parseExitConditions,
  type PxeEvent,
} from '../../../src/core/events.js';

const T = eventTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

const done = (file: string, extra: Partial<PxeEvent> = {}): PxeEvent =>
  ({
    type: 'transfer-done',
    time: T,
    ip: '10.0.0.7',
    mac: '52:54:00:12:34:56',
    protocol: 'tftp',
    file,
    bytes: 100,
    seconds: 0.01,
    ...extra,
  }) as PxeEvent;

describe('event formatting', () => {
  it('stamps ISO 8601 UTC with milliseconds', () => {
    assert.equal(T, '2026-01-02T03:04:05.678Z');
  });

  it('writes one JSON line with type, time, mac and ip first', () => {
    const line = formatEvent({
      type: 'offer',
      time: T,
      ip: '0.0.0.0',
      mac: '52:54:00:12:34:56',
      port: 67,
      arch: 'bios',
      file: 'pxelinux.0',
      'next-server': '10.0.0.5',
      rule: 'default',
      'decided-by': 'rules',
    });
    assert.ok(!line.includes('\n'));
    assert.deepEqual(Object.keys(JSON.parse(line) as object).slice(0, 4), ['type', 'time', 'mac', 'ip']);
    assert.equal((JSON.parse(line) as { file: string }).file, 'pxelinux.0');
  });

  it('leaves out an unknown MAC, and a name with a newline stays on one line', () => {
    const line = formatEvent(done('a\nb', { mac: undefined }));
    assert.ok(!line.includes('\n'));
    assert.ok(!('mac' in (JSON.parse(line) as object)));
  });
});

describe('EventBus', () => {
  it('gives each event to every sink; a throwing sink does not stop the others', () => {
    const bus = new EventBus();
    const got: PxeEvent[] = [];
    assert.equal(bus.active, false);
    bus.add({
      emit: () => {
        throw new Error('broken sink');
      },
    });
    const remove = bus.add({ emit: (e) => got.push(e) });
    assert.equal(bus.active, true);
    bus.emit(done('x'));
    assert.equal(got.length, 1);
    assert.equal(bus.failures, 1);
    remove();
    bus.emit(done('y'));
    assert.equal(got.length, 1);
  });

  it('caps ignored events and says how many were left out', () => {
    let now = 0;
    const bus = new EventBus(new RateLimiter(1, 2, () => now));
    const got: PxeEvent[] = [];
    bus.add({ emit: (e) => got.push(e) });
    const ignored: PxeEvent = { type: 'ignored', time: T, ip: '10.0.0.9', port: 67, reason: 'not-pxe-client' };
    for (let i = 0; i < 10; i++) bus.emit(ignored);
    assert.equal(got.length, 2, 'the burst');
    bus.emit(done('x'));
    assert.equal(got.length, 3, 'other events are not capped');
    now += 1000;
    bus.emit(ignored);
    assert.equal(got.length, 4);
    assert.equal((got[3] as { suppressed?: number }).suppressed, 8);
  });
});

describe('--exit-after conditions', () => {
  it('parses EVENT:MATCH, EVENT alone, and a MAC with colons', () => {
    assert.deepEqual(parseExitCondition('transfer-done:vmlinuz'), {
      text: 'transfer-done:vmlinuz',
      type: 'transfer-done',
      match: 'vmlinuz',
    });
    assert.equal(parseExitCondition('ack').match, '');
    assert.equal(parseExitCondition('offer:52:54:00:12:34:56').match, '52:54:00:12:34:56');
    assert.equal(parseExitConditions('ack').length, 1);
    assert.equal(parseExitConditions(undefined).length, 0);
  });

  it('refuses an unknown event with the list of known ones', () => {
    assert.throws(
      () => parseExitCondition('transfer-finished:x'),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(e.message, /unknown event 'transfer-finished'.*transfer-done/);
        return true;
      },
    );
    assert.throws(() => parseExitConditions([3]), UserError);
  });

  const cases: [string, PxeEvent, boolean][] = [
    ['transfer-done:vmlinuz', done('vmlinuz'), true],
    ['transfer-done:vmlinuz', done('debian/vmlinuz'), true],
    ['transfer-done:vmlinuz', done('vmlinuz.old'), false],
    ['transfer-done:vmlinuz', done('x', { type: 'transfer-failed' }), false],
    ['transfer-done:VMLINUZ', done('vmlinuz'), true],
    ['transfer-done:grubx64.efi', done('efi64/grubx64.efi', { requested: 'grubx64.efi' }), true],
    ['transfer-done:52-54-00-12-34-56', done('x'), true],
    ['transfer-done:52:54:00:12:34:56', done('x'), true],
    ['transfer-done:10.0.0.7', done('x'), true],
    ['transfer-done:*.efi', done('efi64/syslinux.efi'), true],
    ['transfer-done:*.efi', done('pxelinux.0'), false],
    ['transfer-done', done('anything'), true],
    [
      'http-request:boot.ipxe',
      {
        type: 'http-request',
        time: T,
        ip: '1.2.3.4',
        method: 'GET',
        path: '/boot.ipxe?x=1',
        status: 200,
        bytes: 1,
        seconds: 0,
      },
      true,
    ],
    ['denied:decide-denied', { type: 'denied', time: T, port: 67, reason: 'decide-denied' }, true],
  ];
  for (const [cond, e, want] of cases) {
    it(`${cond} ${want ? 'matches' : 'does not match'} ${e.type} ${'file' in e ? e.file : ''}`, () => {
      assert.equal(eventMatches(parseExitCondition(cond), e), want);
    });
  }

  it('ExitWatch fires once, when every condition has happened, in any order', () => {
    let fired = 0;
    const w = new ExitWatch(
      [parseExitCondition('transfer-done:vmlinuz'), parseExitCondition('transfer-done:initrd.img')],
      () => fired++,
    );
    w.emit(done('initrd.img'));
    assert.equal(fired, 0);
    assert.deepEqual(
      w.pending.map((c) => c.text),
      ['transfer-done:vmlinuz'],
    );
    w.emit(done('initrd.img'));
    w.emit(done('vmlinuz'));
    assert.equal(fired, 1);
    assert.ok(w.done);
    w.emit(done('vmlinuz'));
    assert.equal(fired, 1);
  });
});
