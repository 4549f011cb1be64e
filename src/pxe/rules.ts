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
  /**
   * A path in the TFTP root, or a URL for iPXE; `http:///PATH` is on our own HTTP server. Absent
   * only when the rule has a kernel: such a rule answers iPXE clients only.
   */
  file?: string;
  /** iPXE over HTTP: a kernel (a path in the HTTP root, or a URL) that a generated script boots. */
  kernel?: string;
  /** Initrds of that script, in order. */
  initrd?: string[];
  /** The kernel command line of that script. */
  cmdline?: string;
  /** The TFTP server for this answer (siaddr), instead of `-t`. */
  nextServer?: string;
}

/** Rule keys, in the order a rule's text lists them. */
export const RULE_KEYS = [
  'arch',
  'mac',
  'user-class',
  'vendor-class',
  'uuid',
  'file',
  'next-server',
  'kernel',
  'initrd',
  'cmdline',
] as const;
type RuleKey = (typeof RULE_KEYS)[number];
/** Keys that may be given more than once (in the config file, as a list). */
const REPEATABLE = new Set<string>(['initrd']);
/** Key/value pairs of one rule; repeatable keys hold every value. */
type Fields = Map<RuleKey, string[]>;

const KNOWN = new Set<string>(RULE_KEYS);
const IPXE = 'ipxe';

function fail(rule: string, why: string): never {
  throw new UserError(`boot rule '${rule}': ${why}`);
}

/**
 * The iPXE script parts: one line each in the script, so no control character (a newline would
 * add a script line); kernel and initrd are a URL each, so no white space either.
 */
function checkScriptPart(label: string, key: string, value: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) fail(label, `'${key}' must not contain a newline or control character`);
  if (key !== 'cmdline' && /\s/.test(value)) fail(label, `'${key}' must not contain white space`);
}

/** Build a rule from its key/value pairs; `label` names it in errors. */
function buildRule(all: Fields, label: string): BootRule {
  const fields = new Map<RuleKey, string>([...all].map(([k, v]) => [k, v[0]!]));
  const file = fields.get('file');
  const kernel = fields.get('kernel');
  if (file === undefined && kernel === undefined) fail(label, 'no file= (what to boot) and no kernel=');
  const rule: BootRule = {
    text: RULE_KEYS.filter((k) => all.has(k))
      .flatMap((k) => all.get(k)!.map((v) => `${k}=${v}`))
      .join(','),
    ...(file !== undefined ? { file } : {}),
  };
  if (kernel !== undefined) {
    for (const key of ['kernel', 'initrd', 'cmdline'] as const)
      for (const v of all.get(key) ?? []) checkScriptPart(label, key, v);
    rule.kernel = kernel;
    const initrd = all.get('initrd');
    if (initrd) rule.initrd = initrd;
    const cmdline = fields.get('cmdline');
    if (cmdline !== undefined) rule.cmdline = cmdline;
  } else if (all.has('initrd') || all.has('cmdline')) {
    fail(label, `'${all.has('initrd') ? 'initrd' : 'cmdline'}' needs a kernel=`);
  }
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

function addField(fields: Fields, key: string, value: string, label: string): void {
  if (!KNOWN.has(key)) fail(label, `unknown key '${key}' (known: ${RULE_KEYS.join(', ')})`);
  const seen = fields.get(key as RuleKey);
  if (seen && !REPEATABLE.has(key)) fail(label, `'${key}' given twice`);
  if (value.trim() === '') fail(label, `'${key}' has no value`);
  fields.set(key as RuleKey, [...(seen ?? []), value.trim()]);
}

/**
 * Parse the command-line form `arch=efi-x64,user-class=iPXE,file=boot.ipxe`: comma-separated
 * `key=value` pairs (a value may contain `=` but not `,`; the config file has no such limit).
 * `cmdline=` takes the rest of the text, commas included (`console=ttyS0,115200`), so it comes last.
 * @throws UserError naming the rule
 */
export function parseRule(text: string): BootRule {
  const fields: Fields = new Map();
  const parts = text.split(',');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    if (eq < 0) fail(text, `'${part}' is not key=value (a file name with a comma needs the config file)`);
    const key = part.slice(0, eq).trim();
    if (key === 'cmdline') {
      addField(fields, key, [part.slice(eq + 1), ...parts.slice(i + 1)].join(','), text);
      break;
    }
    addField(fields, key, part.slice(eq + 1), text);
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
  const fields: Fields = new Map();
  for (const [key, v] of Object.entries(value)) {
    const list: unknown[] = REPEATABLE.has(key) && Array.isArray(v) ? v : [v];
    for (const x of list) {
      if (typeof x !== 'string' && !(key === 'arch' && typeof x === 'number'))
        fail(label, `'${key}' must be a string${REPEATABLE.has(key) ? ' or a list of strings' : ''}`);
      addField(fields, key, String(x), label);
    }
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
  // A rule with a kernel and no file has nothing for a client that cannot run the script.
  if (rule.file === undefined && !client.isIpxe) return false;
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
