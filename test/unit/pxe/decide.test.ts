import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/core/errors.js';
import type { PxeClient } from '../../../src/pxe/client.js';
import {
  checkDecideUrl,
  Decider,
  decideRequestUrl,
  parseDecideAnswer,
  type DecideCounter,
  type DecideReport,
  type Fetch,
} from '../../../src/pxe/decide.js';

const UUID = Buffer.concat([Buffer.of(0), Buffer.from('7e57ab00000040008000525400123456', 'hex')]);

function client(mac = '52:54:00:12:34:56', extra: Partial<PxeClient> = {}): PxeClient {
  return {
    mac,
    arch: 7,
    archName: 'efi-x64',
    archAssumed: false,
    vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
    uuid: UUID,
    isIpxe: false,
    ...extra,
  };
}

/** A fake fetch: answers by the `mac` parameter, records every URL asked. */
function fakeFetch(answer: (mac: string, url: URL) => { status: number; body?: string; delayMs?: number } | 'refuse'): {
  fetch: Fetch;
  asked: URL[];
} {
  const asked: URL[] = [];
  const fetch: Fetch = (url, init) => {
    const u = new URL(url);
    asked.push(u);
    const a = answer(u.searchParams.get('mac') ?? '', u);
    if (a === 'refuse') return Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }));
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => resolve(new Response(a.status === 204 ? null : (a.body ?? ''), { status: a.status })),
        a.delayMs ?? 0,
      );
      init.signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new DOMException('aborted', 'AbortError'));
      });
    });
  };
  return { fetch, asked };
}

const BASE = {
  url: 'http://127.0.0.1:9/decide?token=s3cret',
  timeoutMs: 200,
  fallback: 'rules' as const,
  cacheMs: 10_000,
};

function decider(fetch: Fetch, extra: Partial<ConstructorParameters<typeof Decider>[0]> = {}, now?: () => number) {
  const reports: DecideReport[] = [];
  const counts: DecideCounter[] = [];
  const d = new Decider(
    { ...BASE, http: true, ...extra },
    { fetch, onReport: (r) => reports.push(r), count: (k) => counts.push(k), ...(now ? { now } : {}) },
  );
  return { d, reports, counts };
}

const q = (mac?: string, extra: Partial<PxeClient> = {}) => ({
  client: client(mac, extra),
  port: 67 as const,
  interface: 'eth0',
});

describe('the decision request', () => {
  it('asks every documented parameter, keeping the URL own query', () => {
    const u = new URL(decideRequestUrl(BASE.url, { ...q(), relay: '10.1.0.1' }));
    assert.equal(u.searchParams.get('token'), 's3cret');
    assert.deepEqual(Object.fromEntries([...u.searchParams].filter(([k]) => k !== 'token')), {
      mac: '52:54:00:12:34:56',
      uuid: '7e57ab00-0000-4000-8000-525400123456',
      arch: 'efi-x64',
      'user-class': '',
      'vendor-class': 'PXEClient:Arch:00007:UNDI:003016',
      interface: 'eth0',
      relay: '10.1.0.1',
      port: '67',
    });
  });

  it('checks the URL', () => {
    assert.equal(checkDecideUrl('http://10.0.0.1:8080/pxe'), 'http://10.0.0.1:8080/pxe');
    assert.throws(() => checkDecideUrl('ftp://x/'), UserError);
    assert.throws(() => checkDecideUrl('not a url'), UserError);
  });
});

describe('decision answers are validated as boot rules', () => {
  it('takes the answer keys', () => {
    const r = parseDecideAnswer('{"file": "efi64/syslinux.efi", "next-server": "10.0.0.9"}');
    assert.equal(r.file, 'efi64/syslinux.efi');
    assert.equal(r.nextServer, '10.0.0.9');
    const k = parseDecideAnswer(
      '{"kernel": "vmlinuz", "initrd": ["a.img", "b.img"], "cmdline": "console=ttyS0,115200"}',
    );
    assert.deepEqual(k.initrd, ['a.img', 'b.img']);
  });

  const bad: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['[1]', /must be a JSON object/],
    ['{"mac": "52:54:00:12:34:56", "file": "x"}', /unknown key 'mac'/],
    ['{}', /no file= .*and no kernel=/],
    ['{"file": "x", "next-server": "nowhere"}', /not an IPv4 address/],
    ['{"kernel": "vmlinuz", "cmdline": "a\\nb"}', /newline/],
    ['{"file": 3}', /must be a string/],
  ];
  for (const [body, why] of bad) {
    it(`refuses ${body}`, () => {
      assert.throws(
        () => parseDecideAnswer(body),
        (e: unknown) => e instanceof UserError && why.test(e.message),
      );
    });
  }

  it('refuses kernel= and http:/// when our HTTP server is off', () => {
    assert.throws(() => parseDecideAnswer('{"kernel": "vmlinuz"}', false), /--http/);
    assert.throws(() => parseDecideAnswer('{"file": "http:///boot.ipxe"}', false), /--http/);
    assert.equal(parseDecideAnswer('{"file": "http://10.0.0.1/boot.ipxe"}', false).file, 'http://10.0.0.1/boot.ipxe');
  });
});

describe('Decider', () => {
  it('200 answers, 204/403/404 deny, other statuses fall back', async () => {
    const statuses: Record<string, number> = {
      '00:00:00:00:00:01': 204,
      '00:00:00:00:00:02': 403,
      '00:00:00:00:00:03': 404,
      '00:00:00:00:00:04': 500,
      '00:00:00:00:00:05': 302,
    };
    const { fetch } = fakeFetch((mac) => ({ status: statuses[mac] ?? 200, body: '{"file": "x.efi"}' }));
    const { d, reports } = decider(fetch);
    const answer = await d.ask(q('52:54:00:00:00:09'));
    assert.equal(answer.kind, 'answer');
    assert.equal(answer.kind === 'answer' && answer.rule.file, 'x.efi');
    for (const mac of ['00:00:00:00:00:01', '00:00:00:00:00:02', '00:00:00:00:00:03']) {
      assert.deepEqual(await d.ask(q(mac)), { kind: 'deny', status: statuses[mac] });
    }
    assert.deepEqual(await d.ask(q('00:00:00:00:00:04')), { kind: 'fallback', why: 'status 500' });
    assert.deepEqual(
      await d.ask(q('00:00:00:00:00:05')),
      { kind: 'fallback', why: 'status 302' },
      'redirects are not followed',
    );
    assert.equal(reports.length, 6);
    assert.equal(reports[0]!.url, 'http://127.0.0.1:9/decide', 'the token stays out of events and logs');
    assert.deepEqual(
      reports.map((r) => r.outcome),
      ['answer', 'deny', 'deny', 'deny', 'fallback', 'fallback'],
    );
  });

  it('a timeout, an unreachable server, a bad or oversized body fall back', async () => {
    const { fetch } = fakeFetch((mac) =>
      mac === '00:00:00:00:00:01'
        ? { status: 200, body: '{}', delayMs: 5000 }
        : mac === '00:00:00:00:00:02'
          ? 'refuse'
          : mac === '00:00:00:00:00:03'
            ? { status: 200, body: '{"file": "x", "arch": "bios"}' }
            : { status: 200, body: `{"file": "${'x'.repeat(20_000)}"}` },
    );
    const { d, reports } = decider(fetch);
    const t0 = Date.now();
    assert.deepEqual(await d.ask(q('00:00:00:00:00:01')), { kind: 'fallback', why: 'timeout' });
    const waited = Date.now() - t0;
    assert.ok(waited >= 190 && waited < 1000, `the timeout bounds the wait (${waited} ms)`);
    assert.deepEqual(await d.ask(q('00:00:00:00:00:02')), {
      kind: 'fallback',
      why: 'unreachable',
      detail: 'ECONNREFUSED',
    });
    const bad = await d.ask(q('00:00:00:00:00:03'));
    assert.equal(bad.kind === 'fallback' && bad.why, 'bad-answer');
    assert.deepEqual(await d.ask(q('00:00:00:00:00:04')), { kind: 'fallback', why: 'too-large' });
    assert.deepEqual(
      reports.map((r) => r.status),
      ['timeout', 'unreachable', 200, 'too-large'],
    );
    assert.match(reports[2]!.detail!, /unknown key 'arch'/);
  });

  it('caches answers and denials per question for the cache time; failures are not cached', async () => {
    let now = 1_000_000;
    let fail = false;
    const { fetch, asked } = fakeFetch((mac) =>
      fail ? 'refuse' : { status: mac.endsWith('2') ? 403 : 200, body: '{"file": "a"}' },
    );
    const { d, counts } = decider(fetch, { cacheMs: 10_000 }, () => now);
    await d.ask(q('00:00:00:00:00:01'));
    await d.ask(q('00:00:00:00:00:02'));
    const hit = d.ask(q('00:00:00:00:00:01'));
    assert.ok(!(hit instanceof Promise), 'a cached outcome comes back at once, not as a promise');
    assert.equal(hit.kind, 'answer');
    assert.deepEqual(d.ask(q('00:00:00:00:00:02')), { kind: 'deny', status: 403 });
    assert.equal(asked.length, 2);
    assert.equal(counts.filter((c) => c === 'decide-cache-hit').length, 2);
    // The iPXE stage of the same machine is another question.
    await d.ask(q('00:00:00:00:00:01', { userClass: 'iPXE', isIpxe: true }));
    assert.equal(asked.length, 3);
    now += 10_001;
    fail = true;
    const after = await d.ask(q('00:00:00:00:00:01'));
    assert.equal(after.kind, 'fallback', 'expired: asked again');
    assert.equal(asked.length, 4);
    assert.ok(d.ask(q('00:00:00:00:00:01')) instanceof Promise, 'a failure is not cached');
  });

  it('concurrent questions about one client are one request', async () => {
    const { fetch, asked } = fakeFetch(() => ({ status: 200, body: '{"file": "a"}', delayMs: 50 }));
    const { d, counts } = decider(fetch);
    const all = await Promise.all(Array.from({ length: 10 }, () => Promise.resolve(d.ask(q('00:00:00:00:00:01')))));
    assert.equal(asked.length, 1);
    assert.ok(all.every((x) => x.kind === 'answer'));
    assert.equal(counts.filter((c) => c === 'decide-joined').length, 9);
    assert.equal(d.inFlight, 0);
  });

  it('bounds the requests in flight: beyond the bound, a question falls back at once', async () => {
    const { fetch, asked } = fakeFetch(() => ({ status: 200, body: '{"file": "a"}', delayMs: 50 }));
    const { d, counts } = decider(fetch, { maxInFlight: 3 });
    const pending = [1, 2, 3].map((i) => Promise.resolve(d.ask(q(`00:00:00:00:00:0${i}`))));
    assert.equal(d.inFlight, 3);
    assert.deepEqual(d.ask(q('00:00:00:00:00:04')), { kind: 'fallback', why: 'busy' });
    assert.ok(counts.includes('decide-busy'));
    await Promise.all(pending);
    assert.equal(asked.length, 3);
    assert.ok(d.ask(q('00:00:00:00:00:04')) instanceof Promise, 'room again');
  });

  it('keeps a decided kernel answer by MAC for the iPXE script request', async () => {
    const { fetch } = fakeFetch(() => ({ status: 200, body: '{"kernel": "vmlinuz", "cmdline": "quiet"}' }));
    const { d } = decider(fetch);
    await d.ask(q('00:00:00:00:00:01', { userClass: 'iPXE', isIpxe: true }));
    assert.equal(d.scriptRule('00:00:00:00:00:01')?.kernel, 'vmlinuz');
    assert.equal(d.scriptRule('00:00:00:00:00:02'), undefined);
  });

  it('close() aborts what is in flight: it falls back', async () => {
    const { fetch } = fakeFetch(() => ({ status: 200, body: '{"file": "a"}', delayMs: 5000 }));
    const { d } = decider(fetch, { timeoutMs: 10_000 });
    const p = d.ask(q('00:00:00:00:00:01'));
    d.close();
    assert.equal((await p).kind, 'fallback');
  });
});
