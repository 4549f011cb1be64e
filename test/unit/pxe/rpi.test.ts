import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeClient, type PxeClient } from '../../../src/pxe/client.js';
import { RPI_OUIS, RPI_VENDOR_OPTIONS, detectRaspberryPi } from '../../../src/pxe/rpi.js';
import { request, type RequestSpec } from '../../helpers/packets.js';
import { RPI_OPTION_43, rpiUuid, subOptionCodes } from '../../helpers/rpi.js';

function client(spec: RequestSpec = {}): PxeClient {
  const c = describeClient(request(spec));
  assert.notEqual(typeof c, 'string');
  return c as PxeClient;
}

describe('Raspberry Pi option 43', () => {
  it('is exactly the 32 bytes of docs/dhcp-options.md#raspberry-pi-option-43, no PAD', () => {
    assert.equal(RPI_OPTION_43.length, 32);
    assert.deepEqual(RPI_VENDOR_OPTIONS, RPI_OPTION_43);
    assert.deepEqual(subOptionCodes(RPI_VENDOR_OPTIONS), [6, 10, 9], 'no PAD (0) sub-option');
    assert.equal(RPI_VENDOR_OPTIONS.at(-1), 255);
    assert.ok(RPI_VENDOR_OPTIONS.toString('latin1').includes('Raspberry Pi Boot'));
  });
});

describe('detectRaspberryPi', () => {
  it('knows every listed OUI, in any case of the MAC', () => {
    for (const oui of RPI_OUIS) {
      assert.equal(detectRaspberryPi(client({ mac: `${oui}:01:36:c2`, uuid: null })), 'oui', oui);
      assert.equal(detectRaspberryPi(client({ mac: `${oui.toUpperCase()}:01:36:C2`, uuid: null })), 'oui', oui);
    }
  });

  it('knows option 97 starting RPi4 or RPi5 on any MAC', () => {
    assert.equal(detectRaspberryPi(client({ uuid: rpiUuid('RPi4') })), 'option-97');
    assert.equal(detectRaspberryPi(client({ uuid: rpiUuid('RPi5') })), 'option-97');
    assert.equal(detectRaspberryPi(client({ uuid: rpiUuid('RPi3') })), undefined);
    assert.equal(detectRaspberryPi(client({ uuid: rpiUuid('rpi4') })), undefined, 'fourcc is case-sensitive');
  });

  it('a PC (non-Pi MAC, ordinary UUID or none) is not a Pi', () => {
    assert.equal(detectRaspberryPi(client()), undefined);
    assert.equal(detectRaspberryPi(client({ uuid: null })), undefined);
    assert.equal(detectRaspberryPi(client({ mac: 'b8:27:ec:00:00:01' })), undefined);
  });

  it('only the arch-0 bootloader: UEFI firmware or iPXE on a Pi is not answered as one', () => {
    assert.equal(detectRaspberryPi(client({ mac: 'dc:a6:32:01:36:c2', arch: 11 })), undefined);
    assert.equal(detectRaspberryPi(client({ mac: 'dc:a6:32:01:36:c2', userClass: 'iPXE' })), undefined);
    assert.equal(detectRaspberryPi(client({ mac: 'dc:a6:32:01:36:c2', arch: null })), 'oui', 'no option 93 = bios');
  });
});
