/** Option 97 as a Pi 4/5 EEPROM sends it: type 0, fourcc, board revision, MAC low bytes, serial. */
export function rpiUuid(fourcc: string): Buffer {
  return Buffer.concat([Buffer.of(0), Buffer.from(fourcc, 'latin1'), Buffer.from('00c03111013602c21a2b3c4d', 'hex')]);
}

/** docs/dhcp-options.md#raspberry-pi-option-43: the option 43 data dnsmasq sends for `pxe-service=0,"Raspberry Pi Boot"`. */
export const RPI_OPTION_43 = Buffer.from(
  [
    '060103', // 6 discovery control = 3
    '0a0400505845', // 10 menu prompt: timeout 0, "PXE"
    '091400001152617370626572727920506920426f6f74', // 9 menu: type 0, 17 bytes "Raspberry Pi Boot"
    'ff',
  ].join(''),
  'hex',
);

/** The sub-option codes of option 43 data, walking its TLVs up to END. */
export function subOptionCodes(data: Buffer): number[] {
  const codes: number[] = [];
  for (let pos = 0; pos < data.length && data[pos] !== 255; pos += 2 + data[pos + 1]!) codes.push(data[pos]!);
  return codes;
}
