import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/core/errors.js';
import { checkAccess, parseClientPattern, parseClientPatterns } from '../../../src/pxe/acl.js';
import { describeClient, uuidText, type PxeClient } from '../../../src/pxe/client.js';
import { decodeDhcp } from '../../../src/wire/dhcp-packet.js';
import { fixture, request, UUID, type RequestSpec } from '../../helpers/packets.js';

function client(spec: RequestSpec = {}): PxeClient {
  const c = describeClient(request(spec));
  assert.notEqual(typeof c, 'string');
  return c as PxeClient;
}

const UUID_TEXT = '7e57ab00-0000-4000-8000-525400123456'; // helpers' UUID, wire order
const pats = (...t: string[]) => t.map((x) => parseClientPattern(x, 'test'));

describe('client patterns', () => {
  it('parses full MACs in any case and with - separators', () => {
    for (const t of ['52:54:00:12:34:56', '52-54-00-12-34-56', '52:54:00:12:34:56'.toUpperCase(), '52:54:0:12:34:56']) {
      const p = parseClientPattern(t, 'test');
      assert.equal(p.kind, 'mac', t);
      assert.equal(checkAccess({ allow: [p] }, client()), undefined, t);
    }
  });

  it('parses UUIDs with or without dashes', () => {
    for (const t of [UUID_TEXT, UUID_TEXT.replace(/-/g, ''), UUID_TEXT.toUpperCase()]) {
      const p = parseClientPattern(t, 'test');
      assert.equal(p.kind, 'uuid', t);
      assert.equal(checkAccess({ allow: [p] }, client()), undefined, t);
    }
  });

  it('matches OUI prefixes, per-octet wildcards and a lone *', () => {
    const mac = (m: string) => client({ mac: m });
    const [oui, mid, all] = pats('b8:27:eb:*', '*:*:*:*:*:56', '*');
    assert.equal(checkAccess({ deny: [oui!] }, mac('b8:27:eb:01:02:03'))?.reason, 'denied');
    assert.equal(checkAccess({ deny: [oui!] }, mac('b8:27:ec:01:02:03')), undefined);
    assert.equal(checkAccess({ deny: [mid!] }, mac('aa:bb:cc:dd:ee:56'))?.reason, 'denied');
    assert.equal(checkAccess({ deny: [mid!] }, mac('aa:bb:cc:dd:ee:57')), undefined);
    assert.equal(checkAccess({ deny: [all!] }, mac('aa:bb:cc:dd:ee:57'))?.reason, 'denied');
  });

  it('rejects what is neither, naming the option', () => {
    for (const bad of [
      'zz',
      '52:54:00:12:34',
      '52:54:00:12:34:56:78',
      '52:54:00:123:34:56',
      '7e57ab00-0000',
      'b8:27:*:eb',
      '',
    ]) {
      assert.throws(
        () => parseClientPatterns('deny', [bad]),
        (e: unknown) => e instanceof UserError && e.message.startsWith('deny'),
        `'${bad}'`,
      );
    }
    assert.throws(() => parseClientPatterns('allow', [42]), UserError);
  });

  it('takes one string or a list', () => {
    assert.equal(parseClientPatterns('allow', 'b8:27:eb:*').length, 1);
    assert.equal(parseClientPatterns('allow', ['b8:27:eb:*', UUID_TEXT]).length, 2);
    assert.deepEqual(parseClientPatterns('allow', undefined), []);
  });
});

describe('checkAccess', () => {
  it('answers everyone with empty lists', () => {
    assert.equal(checkAccess({}, client()), undefined);
    assert.equal(checkAccess({ allow: [], deny: [] }, client()), undefined);
  });

  it('with any allow entry, answers only clients that fit one', () => {
    const acl = { allow: pats('b8:27:eb:*', UUID_TEXT) };
    assert.equal(checkAccess(acl, client()), undefined, 'allowed by UUID');
    assert.equal(checkAccess(acl, client({ mac: 'b8:27:eb:00:00:01', uuid: null })), undefined, 'allowed by MAC');
    const r = checkAccess(acl, client({ mac: 'aa:bb:cc:dd:ee:ff', uuid: null }));
    assert.deepEqual(r, { reason: 'not-allowed', detail: 'matches no --allow entry' });
  });

  it('a UUID entry never fits a client that sent no option 97', () => {
    assert.equal(checkAccess({ allow: pats(UUID_TEXT) }, client({ uuid: null }))?.reason, 'not-allowed');
  });

  it('deny wins over allow and names the entry', () => {
    const acl = { allow: pats('52:54:00:*'), deny: pats('52:54:00:12:34:56') };
    assert.deepEqual(checkAccess(acl, client()), { reason: 'denied', detail: 'matches --deny 52:54:00:12:34:56' });
    assert.equal(checkAccess(acl, client({ mac: '52:54:00:12:34:57' })), undefined);
  });

  it('a UUID fits as dmidecode prints it and as it travels (EFI order, OVMF capture)', () => {
    const c = describeClient(decodeDhcp(fixture('ovmf-edk2-discover'))) as PxeClient;
    assert.equal(uuidText(c.uuid!), '00ab577e-0000-0040-8000-525400770002', 'wire order');
    for (const t of ['7e57ab00-0000-4000-8000-525400770002', '00ab577e-0000-0040-8000-525400770002']) {
      assert.equal(checkAccess({ deny: pats(t) }, c)?.reason, 'denied', t);
    }
    assert.equal(checkAccess({ deny: pats('7e57ab00-0000-4000-8000-525400770001') }, c), undefined);
  });

  it('UUIDs compare all 16 bytes', () => {
    const other = Buffer.from(UUID);
    other[16] = 0x57;
    assert.equal(checkAccess({ deny: pats(UUID_TEXT) }, client())?.reason, 'denied');
    assert.equal(checkAccess({ deny: pats(UUID_TEXT) }, client({ uuid: other })), undefined);
  });
});
