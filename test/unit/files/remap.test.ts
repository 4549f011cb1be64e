import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../../../src/core/errors.js';
import { parseRemap, parseRemaps, remapName, type NameContext } from '../../../src/files/remap.js';
import { FileRoot } from '../../../src/files/root.js';
import { tempRoot } from '../../helpers/tftp.js';

const CLIENT: NameContext = { ip: '10.0.0.7', mac: '52:54:00:12:34:56', arch: 'efi-x64' };

function apply(rules: string[], name: string, ctx: NameContext = CLIENT): string {
  return remapName(rules.map(parseRemap), name, ctx).name;
}

describe('--remap rules', () => {
  it('shim asking grubx64.efi at the root gets efi64/grubx64.efi', () => {
    const rules = ['^grubx64\\.efi$ efi64/grubx64.efi'];
    assert.equal(apply(rules, 'grubx64.efi'), 'efi64/grubx64.efi');
    assert.equal(apply(rules, '/grubx64.efi'), 'efi64/grubx64.efi', 'a leading slash is dropped first');
    assert.equal(apply(rules, 'efi64/grubx64.efi'), 'efi64/grubx64.efi', 'anchored: no second rewrite');
  });

  it('captures, $& and $$', () => {
    assert.equal(
      apply(['^pxelinux\\.cfg/01-(.+)$ machines/$1/pxelinux.cfg'], 'pxelinux.cfg/01-52-54-00-12-34-56'),
      'machines/52-54-00-12-34-56/pxelinux.cfg',
    );
    assert.equal(apply(['\\.EFI$ .efi'], 'boot/SHIM.EFI'), 'boot/SHIM.efi', 'an unanchored match replaces only itself');
    assert.equal(apply(['^.*$ old/$&'], 'a.cfg'), 'old/a.cfg');
    assert.equal(apply(['^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)$ ${10}-$1'], 'abcdefghij'), 'j-a');
    assert.equal(apply(['^x$ price$$'], 'x'), 'price$');
  });

  it('${mac}, ${ip} and ${arch} of the requesting client', () => {
    assert.equal(apply(['^boot\\.cfg$ hosts/${mac}/boot.cfg'], 'boot.cfg'), 'hosts/52-54-00-12-34-56/boot.cfg');
    assert.equal(apply(['^boot\\.cfg$ by-ip/${ip}.cfg'], 'boot.cfg'), 'by-ip/10.0.0.7.cfg');
    assert.equal(apply(['^grub\\.cfg$ grub/${arch}.cfg'], 'grub.cfg'), 'grub/efi-x64.cfg');
  });

  it('a rule whose client value is unknown is skipped; the next one may apply', () => {
    const rules = ['^boot\\.cfg$ hosts/${mac}.cfg', '^boot\\.cfg$ hosts/default.cfg'];
    assert.equal(apply(rules, 'boot.cfg', { ip: '10.0.0.7' }), 'hosts/default.cfg');
    assert.equal(apply(rules, 'boot.cfg'), 'hosts/52-54-00-12-34-56.cfg');
  });

  it('Windows names asked with mixed case and backslashes: (?i) and ${lower:N}', () => {
    const rules = ['(?i)^(boot|efi|sources)/(.*)$ ${lower:&}'];
    assert.equal(apply(rules, '\\Boot\\BCD'), 'boot/bcd');
    assert.equal(apply(rules, 'EFI/Microsoft/Boot/bootmgfw.efi'), 'efi/microsoft/boot/bootmgfw.efi');
    assert.equal(apply(rules, 'pxelinux.0'), 'pxelinux.0', 'no match: the name as asked');
    assert.equal(apply(['^(.*)$ ${upper:1}'], 'bcd'), 'BCD');
  });

  it('first match wins, no chaining', () => {
    assert.equal(apply(['^a$ b', '^b$ c'], 'a'), 'b');
  });

  it('refuses malformed rules with one line naming them', () => {
    const bad: [string, RegExp][] = [
      ['nospace', /must be 'REGEX REPLACEMENT'/],
      ['^(x$ y', /bad regular expression/],
      ['^x$ $2', /'2' is not a group of the pattern \(it has 0\)/],
      ['^x$ ${host}', /unknown '\$\{host\}'/],
      ['^x$ a$', /a '\$' must be followed/],
      ['^x$ ${mac', /without '}'/],
    ];
    for (const [text, why] of bad) {
      assert.throws(
        () => parseRemap(text),
        (e: unknown) => e instanceof UserError && e.message.startsWith(`remap '${text}'`) && why.test(e.message),
        text,
      );
    }
    assert.throws(() => parseRemaps([1]), UserError);
    assert.equal(parseRemaps(undefined).length, 0);
    assert.equal(parseRemaps('^a$ b').length, 1);
  });
});

describe('FileRoot with --remap: the result is contained like any name', () => {
  const root = tempRoot({ 'pxelinux.0': 'nbp' });
  const outside = tempRoot({ secret: 'do not serve' });
  mkdirSync(join(root.dir, 'efi64'));
  writeFileSync(join(root.dir, 'efi64', 'grubx64.efi'), 'grub');
  mkdirSync(join(root.dir, 'hosts'));
  writeFileSync(join(root.dir, 'hosts', '52-54-00-12-34-56.cfg'), 'mine');
  symlinkSync(join(outside.dir, 'secret'), join(root.dir, 'hosts', 'evil.cfg'));
  const rules = [
    '^grubx64\\.efi$ efi64/grubx64.efi',
    '^host\\.cfg$ hosts/${mac}.cfg',
    '^escape-up$ ../../../../etc/passwd',
    '^escape-abs$ /etc/passwd',
    '^cfg-(.*)$ hosts/$1',
    '^evil$ hosts/evil.cfg',
  ].map(parseRemap);
  let active = rules;
  const files = new FileRoot(root.dir).setRemap(() => active);
  after(() => {
    root.remove();
    outside.remove();
  });

  async function read(name: string, ctx?: NameContext): Promise<string> {
    const r = await files.open(name, ctx);
    if (!r.ok) return r.reason;
    const b = Buffer.alloc(r.file.size);
    await r.file.readv([b], 0);
    await r.file.close();
    return `${r.file.name}:${b.toString()}`;
  }

  it('serves the remapped name, and names the file as resolved', async () => {
    assert.equal(await read('grubx64.efi'), 'efi64/grubx64.efi:grub');
    assert.equal(await read('host.cfg', CLIENT), 'hosts/52-54-00-12-34-56.cfg:mine');
    assert.equal(await read('host.cfg'), 'not-found', 'no MAC known: the rule is skipped, the name is missing');
    assert.equal(await read('pxelinux.0'), 'pxelinux.0:nbp');
  });

  it('an escape attempt through a remap is refused', async () => {
    assert.equal(await read('escape-up'), 'bad-name');
    assert.equal(await read('escape-abs'), 'not-found', '/etc/passwd is etc/passwd inside the root');
    assert.equal(await read('cfg-../../../../etc/passwd'), 'bad-name', 'a capture carrying .. is refused');
    assert.equal(await read('evil'), 'outside-root', 'a symlink out of the root is refused as always');
  });

  it('check goes through the same remap; a reload changes the rules at once', async () => {
    assert.deepEqual(await files.check('grubx64.efi'), { ok: true, size: 4 });
    active = [];
    assert.equal(await read('grubx64.efi'), 'not-found');
    active = rules;
  });
});
