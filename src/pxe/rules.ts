import { UserError } from '../core/errors.js';
import { isIPv4 } from '../wire/ip.js';
import { clientMatches, parseMacPattern, parseUuidPattern, type ClientPattern } from './acl.js';
import { parseArch } from '../wire/arch.js';
import type { PxeClient } from './client.js';

/**
 * One boot rule: conditions (all must hold; none at all matches every client) and an answer.
 * Rules are tried in the order given and the first that matches answers (docs/firmware.md#architecture-numbers for
 * the arch numbers).
 */
export interface BootRule {
  /** The rule in its command-line form, for log lines and errors: `arch=efi-x64,file=ipxe.efi`. */
  text: string;
  /** Option 93 after canonicalArch (so 9 is 7, efi-x64). */
  arch?: number;
  mac?: ClientPattern & { kind: 'mac' };
  /** Option 77, compared without regard to case. */
  userClass?: string;
  /** A prefix of option 60, case-sensitive as `PXEClient` itself is. */
  vendorClass?: string;
  uuid?: ClientPattern & { kind: 'uuid' };
  /** A path in the TFTP root, or a URL for iPXE. */
  file: string;
  /** The TFTP server for this answer (siaddr), instead of `-t`. */
  nextServer?: string;
}

/** Rule keys, in the order a rule's text lists them. */
export const RULE_KEYS = ['arch', 'mac', 'user-class', 'vendor-class', 'uuid', 'file', 'next-server'] as const;
type RuleKey = (typeof RULE_KEYS)[number];

const KNOWN = new Set<string>(RULE_KEYS);
const IPXE = 'ipxe';

function fail(rule: string, why: string): never {
  throw new UserError(`boot rule '${rule}': ${why}`);
}

/** Build a rule from its key/value pairs; `label` names it in errors. */
function buildRule(fields: Map<RuleKey, string>, label: string): BootRule {
  const file = fields.get('file');
  if (file === undefined) fail(label, 'no file= (what to boot)');
  const rule: BootRule = {
    text: RULE_KEYS.filter((k) => fields.has(k))
      .map((k) => `${k}=${fields.get(k)}`)
      .join(','),
    file,
  };
  const arch = fields.get('arch');
  if (arch !== undefined) {
    rule.arch = parseArch(arch);
    if (rule.arch === undefined)
      fail(label, `unknown arch '${arch}' (a name such as bios, efi-x64, efi-arm64, or a number)`);
  }
  const mac = fields.get('mac');
  if (mac !== undefined) {
    const p = parseMacPattern(mac);
    if (p?.kind !== 'mac') fail(label, `mac '${mac}' is not a MAC address or pattern such as b8:27:eb:*`);
    rule.mac = p;
  }
  const uuid = fields.get('uuid');
  if (uuid !== undefined) {
    const p = parseUuidPattern(uuid);
    if (p?.kind !== 'uuid') fail(label, `uuid '${uuid}' is not 32 hex digits (8-4-4-4-12 dashes optional)`);
    rule.uuid = p;
  }
  const userClass = fields.get('user-class');
  if (userClass !== undefined) rule.userClass = userClass;
  const vendorClass = fields.get('vendor-class');
  if (vendorClass !== undefined) rule.vendorClass = vendorClass;
  const nextServer = fields.get('next-server');
  if (nextServer !== undefined) {
    if (!isIPv4(nextServer)) fail(label, `next-server '${nextServer}' is not an IPv4 address`);
    rule.nextServer = nextServer;
  }
  return rule;
}

function addField(fields: Map<RuleKey, string>, key: string, value: string, label: string): void {
  if (!KNOWN.has(key)) fail(label, `unknown key '${key}' (known: ${RULE_KEYS.join(', ')})`);
  if (fields.has(key as RuleKey)) fail(label, `'${key}' given twice`);
  if (value.trim() === '') fail(label, `'${key}' has no value`);
  fields.set(key as RuleKey, value.trim());
}

/**
 * Parse the command-line form `arch=efi-x64,user-class=iPXE,file=boot.ipxe`: comma-separated
 * `key=value` pairs (a value may contain `=` but not `,`; the config file has no such limit).
 * @throws UserError naming the rule
 */
export function parseRule(text: string): BootRule {
  const fields = new Map<RuleKey, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) fail(text, `'${part}' is not key=value (a file name with a comma needs the config file)`);
    addField(fields, part.slice(0, eq).trim(), part.slice(eq + 1), text);
  }
  return buildRule(fields, text);
}

/**
 * Parse one entry of the config file's `boot` list: an object keyed like the command-line form
 * (`{"arch": "efi-x64", "file": "ipxe.efi"}`; arch may be a number) or a command-line string.
 * @throws UserError naming the rule
 */
export function ruleFromJson(value: unknown): BootRule {
  if (typeof value === 'string') return parseRule(value);
  const label = JSON.stringify(value) ?? String(value);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(label, 'must be an object such as {"arch": "efi-x64", "file": "ipxe.efi"} or a string');
  }
  const fields = new Map<RuleKey, string>();
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string' && !(key === 'arch' && typeof v === 'number')) fail(label, `'${key}' must be a string`);
    addField(fields, key, String(v), label);
  }
  return buildRule(fields, label);
}

/**
 * The `boot` setting: command line, a list of strings; config file, a list of objects or strings
 * (one rule alone is accepted too).
 * @throws UserError naming the first bad rule
 */
export function parseBootRules(value: unknown): BootRule[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map(ruleFromJson);
}

/**
 * True when every condition of the rule holds for the client. `user-class=iPXE` also matches an
 * iPXE that announces itself only by option 175 (a build with another user class).
 */
export function ruleMatches(rule: BootRule, client: PxeClient): boolean {
  if (rule.arch !== undefined && rule.arch !== client.arch) return false;
  if (rule.mac && !clientMatches(rule.mac, client)) return false;
  if (rule.uuid && !clientMatches(rule.uuid, client)) return false;
  if (rule.vendorClass !== undefined && !client.vendorClass.startsWith(rule.vendorClass)) return false;
  if (rule.userClass !== undefined) {
    const wanted = rule.userClass.toLowerCase();
    const sent = client.userClass?.toLowerCase();
    if (sent !== wanted && !(wanted === IPXE && client.isIpxe)) return false;
  }
  return true;
}

/** The first rule that matches, with its 1-based position, or undefined. */
export function findRule(rules: readonly BootRule[], client: PxeClient): { rule: BootRule; index: number } | undefined {
  const i = rules.findIndex((r) => ruleMatches(r, client));
  return i < 0 ? undefined : { rule: rules[i]!, index: i + 1 };
}

/** How a log line names a rule: `rule 2 (arch=efi-x64,file=ipxe.efi)`. */
export function ruleLabel(rule: BootRule, index: number): string {
  return `rule ${index} (${rule.text})`;
}
