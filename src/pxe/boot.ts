import { checkAccess, type ClientPattern } from './acl.js';
import { isUefiArch } from '../wire/arch.js';
import type { PxeClient } from './client.js';
import { RPI_VENDOR_OPTIONS, detectRaspberryPi } from './rpi.js';
import { findRule, ruleLabel, ruleMatches, type BootRule } from './rules.js';
import { isUrl, OWN_HTTP, scriptUrl } from './http-boot.js';

/** How UEFI PXE firmware is answered: `binl` sends it to port 4011 (default), `bypass` boots from the offer. */
export type EfiMode = 'binl' | 'bypass';

/**
 * The shape of our answer (docs/dhcp-options.md#answer-shapes):
 * - `bypass`: option 43 = discovery control 8, siaddr = the TFTP server; the client boots at once;
 * - `binl`: no option 43, siaddr = our own address; UEFI firmware then asks again on port 4011;
 * - `http`: UEFI HTTP Boot (`--http-boot`): option 60 `HTTPClient`, no option 43, the file a URL.
 */
export type AnswerShape = 'bypass' | 'binl' | 'http';

/** Why boot policy leaves a PXE client unanswered. */
export type BootRefusalReason = 'denied' | 'not-allowed' | 'arch-not-served';

/** Everything boot policy needs; built from the command line and config file. */
export interface BootPolicy {
  /**
   * The positional `<nbp>`: the answer for a client no rule matches, whatever its arch (so
   * `pxe-pdhcp -i eth0 pxelinux.0` behaves as before). Optional once rules exist; without it, a
   * client no rule matches is ignored with a warning naming its arch.
   */
  defaultFile?: string;
  efiMode: EfiMode;
  /** `--boot` rules, tried in order; the first that matches answers. */
  rules?: readonly BootRule[];
  /** `--allow`: when non-empty, only clients fitting an entry are answered. */
  allow?: readonly ClientPattern[];
  /** `--deny`: clients fitting an entry are never answered (wins over allow). */
  deny?: readonly ClientPattern[];
  /** Raspberry Pi 4/5 detection; on unless false (`--no-rpi`). */
  rpi?: boolean;
  /** `--http-boot`: answer UEFI HTTP Boot clients (option 60 `HTTPClient`) with a URL on our HTTP server. */
  httpBoot?: boolean;
  /**
   * The answer `--decide-url` gave for this client (src/pxe/decide.ts), used instead of the rules
   * and `<nbp>`; `label` names it in log lines. A kernel-only answer does not fit a client that is
   * not iPXE (as a kernel rule does not): such a client gets the local rules' answer.
   */
  decided?: { rule: BootRule; label: string };
}

/** What to tell one client. */
export interface BootChoice {
  file: string;
  /** Overrides the TFTP server for this answer. */
  nextServer?: string;
  /** Which rule matched, for the log line: `rule 2 (arch=efi-x64,file=ipxe.efi)`, `default`, `raspberry-pi, default`. */
  rule: string;
  shape: AnswerShape;
  /** Raw option 43 data to send instead of the shape's own. */
  vendorOptions?: Buffer;
}

/** Why policy declined to answer a PXE client; names a counter. */
export interface BootRefusal {
  ignore: BootRefusalReason;
  detail?: string;
  /** Log level of the ignore line; debug when absent. */
  level?: 'info' | 'warn';
}

/** The answer shape for a client: UEFI firmware that is not iPXE follows `efiMode`, all else bypass. */
export function shapeFor(client: PxeClient, efiMode: EfiMode): AnswerShape {
  if (client.httpClient) return 'http';
  return isUefiArch(client.arch) && !client.isIpxe && efiMode === 'binl' ? 'binl' : 'bypass';
}

/**
 * Decide what a PXE client boots: the one place of boot policy. Pure. In order:
 * 1. allow/deny: a denied or not-allowed client is ignored (`info`);
 * 2. Raspberry Pi 4/5 (unless `rpi` is false): answered with the Pi's option 43 whatever else holds,
 *    since without it the Pi ignores the offer (the file still comes from steps 3-4, for the log and
 *    for boards that read it; a Pi with neither gets an empty file, which it never asks for);
 * 3. the rules, first match wins;
 * 4. the positional default; a client with none of these is ignored (`warn`, naming its arch).
 */
export function chooseBoot(client: PxeClient, policy: BootPolicy): BootChoice | BootRefusal {
  const refused = checkAccess(policy, client);
  if (refused) return { ignore: refused.reason, detail: refused.detail, level: 'info' };
  const pi = policy.rpi !== false && detectRaspberryPi(client) !== undefined;
  const shape = shapeFor(client, policy.efiMode);
  const local = findRule(policy.rules ?? [], client);
  const found =
    policy.decided && ruleMatches(policy.decided.rule, client)
      ? policy.decided
      : local && { rule: local.rule, label: ruleLabel(local.rule, local.index) };
  // Built field by field, not by spreading: this runs for every answered packet.
  const answer: BootChoice = { file: '', rule: '', shape };
  if (found) {
    const { rule, label } = found;
    // An iPXE whose rule has a kernel gets the script made for it: the loop break of kernel rules.
    answer.file = rule.kernel !== undefined && client.isIpxe ? scriptUrl(client) : rule.file!;
    answer.rule = label;
    if (rule.nextServer) answer.nextServer = rule.nextServer;
  } else if (policy.defaultFile !== undefined) {
    answer.file = policy.defaultFile;
    answer.rule = 'default';
  } else if (pi) {
    answer.rule = 'no file';
  } else {
    return {
      ignore: 'arch-not-served',
      detail: `no boot rule matches arch ${client.archName} (${client.arch}) and no default <nbp> is set`,
      level: 'warn',
    };
  }
  // UEFI HTTP Boot firmware needs a URL (docs/firmware.md#uefi-http-boot): a path is on our server.
  if (client.httpClient && !isUrl(answer.file)) answer.file = `${OWN_HTTP}${answer.file.replace(/^\/+/, '')}`;
  if (!pi) return answer;
  answer.rule = `raspberry-pi, ${answer.rule}`;
  answer.shape = 'bypass';
  answer.vendorOptions = RPI_VENDOR_OPTIONS;
  return answer;
}

/**
 * Every file the rules name for the HTTP server: kernels and initrds that are not URLs elsewhere,
 * and `http:///` files (without the prefix), without repeats; for start-up warnings and `--check`.
 */
export function httpFiles(policy: BootPolicy): string[] {
  const files: string[] = [];
  for (const r of policy.rules ?? []) {
    for (const name of [r.file, r.kernel, ...(r.initrd ?? [])]) {
      if (name === undefined) continue;
      if (name.startsWith(OWN_HTTP)) files.push(name.slice(OWN_HTTP.length).split('?')[0]!);
      else if (name !== r.file && !isUrl(name)) files.push(name);
    }
  }
  return [...new Set(files)];
}

/**
 * Every file the policy can hand out: the default, then each rule's file, without repeats. URLs are
 * included; `warnMissingBootFiles` (src/tftp/files.ts) skips them.
 */
export function bootFiles(policy: BootPolicy): string[] {
  const files = [
    ...(policy.defaultFile !== undefined ? [policy.defaultFile] : []),
    ...(policy.rules ?? []).flatMap((r) => (r.file !== undefined ? [r.file] : [])),
  ];
  return [...new Set(files)];
}
