import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProbeArgs } from '../../../src/cli/probe-args.js';
import { diagnose } from '../../../src/probe/diagnose.js';
import type { TransferReport } from '../../../src/probe/fetch.js';
import { textReport } from '../../../src/probe/report.js';
import type { ProbeResult } from '../../../src/probe/run.js';
import {
  applyOrigins,
  decisionFor,
  decisionText,
  originFor,
  originOfXCache,
  originText,
  parseStatus,
  readStatus,
  statusUrlOf,
  type StatusReport,
  type StatusView,
} from '../../../src/probe/status.js';

const MAC = '52:54:00:7c:00:01';
const URL = 'http://10.0.0.5:9187/status';

/** A /status page as the daemon writes it (src/daemon/metrics.ts statusOf), trimmed to what matters. */
const PAGE = {
  version: '1.0.0',
  'active-transfers': { tftp: 0, http: 0, list: [] },
  'decide-url': { url: 'http://127.0.0.1:8000/pxe', inFlight: 0, fallback: 'rules' },
  'recent-transfers': [
    { time: 't4', protocol: 'tftp', ip: '10.0.0.100', mac: MAC, file: 'vmlinuz', origin: 'cache-hit' },
    { time: 't3', protocol: 'tftp', ip: '10.0.0.101', file: 'vmlinuz', origin: 'local' },
    {
      time: 't2',
      protocol: 'tftp',
      ip: '10.0.0.100',
      mac: MAC,
      file: 'efi64/grubx64.efi',
      requested: 'grubx64.efi',
      origin: 'cache-miss',
    },
    { time: 't1', protocol: 'tftp', ip: '10.0.0.100', mac: MAC, file: 'vmlinuz', origin: 'cache-miss' },
    { time: 't0', protocol: 'http', ip: '10.0.0.100', mac: MAC, file: 'initrd.img', origin: 'local' },
    { time: 't0', protocol: 'tftp', ip: '10.0.0.100', file: 'odd', origin: 'elsewhere' },
  ],
  'clients-seen': [
    {
      mac: '52:54:00:7C:00:01',
      arch: 'efi-x64',
      ip: '10.0.0.100',
      lastSeen: '2026-12-02T15:03:05.408Z',
      last: { port: 4011, file: 'ipxe.efi', rule: 'decide-url (file=ipxe.efi)', decidedBy: 'decide-url' },
      decide: {
        time: '2026-12-02T15:03:05.400Z',
        url: 'http://127.0.0.1:8000/pxe',
        status: 200,
        ms: 12,
        outcome: 'answer',
      },
    },
    { mac: '52:54:00:7c:00:02', arch: 'bios', lastSeen: 'x', last: { port: 67, refused: 'denied' } },
    'not an object',
  ],
};

const view = (): StatusView => {
  const v = parseStatus(JSON.stringify(PAGE));
  assert.notEqual(typeof v, 'string');
  return v as StatusView;
};

const tftp = (file: string, ok = true): TransferReport => ({
  file,
  server: '10.0.0.5',
  role: 'kernel',
  ok,
  ...(ok ? { bytes: 10, sha256: 'ab', ms: 1, kBps: 10, blksize: 1468, windowsize: 4, origin: 'unknown' as const } : {}),
});

describe('pxe-probe --status: reading the daemon’s /status', () => {
  it('the status page of a metrics listener, or the page itself; http:// only', () => {
    assert.equal(statusUrlOf('http://127.0.0.1:9187'), 'http://127.0.0.1:9187/status');
    assert.equal(statusUrlOf('http://127.0.0.1:9187/'), 'http://127.0.0.1:9187/status');
    assert.equal(statusUrlOf('http://10.0.0.5:9187/status'), 'http://10.0.0.5:9187/status');
    assert.equal(statusUrlOf('http://mgmt/pxe/'), 'http://mgmt/pxe/status');
    assert.throws(() => statusUrlOf('https://10.0.0.5:9187'), TypeError);
    assert.throws(() => statusUrlOf('10.0.0.5:9187'));
  });

  it('parses what it needs, skipping entries of the wrong shape; refuses what is not the page', () => {
    const v = view();
    assert.equal(v.clients.length, 2);
    assert.equal(v.clients[0]!.mac, MAC, 'MACs compared in lower case');
    assert.equal(v.transfers.length, 5, 'an unknown origin is not an entry');
    assert.equal(parseStatus('<html>'), 'the answer is not JSON');
    assert.equal(parseStatus('{"metrics": 1}'), 'the answer is not the status page of pxe-pdhcp');
    assert.deepEqual(parseStatus('{"clients-seen": []}'), { clients: [], transfers: [] });
  });

  it('finds this MAC’s last answer, with the decision URL’s request', () => {
    const d = decisionFor(view(), MAC.toUpperCase());
    assert.equal(d?.decidedBy, 'decide-url');
    assert.equal(d?.rule, 'decide-url (file=ipxe.efi)');
    assert.deepEqual(d?.decide, {
      url: 'http://127.0.0.1:8000/pxe',
      status: 200,
      ms: 12,
      outcome: 'answer',
      time: '2026-12-02T15:03:05.400Z',
    });
    assert.equal(decisionFor(view(), '52:54:00:7c:00:09'), undefined);
  });

  it('a TFTP file’s origin: the newest transfer of that name to this address and MAC, as asked or as served', () => {
    const v = view();
    const me = { ip: '10.0.0.100', mac: MAC };
    assert.equal(originFor(v, me, 'vmlinuz'), 'cache-hit', 'the newest');
    assert.equal(originFor(v, me, '/vmlinuz'), 'cache-hit', 'a leading slash is the same name');
    assert.equal(originFor(v, me, 'grubx64.efi'), 'cache-miss', 'as asked, before --remap');
    assert.equal(originFor(v, me, 'efi64/grubx64.efi'), 'cache-miss', 'as served');
    assert.equal(originFor(v, me, 'initrd.img'), undefined, 'an HTTP transfer is not a TFTP one');
    assert.equal(originFor(v, { ip: '10.0.0.101', mac: MAC }, 'vmlinuz'), 'local', 'no MAC known: the address');
    assert.equal(originFor(v, { ip: '10.0.0.100', mac: '52:54:00:7c:00:09' }, 'vmlinuz'), undefined, 'another MAC');
    assert.equal(originFor(v, { mac: MAC }, 'vmlinuz'), 'cache-hit', 'no lease: by MAC only');
    assert.equal(originFor(v, { mac: '52:54:00:7c:00:09' }, 'vmlinuz'), undefined);
  });

  it('TFTP files get their origin, or unknown; failures and HTTP files are left as they are', () => {
    const http: TransferReport = { ...tftp('http://10.0.0.5/x'), protocol: 'http', origin: 'cache-miss' };
    const list = [tftp('vmlinuz'), tftp('nowhere'), tftp('missing', false), http];
    applyOrigins(list, view(), { ip: '10.0.0.100', mac: MAC });
    assert.deepEqual(
      list.map((t) => t.origin),
      ['cache-hit', 'unknown', undefined, 'cache-miss'],
    );
  });

  it('HTTP: X-Cache says hit or miss; no header is a local file', () => {
    assert.equal(originOfXCache('hit'), 'cache-hit');
    assert.equal(originOfXCache('MISS'), 'cache-miss');
    assert.equal(originOfXCache(undefined), 'local');
    assert.equal(originOfXCache('stale'), 'unknown');
    assert.deepEqual((['local', 'cache-hit', 'cache-miss', 'unknown'] as const).map(originText), [
      'local',
      'cache hit',
      'cache miss',
      'unknown source',
    ]);
  });

  it('one line says which rule or decision-URL answer decided', () => {
    const ok = (client?: Extract<StatusReport, { ok: true }>['client']): StatusReport => ({
      url: URL,
      ok: true,
      ...(client ? { client } : {}),
    });
    const decide = { url: 'http://127.0.0.1:8000/pxe', status: 200, ms: 12, outcome: 'answer' };
    assert.equal(
      decisionText(
        ok({ mac: MAC, port: 67, file: 'pxelinux.0', rule: 'rule 2 (arch=bios,file=pxelinux.0)', decidedBy: 'rules' }),
      ),
      'Decided by: rule 2 (arch=bios,file=pxelinux.0) [port 67, file pxelinux.0]',
    );
    assert.equal(
      decisionText(
        ok({
          mac: MAC,
          port: 4011,
          file: 'ipxe.efi',
          rule: 'decide-url (file=ipxe.efi)',
          decidedBy: 'decide-url',
          decide,
        }),
      ),
      'Decided by: decide-url http://127.0.0.1:8000/pxe (HTTP 200 in 12 ms): file=ipxe.efi [port 4011, file ipxe.efi]',
    );
    assert.equal(
      decisionText(
        ok({
          mac: MAC,
          port: 67,
          file: 'pxelinux.0',
          rule: 'default, after decide-url timeout',
          decidedBy: 'fallback',
          decide: { ...decide, status: 'timeout', ms: 2001, outcome: 'fallback' },
        }),
      ),
      'Decided by: the local rules (default), after decide-url http://127.0.0.1:8000/pxe (timeout in 2001 ms) failed [port 67, file pxelinux.0]',
    );
    assert.equal(
      decisionText(
        ok({
          mac: MAC,
          port: 67,
          file: 'x',
          rule: 'rule 1 (file=x), after decide-url status 500',
          decidedBy: 'fallback',
        }),
      ),
      'Decided by: the local rules (rule 1 (file=x)), after decide-url status 500 [port 67, file x]',
    );
    assert.equal(
      decisionText(
        ok({
          mac: MAC,
          port: 67,
          refused: 'decide-denied',
          decide: { ...decide, status: 404, ms: 3, outcome: 'deny' },
        }),
      ),
      'Decided by: nothing was sent (decide-denied), decide-url http://127.0.0.1:8000/pxe (HTTP 404 in 3 ms) [port 67]',
    );
    assert.equal(
      decisionText(ok({ mac: MAC, port: 67, refused: 'denied', decide })),
      'Decided by: nothing was sent (denied) [port 67]',
      'a refusal of our own says nothing of the decision URL',
    );
    assert.equal(decisionText(ok()), `Decided by: unknown (the daemon at ${URL} has not seen this MAC)`);
    assert.equal(
      decisionText({ url: URL, ok: false, error: 'connect ECONNREFUSED 10.0.0.5:9187' }),
      `Decided by: unknown (status ${URL} not read: connect ECONNREFUSED 10.0.0.5:9187)`,
    );
  });

  it('readStatus: reads the page once, fills in origins, reports a failure as data', async () => {
    const asked: [string, number][] = [];
    const list = [tftp('grubx64.efi')];
    const got = await readStatus('http://10.0.0.5:9187', { ip: '10.0.0.100', mac: MAC }, list, (url, ms) => {
      asked.push([url, ms]);
      return Promise.resolve({ ok: true, body: JSON.stringify(PAGE) });
    });
    assert.deepEqual(asked, [[URL, 3000]]);
    assert.equal(got.ok && got.client?.decidedBy, 'decide-url');
    assert.equal(list[0]!.origin, 'cache-miss');
    const down = await readStatus('http://10.0.0.5:9187', { mac: MAC }, [], () =>
      Promise.resolve({ ok: false, error: 'connect ECONNREFUSED 10.0.0.5:9187' }),
    );
    assert.deepEqual(down, { url: URL, ok: false, error: 'connect ECONNREFUSED 10.0.0.5:9187' });
    const html = await readStatus(URL, { mac: MAC }, [], () => Promise.resolve({ ok: true, body: '<html>' }));
    assert.deepEqual(html, { url: URL, ok: false, error: 'the answer is not JSON' });
    const bad = await readStatus('ftp://x', { mac: MAC }, []);
    assert.equal(bad.ok, false);
  });
});

describe('pxe-probe --status: command line, findings, report', () => {
  it('--status takes the metrics listener’s URL; anything else is a usage error', () => {
    const good = parseProbeArgs(['-i', 'eth1', '--mac', MAC, '--status', 'http://127.0.0.1:9187']);
    assert.equal(good.kind === 'run' && good.options.statusUrl, 'http://127.0.0.1:9187/status');
    const none = parseProbeArgs(['-i', 'eth1', '--mac', MAC]);
    assert.equal(none.kind === 'run' && none.options.statusUrl, undefined);
    const bad = parseProbeArgs(['-i', 'eth1', '--mac', MAC, '--status', '127.0.0.1:9187']);
    assert.equal(bad.kind, 'exit');
    assert.equal(bad.kind === 'exit' && bad.code, 2);
    assert.match(
      bad.kind === 'exit' ? bad.stderr! : '',
      /^pxe-probe: --status: '127\.0\.0\.1:9187' is not the http:\/\/ URL/,
    );
    const missing = parseProbeArgs(['-i', 'eth1', '--mac', MAC, '--status']);
    assert.equal(missing.kind === 'exit' && missing.code, 2);
  });

  const result = (status?: StatusReport, transfers: TransferReport[] = []): ProbeResult => ({
    interface: 'eth1',
    mac: MAC,
    arch: 0,
    archName: 'bios',
    firmware: 'pxe-rom',
    offers: [],
    lease: { address: '10.0.0.100', server: '10.0.0.1', acked: true, answer: 'ACK' },
    plan: { kind: 'none', reason: 'no offers' },
    final: { nextServer: '10.0.0.5', file: 'pxelinux.0', from: '10.0.0.5' },
    ...(transfers.length ? { fetch: { transfers, ok: true } } : {}),
    ...(status ? { status } : {}),
    released: true,
    findings: [],
    ok: true,
  });
  const codes = (r: ProbeResult): string[] => diagnose(r).map((f) => f.code);

  it('an unreadable page, an unseen MAC and a fallback are warnings, not failures', () => {
    const down: StatusReport = { url: URL, ok: false, error: 'no answer within 3 s' };
    assert.ok(codes(result(down)).includes('status-unreadable'));
    assert.equal(diagnose(result(down)).find((f) => f.code === 'status-unreadable')?.level, 'warning');
    assert.ok(codes(result({ url: URL, ok: true })).includes('status-client-unknown'));
    const fellBack: StatusReport = {
      url: URL,
      ok: true,
      client: {
        mac: MAC,
        port: 67,
        file: 'pxelinux.0',
        rule: 'default, after decide-url unreachable',
        decidedBy: 'fallback',
        decide: {
          url: 'http://127.0.0.1:8000/pxe',
          status: 'unreachable',
          ms: 1,
          outcome: 'fallback',
          detail: 'ECONNREFUSED',
        },
      },
    };
    assert.match(
      diagnose(result(fellBack)).find((f) => f.code === 'decide-url-fell-back')?.text ?? '',
      /http:\/\/127\.0\.0\.1:8000\/pxe failed \(unreachable: ECONNREFUSED\)/,
    );
    assert.deepEqual(
      codes(result()).filter((c) => /^(status|decide)-/.test(c)),
      [],
      'without --status, nothing is said of it',
    );
  });

  it('the text report: the decision after the boot line, each file’s origin at the end of its line', () => {
    const hit = { ...tftp('vmlinuz'), origin: 'cache-hit' as const };
    const text = textReport(
      result(
        {
          url: URL,
          ok: true,
          client: { mac: MAC, port: 67, file: 'pxelinux.0', rule: 'default', decidedBy: 'rules' },
        },
        [{ ...tftp('pxelinux.0'), role: 'boot file', origin: 'local' }, hit, tftp('initrd.img')],
      ),
    );
    const lines = text.split('\n');
    const boot = lines.findIndex((l) => l.startsWith('Boot: '));
    assert.equal(lines[boot + 1], 'Decided by: default [port 67, file pxelinux.0]');
    assert.match(text, /^ {2}boot file pxelinux\.0: .* sha256 ab \[local\]$/m);
    assert.match(text, /^ {2}kernel {4}vmlinuz: .* sha256 ab \[cache hit\]$/m);
    assert.match(text, /^ {2}kernel {4}initrd\.img: .* sha256 ab \[unknown source\]$/m);
  });
});
