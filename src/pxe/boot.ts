import { isUefiArch } from './arch.js';
import type { PxeClient } from './client.js';

/** How UEFI PXE firmware is answered: `binl` sends it to port 4011 (default), `bypass` boots from the offer. */
export type EfiMode = 'binl' | 'bypass';

/**
 * The shape of our answer (pxe-protocol.md §2.3):
 * - `bypass`: option 43 = discovery control 8, siaddr = the TFTP server; the client boots at once;
 * - `binl`: no option 43, siaddr = our own address; UEFI firmware then asks again on port 4011.
 */
export type AnswerShape = 'bypass' | 'binl';

/** Everything boot policy needs; built from the command line and config file. */
export interface BootPolicy {
  /** The positional `<nbp>`: the answer for every client. */
  defaultFile: string;
  efiMode: EfiMode;
}

/** What to tell one client. */
export interface BootChoice {
  file: string;
  /** Overrides the TFTP server for this answer. */
  nextServer?: string;
  /** Which rule matched, for the log line: `default`. */
  rule: string;
  shape: AnswerShape;
  /** Raw option 43 data to send instead of the shape's own. */
  vendorOptions?: Buffer;
}

/** Why policy declined to answer a PXE client; names a counter. */
export interface BootRefusal {
  ignore: string;
  detail?: string;
  /** Log level of the ignore line; debug when absent. */
  level?: 'info' | 'warn';
}

/** The answer shape for a client: UEFI firmware that is not iPXE follows `efiMode`, all else bypass. */
export function shapeFor(client: PxeClient, efiMode: EfiMode): AnswerShape {
  return isUefiArch(client.arch) && !client.isIpxe && efiMode === 'binl' ? 'binl' : 'bypass';
}

/** Decide which file a PXE client boots. Pure. */
export function chooseBoot(client: PxeClient, policy: BootPolicy): BootChoice | BootRefusal {
  return { file: policy.defaultFile, rule: 'default', shape: shapeFor(client, policy.efiMode) };
}
