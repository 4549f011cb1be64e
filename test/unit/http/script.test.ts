import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ipxeScript, partUrl } from '../../../src/http/script.js';

const BASE = 'http://10.0.0.5:8080';

describe('iPXE script generation', () => {
  it('kernel, initrds as absolute URLs on our server, the command line, boot', () => {
    const s = ipxeScript(
      {
        kernel: 'debian/linux',
        initrd: ['debian/initrd.gz', 'firmware.cpio.gz'],
        cmdline: 'console=ttyS0,115200 priority=low',
      },
      BASE,
    );
    assert.equal(
      s,
      [
        '#!ipxe',
        'kernel http://10.0.0.5:8080/debian/linux initrd=initrd.gz initrd=firmware.cpio.gz console=ttyS0,115200 priority=low',
        'initrd http://10.0.0.5:8080/debian/initrd.gz',
        'initrd http://10.0.0.5:8080/firmware.cpio.gz',
        'boot',
        '',
      ].join('\n'),
    );
  });

  it('a command line that names its initrd is left as it is; no initrd, no cmdline', () => {
    assert.equal(
      ipxeScript({ kernel: 'k', initrd: ['i.gz'], cmdline: 'initrd=i.gz quiet' }, BASE),
      '#!ipxe\nkernel http://10.0.0.5:8080/k initrd=i.gz quiet\ninitrd http://10.0.0.5:8080/i.gz\nboot\n',
    );
    assert.equal(ipxeScript({ kernel: '/k' }, 'http://10.0.0.5'), '#!ipxe\nkernel http://10.0.0.5/k\nboot\n');
  });

  it('URLs elsewhere stay; http:/// is ours; names are percent-encoded', () => {
    assert.equal(partUrl('http://mirror.example/linux', BASE), 'http://mirror.example/linux');
    assert.equal(partUrl('http:///boot/linux', BASE), 'http://10.0.0.5:8080/boot/linux');
    assert.equal(partUrl('my dir/a#b?.gz', BASE), 'http://10.0.0.5:8080/my%20dir/a%23b%3F.gz');
  });

  it('a comment line is made printable', () => {
    const s = ipxeScript({ kernel: 'k' }, BASE, 'mac 52:54:00:00:00:01\nboot evil');
    assert.equal(s.split('\n')[1], '# mac 52:54:00:00:00:01?boot evil');
    assert.equal(s.split('\n').filter((l) => l === 'boot').length, 1);
  });
});
