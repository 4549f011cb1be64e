import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentTypeOf } from '../../../src/http/content-type.js';

describe('contentTypeOf', () => {
  const table: [string, string][] = [
    ['ipxe.efi', 'application/octet-stream'],
    ['undionly.kpxe', 'application/octet-stream'],
    ['pxelinux.0', 'application/octet-stream'],
    ['efi64/syslinux.efi', 'application/octet-stream'],
    ['boot.ipxe', 'text/plain; charset=utf-8'],
    ['pxelinux.cfg/default', 'application/octet-stream'],
    ['grub/grub.cfg', 'text/plain; charset=utf-8'],
    ['debian.iso', 'application/x-iso9660-image'],
    ['DEBIAN.ISO', 'application/x-iso9660-image'],
    ['debian/linux', 'application/octet-stream'],
    ['vmlinuz', 'application/octet-stream'],
    ['initrd.img-6.1.0-13-amd64', 'application/octet-stream'],
    ['debian/initrd.gz', 'application/gzip'],
    ['preseed.cfg', 'text/plain; charset=utf-8'],
  ];
  for (const [name, type] of table) it(`${name} → ${type}`, () => assert.equal(contentTypeOf(name), type));
});
