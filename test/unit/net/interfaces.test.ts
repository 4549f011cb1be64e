import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '../../../src/core/errors.js';
import { broadcastOf, isLocalAddress, lookupInterface, mtuOfAddress } from '../../../src/net/interfaces.js';
import { fakeInterfaces } from '../../helpers/interfaces.js';

const links = fakeInterfaces({
  eth0: {
    v6: ['fe80::5054:ff:fe12:3456'],
    v4: { address: '192.168.1.10', netmask: '255.255.255.0' },
    sys: { ifindex: '3', mtu: '9000', operstate: 'up' },
  },
  eth1: { v4: { address: '10.1.2.3', netmask: '255.0.0.0' }, sys: { ifindex: '4', mtu: '1400' } },
  // Listed with an address, but /sys gives no MTU (or nonsense): 1500 is assumed.
  'br-lan.10': { v4: { address: '172.16.0.1', netmask: '255.255.0.0' }, sys: { ifindex: '5', mtu: 'x' } },
  zeromtu: { v4: { address: '172.17.0.1', netmask: '255.255.255.255' }, sys: { ifindex: '6', mtu: '0' } },
  // A cable pulled: os.networkInterfaces() leaves the link out, /sys still knows it.
  nocarrier: { sys: { ifindex: '7', mtu: '1500', operstate: 'lowerlayerdown' } },
  down: { sys: { ifindex: '8', operstate: 'down' } },
  upnov4: { v6: ['fe80::1'], sys: { ifindex: '9', operstate: 'up' } },
  unknownstate: { sys: { ifindex: '10', operstate: 'unknown' } },
  noindex: { v4: { address: '10.9.9.9', netmask: '255.255.255.0' }, sys: { mtu: '1500' } },
});

function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a UserError');
}

describe('lookupInterface', () => {
  it('reads index, first IPv4 address, netmask, directed broadcast and MTU', () => {
    assert.deepEqual(lookupInterface('eth0', links), {
      name: 'eth0',
      index: 3,
      address: '192.168.1.10',
      netmask: '255.255.255.0',
      broadcast: '192.168.1.255',
      mtu: 9000,
    });
    const eth1 = lookupInterface('eth1', links);
    assert.equal(eth1.broadcast, '10.255.255.255');
    assert.equal(eth1.mtu, 1400);
    assert.equal(eth1.index, 4);
  });

  it('takes names with dots and dashes (VLANs, bridges)', () => {
    assert.equal(lookupInterface('br-lan.10', links).address, '172.16.0.1');
  });

  it('assumes MTU 1500 when /sys gives none, nonsense or 0', () => {
    assert.equal(lookupInterface('br-lan.10', links).mtu, 1500);
    assert.equal(lookupInterface('zeromtu', links).mtu, 1500);
  });

  it('a missing interface is named', () => {
    assert.equal(
      userError(() => lookupInterface('eth9', links)),
      'interface eth9 does not exist',
    );
  });

  it('refuses a name that cannot be an interface before reading /sys with it', () => {
    const before = links.reads.length;
    for (const bad of ['../../etc', 'a/b', '', 'x'.repeat(16), 'eth0 ']) {
      assert.match(
        userError(() => lookupInterface(bad, links)),
        /^invalid interface name/,
      );
    }
    assert.equal(links.reads.length, before, 'no /sys read for an invalid name');
  });

  it('a link without carrier or down says so; up or unknown without IPv4 says only "no IPv4 address"', () => {
    assert.equal(
      userError(() => lookupInterface('nocarrier', links)),
      'interface nocarrier has no IPv4 address (its link is lowerlayerdown)',
    );
    assert.equal(
      userError(() => lookupInterface('down', links)),
      'interface down has no IPv4 address (its link is down)',
    );
    assert.equal(
      userError(() => lookupInterface('upnov4', links)),
      'interface upnov4 has no IPv4 address',
    );
    assert.equal(
      userError(() => lookupInterface('unknownstate', links)),
      'interface unknownstate has no IPv4 address',
    );
  });

  it('an address without a readable index is an error, not index NaN', () => {
    assert.equal(
      userError(() => lookupInterface('noindex', links)),
      'cannot read the index of interface noindex',
    );
  });
});

describe('broadcastOf', () => {
  it('sets the host bits', () => {
    assert.equal(broadcastOf('192.168.1.10', '255.255.255.0'), '192.168.1.255');
    assert.equal(broadcastOf('10.77.0.2', '255.255.255.252'), '10.77.0.3');
    assert.equal(broadcastOf('172.16.5.4', '255.255.0.0'), '172.16.255.255');
    assert.equal(broadcastOf('10.0.0.1', '255.255.255.255'), '10.0.0.1');
    assert.equal(broadcastOf('10.0.0.1', '0.0.0.0'), '255.255.255.255');
  });
});

describe('isLocalAddress', () => {
  it('is true for 0.0.0.0 and any IPv4 address of a listed link', () => {
    assert.equal(isLocalAddress('0.0.0.0', links), true);
    assert.equal(isLocalAddress('192.168.1.10', links), true);
    assert.equal(isLocalAddress('10.1.2.3', links), true);
  });

  it('is false for other addresses, IPv6 ones and a broadcast address', () => {
    assert.equal(isLocalAddress('192.168.1.11', links), false);
    assert.equal(isLocalAddress('fe80::1', links), false);
    assert.equal(isLocalAddress('192.168.1.255', links), false);
  });
});

describe('mtuOfAddress', () => {
  it('is the MTU of the link holding the address', () => {
    assert.equal(mtuOfAddress('192.168.1.10', links), 9000);
    assert.equal(mtuOfAddress('10.1.2.3', links), 1400);
  });

  it('is 1500 for an unknown address or a link whose MTU cannot be read', () => {
    assert.equal(mtuOfAddress('10.200.0.1', links), 1500);
    assert.equal(mtuOfAddress('172.16.0.1', links), 1500);
  });
});
