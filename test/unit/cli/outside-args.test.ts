import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import { decideCheckLines, eventsAndMetricsLines } from '../../../src/cli/outside-check.js';
import { restartOnlyChanges, type Config } from '../../../src/daemon/config.js';
import type { Fetch } from '../../../src/pxe/decide.js';

function config(argv: string[]): Config {
  const r = parseArgs(argv);
  assert.equal(r.kind, 'run', r.kind === 'exit' ? r.stderr : '');
  if (r.kind !== 'run') throw new Error('unreachable');
  return r.config;
}

function refused(argv: string[]): string {
  const r = parseArgs(argv);
  assert.equal(r.kind, 'exit', `expected an error for ${argv.join(' ')}`);
  return r.kind === 'exit' ? (r.stderr ?? '') : '';
}

const BASE = ['-d', '-i', 'eth0'];

describe('--decide-url and its settings', () => {
  it('defaults: 2 s timeout, fallback rules, 10 s cache; <nbp> may be left out', () => {
    const c = config([...BASE, '--decide-url', 'http://10.0.0.1:8000/pxe']);
    assert.deepEqual(c.decide, {
      url: 'http://10.0.0.1:8000/pxe',
      timeoutMs: 2000,
      fallback: 'rules',
      cacheMs: 10_000,
    });
    assert.equal(c.nbp, undefined);
  });

  it('takes fractions of seconds and the deny fallback', () => {
    const c = config([
      ...BASE,
      '--decide-url',
      'https://pxe.example/decide?token=x',
      '--decide-timeout',
      '0.5',
      '--decide-cache',
      '0',
      '--decide-fallback',
      'deny',
      'pxelinux.0',
    ]);
    assert.deepEqual(c.decide, {
      url: 'https://pxe.example/decide?token=x',
      timeoutMs: 500,
      fallback: 'deny',
      cacheMs: 0,
    });
  });

  it('refuses settings without a URL, a bad URL and out-of-range times', () => {
    assert.match(refused([...BASE, '--decide-timeout', '1', 'x.0']), /decide-timeout needs --decide-url/);
    assert.match(refused([...BASE, '--decide-url', 'ftp://x/', 'x.0']), /must be an http:\/\/ or https:\/\/ URL/);
    assert.match(refused([...BASE, '--decide-url', 'http://x/', '--decide-timeout', '0', 'x.0']), /from 0.1 to 60/);
    assert.match(
      refused([...BASE, '--decide-url', 'http://x/', '--decide-fallback', 'maybe', 'x.0']),
      /Choices: "rules", "deny"/,
    );
  });

  it('works from the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outside-args-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        interface: ['eth0'],
        'decide-url': 'http://127.0.0.1:9/x',
        'decide-timeout': 1.5,
        remap: ['^a$ b', '^c$ d'],
        'exit-after': 'ack',
        notify: ['udp://127.0.0.1:5000'],
        metrics: '127.0.0.1:9187',
      }),
    );
    const c = config(['-d', '--config', file]);
    assert.equal(c.decide?.timeoutMs, 1500);
    assert.deepEqual(
      c.remap?.map((r) => r.text),
      ['^a$ b', '^c$ d'],
    );
    assert.deepEqual(
      c.events?.exitAfter.map((x) => x.text),
      ['ack'],
    );
    assert.deepEqual(c.events?.notify, [{ text: 'udp://127.0.0.1:5000', host: '127.0.0.1', port: 5000 }]);
    assert.deepEqual(c.metrics, { address: '127.0.0.1', port: 9187 });
  });
});

describe('--remap, --events, --notify, --exit-after, --metrics', () => {
  it('parses each, repeatable ones as lists', () => {
    const c = config([
      ...BASE,
      '--remap',
      '^grubx64\\.efi$ efi64/grubx64.efi',
      '--remap',
      '(?i)^boot/(.*)$ ${lower:&}',
      '--events',
      '-',
      '--notify',
      'udp://127.0.0.1:5000',
      '--notify',
      'udp://collector.lan:6000',
      '--exit-after',
      'transfer-done:vmlinuz',
      '--exit-after',
      'transfer-done:initrd.img',
      '--exit-timeout',
      '300',
      '--metrics',
      '127.0.0.1:9187',
      'pxelinux.0',
    ]);
    assert.equal(c.remap?.length, 2);
    assert.equal(c.events?.file, '-');
    assert.deepEqual(
      c.events?.notify.map((n) => [n.host, n.port]),
      [
        ['127.0.0.1', 5000],
        ['collector.lan', 6000],
      ],
    );
    assert.equal(c.events?.exitAfter.length, 2);
    assert.equal(c.events?.exitTimeout, 300);
    assert.deepEqual(c.metrics, { address: '127.0.0.1', port: 9187 });
  });

  it('makes an events file path absolute', () => {
    assert.equal(config([...BASE, '--events', 'boot.jsonl', 'x.0']).events?.file, join(process.cwd(), 'boot.jsonl'));
  });

  it('refuses what cannot work, with one line naming it', () => {
    assert.match(refused([...BASE, '--remap', 'nospace', 'x.0']), /remap 'nospace': must be 'REGEX REPLACEMENT'/);
    assert.match(refused(['-i', 'eth0', '--events', '-', 'x.0']), /needs -d/);
    assert.match(refused([...BASE, '--notify', 'tcp://x:1', 'x.0']), /udp:\/\/HOST:PORT/);
    assert.match(refused([...BASE, '--exit-after', 'booted', 'x.0']), /unknown event 'booted'/);
    assert.match(refused([...BASE, '--exit-timeout', '5', 'x.0']), /exit-timeout needs --exit-after/);
    assert.match(refused([...BASE, '--metrics', '9187', 'x.0']), /ADDRESS:PORT/);
    assert.match(refused([...BASE, '--metrics', 'localhost:9187', 'x.0']), /ADDRESS:PORT/);
  });

  it('events, notify, exit-after and metrics need a restart; decide and remap do not', () => {
    const a = config([...BASE, 'x.0']);
    const b = config([
      ...BASE,
      '--decide-url',
      'http://x/',
      '--remap',
      '^a$ b',
      '--events',
      '/tmp/e',
      '--notify',
      'udp://1.2.3.4:5',
      '--exit-after',
      'ack',
      '--exit-timeout',
      '9',
      '--metrics',
      '127.0.0.1:1',
      'x.0',
    ]);
    assert.deepEqual(restartOnlyChanges(a, b), ['events', 'notify', 'exit-after', 'exit-timeout', 'metrics']);
  });
});

describe('--check with these options', () => {
  const answering =
    (status: number, body = ''): Fetch =>
    () =>
      Promise.resolve(new Response(status === 204 ? null : body, { status }));

  it('passes a URL that answers or denies; fails one that errs or is down', async () => {
    const c = config([...BASE, '--decide-url', 'http://10.9.9.9/pxe?k=secret']);
    const ok = await decideCheckLines(c, answering(200, '{"file": "pxelinux.0"}'));
    assert.equal(ok[0]!.ok, true);
    assert.match(ok[0]!.text, /^decide-url http:\/\/10\.9\.9\.9\/pxe answers \(200 in \d+ ms\): file=pxelinux\.0/);
    const denied = await decideCheckLines(c, answering(404));
    assert.equal(denied[0]!.ok, true);
    const bad = await decideCheckLines(c, answering(500));
    assert.equal(bad[0]!.ok, false);
    assert.match(bad[0]!.text, /status 500; clients would get the fallback \(rules\)/);
    const down = await decideCheckLines(c, () =>
      Promise.reject(new TypeError('x', { cause: { code: 'ECONNREFUSED' } })),
    );
    assert.match(down[0]!.text, /unreachable \(ECONNREFUSED\)/);
    assert.deepEqual(await decideCheckLines(config([...BASE, 'x.0'])), []);
  });

  it('says whether the events file can be written and the metrics port is free', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outside-check-'));
    const c = config([...BASE, '--events', join(dir, 'e.jsonl'), '--metrics', '127.0.0.1:9187', 'x.0']);
    const free = eventsAndMetricsLines(c, () => []);
    assert.deepEqual(
      free.map((l) => l.ok),
      [true, true],
    );
    const held = eventsAndMetricsLines(c, () => [{ address: '127.0.0.1' }]);
    assert.equal(held[1]!.ok, false);
    const c2 = config([...BASE, '--events', '/nonexistent-dir/e.jsonl', 'x.0']);
    assert.equal(eventsAndMetricsLines(c2)[0]!.ok, false);
  });
});
