import { encodePxeOptions } from '../wire/pxe-options.js';
import { parseMacPattern, macMatches, type ClientPattern } from './acl.js';
import type { PxeClient } from './client.js';

/**
 * MAC prefixes (OUIs) of Raspberry Pi boards seen in the field (docs/firmware.md#raspberry-pi-bootloader): Raspberry Pi
 * Foundation b8:27:eb, Raspberry Pi Trading dc:a6:32, e4:5f:01, 28:cd:c1, d8:3a:dd, 2c:cf:67.
 */
export const RPI_OUIS = ['b8:27:eb', 'dc:a6:32', 'e4:5f:01', '28:cd:c1', 'd8:3a:dd', '2c:cf:67'] as const;

const OUI_PATTERNS = RPI_OUIS.map((oui) => parseMacPattern(`${oui}:*`) as ClientPattern & { kind: 'mac' });

/**
 * The Pi 4/5 EEPROM's default option 97 (`DHCP_OPTION97`) starts its 16 bytes with the board's
 * fourcc, `RPi4` or `RPi5` (docs/firmware.md#raspberry-pi-bootloader), even on boards whose MAC has another OUI.
 */
const RPI_FOURCCS = ['RPi4', 'RPi5'] as const;

/** The only thing a Pi's bootloader needs in option 43 (docs/firmware.md#raspberry-pi-bootloader). */
export const RPI_MENU_TEXT = 'Raspberry Pi Boot';

/**
 * Option 43 for a Raspberry Pi, byte for byte what dnsmasq sends for
 * `pxe-service=0,"Raspberry Pi Boot"` (docs/dhcp-options.md#raspberry-pi-option-43): discovery control 3, prompt with
 * timeout 0 "PXE", a one-item type-0 menu "Raspberry Pi Boot", END. No PAD bytes: Pi 4 EEPROMs
 * before 2020-01-17 reject replies that hold option 0 (rpi-eeprom #82).
 */
export const RPI_VENDOR_OPTIONS: Buffer = encodePxeOptions({
  discoveryControl: 3,
  menuPrompt: { timeout: 0, text: 'PXE' },
  bootMenu: [{ type: 0, description: RPI_MENU_TEXT }],
});

/** How a client was recognised as a Pi, or undefined when it is not one. */
export type RpiEvidence = 'oui' | 'option-97';

/**
 * Recognise a Raspberry Pi bootloader. It sends arch 0 like a BIOS PC (rpi-eeprom #182), so arch
 * alone cannot tell; the MAC's OUI or option 97's fourcc can. Only the bootloader wants the Pi menu:
 * a Pi running UEFI firmware (arch 11) or iPXE is served like any other such client, since a type-0
 * menu means "boot locally" to EDK2 and iPXE (docs/firmware.md#raspberry-pi-bootloader).
 */
export function detectRaspberryPi(client: PxeClient): RpiEvidence | undefined {
  if (client.arch !== 0 || client.isIpxe) return undefined;
  if (OUI_PATTERNS.some((p) => macMatches(p, client.mac))) return 'oui';
  const fourcc = client.uuid?.toString('latin1', 1, 5);
  if (fourcc !== undefined && (RPI_FOURCCS as readonly string[]).includes(fourcc)) return 'option-97';
  return undefined;
}
