import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseArgs } from '../../../src/cli/args.js';
import { UserError } from '../../../src/core/errors.js';
import { describeClient, type PxeClient } from '../../../src/pxe/client.js';
import { findRule, parseBootRules, parseRule, ruleFromJson, ruleLabel, ruleMatches } from '../../../src/pxe/rules.js';
import { request, type RequestSpec } from '../../helpers/packets.js';

function client(spec: RequestSpec = {}): PxeClient {
  const c = describeClient(request(spec));
  assert.notEqual(typeof c, 'string');
  return c as PxeClient;
}

function assertRuleError(fn: () => unknown, rule: string, words: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof UserError && e.message.includes(`boot rule '${rule}'`) && words.test(e.message),
    `${rule} should fail with ${words}`,
  );
}

describe('parseRule: the command-line form', () => {
  it('reads every key', () => {
    const r = parseRule(
      'arch=efi-x64,mac=52:54:00:*,user-class=iPXE,vendor-class=PXEClient:Arch:00007,uuid=7e57ab00-0000-4000-8000-525400123456,file=http://10.0.0.5/boot.ipxe?mac=${mac},next-server=10.0.0.5',
    );
    assert.equal(r.arch, 7);
    assert.equal(r.mac?.text, '52:54:00:*');
    assert.equal(r.userClass, 'iPXE');
    assert.equal(r.vendorClass, 'PXEClient:Arch:00007');
    assert.equal(r.uuid?.hex, '7e57ab00000040008000525400123456');
    assert.equal(r.file, 'http://10.0.0.5/boot.ipxe?mac=${mac}', 'a value may hold =');
    assert.equal(r.nextServer, '10.0.0.5');
  });

  it('takes arch as a name or a number; 9 counts as efi-x64', () => {
    for (const [text, arch] of [
      ['bios', 0],
      ['efi-ia32', 6],
      ['efi-x64', 7],
      ['EFI-X64', 7],
      ['9', 7],
      ['0x0b', 11],
      ['efi-arm64', 11],
      ['11', 11],
      ['efi-arm32', 10],
    ] as const) {
      assert.equal(parseRule(`arch=${text},file=x`).arch, arch, text);
    }
  });

  it('writes its text in key order for the log', () => {
    const r = parseRule('file=ipxe.efi, arch=efi-x64');
    assert.equal(r.text, 'arch=efi-x64,file=ipxe.efi');
    assert.equal(ruleLabel(r, 2), 'rule 2 (arch=efi-x64,file=ipxe.efi)');
  });

  it('a rule with only file= matches every client', () => {
    assert.equal(ruleMatches(parseRule('file=x'), client({ arch: 11, mac: 'aa:bb:cc:dd:ee:ff' })), true);
  });

  it('rejects malformed rules with one line naming the rule and the fault', () => {
    const cases: [string, RegExp][] = [
      ['arch=efi-x64', /no file=/],
      ['arch=efi-x65,file=x', /unknown arch 'efi-x65'/],
      ['arch=70000,file=x', /unknown arch/],
      ['arch=efi-x64,fil=x', /unknown key 'fil'/],
      ['arch=bios,arch=efi-x64,file=x', /'arch' given twice/],
      ['arch=,file=x', /'arch' has no value/],
      ['mac=52:54:00,file=x', /mac '52:54:00'/],
      ['mac=7e57ab00-0000-4000-8000-525400123456,file=x', /mac /],
      ['uuid=1234,file=x', /uuid '1234'/],
      ['next-server=10.0.0.300,file=x', /next-server '10.0.0.300'/],
      ['arch=bios,file=a,b', /'b' is not key=value/],
      ['', /is not key=value/],
    ];
    for (const [rule, words] of cases) assertRuleError(() => parseRule(rule), rule, words);
  });
});

describe('ruleFromJson: the config-file form', () => {
  it('reads an object with the same keys; arch may be a number', () => {
    const r = ruleFromJson({ arch: 'efi-x64', 'user-class': 'iPXE', file: 'boot.ipxe' });
    assert.equal(r.text, 'arch=efi-x64,user-class=iPXE,file=boot.ipxe');
    assert.equal(ruleFromJson({ arch: 11, file: 'a.efi' }).arch, 11);
    assert.equal(ruleFromJson({ file: 'a,b.ipxe' }).file, 'a,b.ipxe', 'commas are fine here');
  });

  it('reads a string as the command-line form', () => {
    assert.equal(ruleFromJson('arch=bios,file=undionly.kpxe').arch, 0);
  });

  it('rejects bad entries naming the rule', () => {
    assertRuleError(() => ruleFromJson({ arch: 'efi-x64' }), '{"arch":"efi-x64"}', /no file=/);
    assertRuleError(
      () => ruleFromJson({ file: 'x', colour: 'red' }),
      '{"file":"x","colour":"red"}',
      /unknown key 'colour'/,
    );
    assertRuleError(() => ruleFromJson({ file: 7 }), '{"file":7}', /'file' must be a string/);
    assertRuleError(() => ruleFromJson(['file=x']), '["file=x"]', /must be an object/);
    assertRuleError(() => ruleFromJson(null), 'null', /must be an object/);
  });

  it('parseBootRules keeps the order and accepts a single rule', () => {
    const rules = parseBootRules([{ arch: 'bios', file: 'a' }, 'arch=efi-x64,file=b', { file: 'c' }]);
    assert.deepEqual(
      rules.map((r) => r.file),
      ['a', 'b', 'c'],
    );
    assert.equal(parseBootRules('file=x').length, 1);
    assert.deepEqual(parseBootRules(undefined), []);
  });
});

describe('conditions', () => {
  const bios = client({ arch: 0 });
  it('arch', () => {
    assert.equal(ruleMatches(parseRule('arch=bios,file=x'), bios), true);
    assert.equal(ruleMatches(parseRule('arch=efi-x64,file=x'), bios), false);
    assert.equal(ruleMatches(parseRule('arch=efi-x64,file=x'), client({ arch: 9 })), true, 'old x64 firmware sends 9');
    assert.equal(ruleMatches(parseRule('arch=bios,file=x'), client({ arch: null })), true, 'no option 93 = bios');
  });
  it('mac, full and pattern', () => {
    assert.equal(ruleMatches(parseRule('mac=52:54:00:12:34:56,file=x'), bios), true);
    assert.equal(ruleMatches(parseRule('mac=52:54:00:12:34:57,file=x'), bios), false);
    assert.equal(ruleMatches(parseRule('mac=52:54:00:*,file=x'), bios), true);
    assert.equal(ruleMatches(parseRule('mac=b8:27:eb:*,file=x'), bios), false);
  });
  it('user-class, any case; iPXE also by option 175', () => {
    const ipxe = client({ userClass: 'iPXE' });
    assert.equal(ruleMatches(parseRule('user-class=iPXE,file=x'), ipxe), true);
    assert.equal(ruleMatches(parseRule('user-class=ipxe,file=x'), ipxe), true);
    assert.equal(ruleMatches(parseRule('user-class=iPXE,file=x'), bios), false);
    const by175 = client({ extra: [[175, Buffer.of(0xb1, 1, 1)]] });
    assert.equal(ruleMatches(parseRule('user-class=iPXE,file=x'), by175), true);
    assert.equal(ruleMatches(parseRule('user-class=gPXE,file=x'), client({ userClass: 'gPXE' })), true);
  });
  it('vendor-class is a case-sensitive prefix of option 60', () => {
    assert.equal(ruleMatches(parseRule('vendor-class=PXEClient:Arch:00000,file=x'), bios), true);
    assert.equal(ruleMatches(parseRule('vendor-class=PXEClient:Arch:00007,file=x'), bios), false);
    assert.equal(ruleMatches(parseRule('vendor-class=pxeclient,file=x'), bios), false);
  });
  it('uuid, wire order', () => {
    assert.equal(ruleMatches(parseRule('uuid=7e57ab00000040008000525400123456,file=x'), bios), true);
    assert.equal(ruleMatches(parseRule('uuid=7e57ab00000040008000525400123457,file=x'), bios), false);
    assert.equal(ruleMatches(parseRule('uuid=7e57ab00000040008000525400123456,file=x'), client({ uuid: null })), false);
  });
  it('all conditions of a rule must hold', () => {
    const r = parseRule('arch=efi-x64,user-class=iPXE,file=x');
    assert.equal(ruleMatches(r, client({ arch: 7, userClass: 'iPXE' })), true);
    assert.equal(ruleMatches(r, client({ arch: 7 })), false);
    assert.equal(ruleMatches(r, client({ arch: 0, userClass: 'iPXE' })), false);
  });
});

describe('findRule: first match wins', () => {
  // The example list, in its order.
  const rules = parseBootRules([
    'arch=efi-x64,user-class=iPXE,file=boot.ipxe',
    'mac=52:54:00:77:00:02,file=efi64/syslinux.efi',
    'arch=efi-x64,file=ipxe.efi',
  ]);
  const pick = (spec: RequestSpec) => {
    const m = findRule(rules, client(spec));
    return m ? `${m.index}:${m.rule.file}` : 'none';
  };
  it('picks the earliest matching rule', () => {
    assert.equal(pick({ arch: 7, userClass: 'iPXE', mac: '52:54:00:77:00:02' }), '1:boot.ipxe');
    assert.equal(pick({ arch: 7, mac: '52:54:00:77:00:02' }), '2:efi64/syslinux.efi');
    assert.equal(pick({ arch: 7, mac: '52:54:00:77:00:03' }), '3:ipxe.efi');
    assert.equal(pick({ arch: 0, mac: '52:54:00:77:00:02' }), '2:efi64/syslinux.efi');
    assert.equal(pick({ arch: 0 }), 'none');
  });
  it('a rule listed later never shadows an earlier one', () => {
    const swapped = parseBootRules(['arch=efi-x64,file=ipxe.efi', 'arch=efi-x64,user-class=iPXE,file=boot.ipxe']);
    assert.equal(findRule(swapped, client({ arch: 7, userClass: 'iPXE' }))?.index, 1);
  });
});

describe('--boot, --allow, --deny, --rpi on the command line and in the config file', () => {
  const run = (args: string) => {
    const r = parseArgs(args.split(' '));
    if (r.kind !== 'run') assert.fail(`exit ${r.code}: ${r.stderr ?? ''}`);
    return r.config;
  };
  const exitOf = (args: string[]) => {
    const r = parseArgs(args);
    assert.equal(r.kind, 'exit');
    return r.kind === 'exit' ? r : assert.fail();
  };
  const dir = mkdtempSync(join(tmpdir(), 'pxe-rules-'));
  const file = (name: string, body: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
    return p;
  };

  it('keeps repeated --boot rules in the order given', () => {
    const c = run(
      '-i eth0 --boot arch=efi-x64,user-class=iPXE,file=boot.ipxe --boot mac=52:54:00:77:00:02,file=efi64/syslinux.efi --boot arch=efi-x64,file=ipxe.efi pxelinux.0',
    );
    assert.deepEqual(
      c.boot?.map((r) => r.file),
      ['boot.ipxe', 'efi64/syslinux.efi', 'ipxe.efi'],
    );
    assert.equal(c.nbp, 'pxelinux.0');
  });

  it('with no rules, <nbp> is still required; with rules it may be left out', () => {
    assert.match(exitOf(['-i', 'eth0']).stderr ?? '', /missing <nbp name>/);
    const c = run('-i eth0 --boot arch=bios,file=undionly.kpxe');
    assert.equal(c.nbp, undefined);
    assert.equal(c.boot?.length, 1);
  });

  it('plain pxe-pdhcp usage has no rules, empty lists and Pi detection on', () => {
    const c = run('-i eth0 pxelinux.0');
    assert.deepEqual([c.boot, c.allow, c.deny, c.rpi], [[], [], [], true]);
  });

  it('a malformed --boot is one line naming the rule, exit 1', () => {
    const r = exitOf(['-i', 'eth0', '--boot', 'arch=efi-x64,fiel=ipxe.efi', 'x']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      "pxe-pdhcp: boot rule 'arch=efi-x64,fiel=ipxe.efi': unknown key 'fiel' (known: arch, mac, user-class, vendor-class, uuid, file, next-server, kernel, initrd, cmdline)\n",
    );
  });

  it('repeated --allow/--deny, and --no-rpi', () => {
    const c = run(
      '-i eth0 --allow b8:27:eb:* --allow 7e57ab00-0000-4000-8000-525400123456 --deny b8:27:eb:00:00:01 --no-rpi x',
    );
    assert.deepEqual(
      c.allow?.map((p) => p.kind),
      ['mac', 'uuid'],
    );
    assert.deepEqual(
      c.deny?.map((p) => p.text),
      ['b8:27:eb:00:00:01'],
    );
    assert.equal(c.rpi, false);
    assert.match(exitOf(['-i', 'eth0', '--deny', 'nope', 'x']).stderr ?? '', /^pxe-pdhcp: deny: 'nope' is neither/);
  });

  it('reads boot (objects or strings), allow, deny and rpi from the config file', () => {
    const p = file('ok.json', {
      interface: 'eth0',
      boot: [{ arch: 'efi-x64', 'user-class': 'iPXE', file: 'boot.ipxe' }, 'arch=efi-x64,file=ipxe.efi'],
      allow: ['52:54:00:*'],
      deny: '52:54:00:00:00:01',
      rpi: false,
    });
    const c = run(`--config ${p}`);
    assert.deepEqual(
      c.boot?.map((r) => r.text),
      ['arch=efi-x64,user-class=iPXE,file=boot.ipxe', 'arch=efi-x64,file=ipxe.efi'],
    );
    assert.equal(c.allow?.length, 1);
    assert.equal(c.deny?.length, 1);
    assert.equal(c.rpi, false);
  });

  it('a bad rule or value in the config file is a clear error', () => {
    const bad = file('bad.json', {
      interface: 'eth0',
      boot: [
        { arch: 'efi-x64', file: 'ipxe.efi' },
        { arch: 'risc', file: 'x' },
      ],
    });
    assert.match(
      exitOf(['--config', bad]).stderr ?? '',
      /^pxe-pdhcp: boot rule '\{"arch":"risc","file":"x"\}': unknown arch 'risc'/,
    );
    const rpi = file('rpi.json', { interface: 'eth0', nbp: 'x', rpi: 'no' });
    assert.match(exitOf(['--config', rpi]).stderr ?? '', /rpi must be true or false/);
  });
});
