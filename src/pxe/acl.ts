import { UserError } from '../core/errors.js';
import type { PxeClient } from './client.js';

/**
 * A client pattern, as `--allow`, `--deny` and the rule conditions `mac` and `uuid` take it:
 * - a MAC address (`52:54:00:12:34:56`, `-` also accepted as separator, any case), where an octet may
 *   be `*` (any value) and a trailing `*` matches any remaining octets (`b8:27:eb:*` is a vendor OUI);
 * - a UUID: 32 hex digits, with or without the 8-4-4-4-12 dashes. It matches option 97's 16 bytes
 *   either in wire order (as our log lines and pxelinux print them) or with the first three fields
 *   byte-swapped, which is how `dmidecode` shows the same SMBIOS UUID: EDK2 and iPXE send it in EFI
 *   GUID order (docs/firmware.md#uuid-byte-order), so both spellings of one machine's UUID work.
 */
export type ClientPattern =
  | { kind: 'mac'; text: string; octets: readonly (string | null)[]; prefix: boolean }
  | { kind: 'uuid'; text: string; hex: string; swapped: string };

const UUID_TEXT = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const OCTET = /^[0-9a-f]{1,2}$/i;
/** Hardware addresses are at most 16 bytes (BOOTP chaddr, RFC 951). */
const MAX_HW_OCTETS = 16;

/** A MAC pattern, or undefined when the text is not one. */
export function parseMacPattern(text: string): ClientPattern | undefined {
  const parts = text.trim().split(/[:-]/);
  if (parts.length > MAX_HW_OCTETS || parts.some((p) => p !== '*' && !OCTET.test(p))) return undefined;
  const prefix = parts[parts.length - 1] === '*';
  const fixed = prefix ? parts.slice(0, -1) : parts;
  // A full address needs its 6 octets; a shorter one must end in `*` to say it is a prefix.
  if (!prefix && fixed.length !== 6) return undefined;
  // Two lowercase hex digits per octet, as PxeClient.mac writes them, so matching is string compares.
  const octets = fixed.map((p) => (p === '*' ? null : p.toLowerCase().padStart(2, '0')));
  return { kind: 'mac', text: text.trim().toLowerCase(), octets, prefix };
}

/** A UUID pattern, or undefined when the text is not one. */
export function parseUuidPattern(text: string): ClientPattern | undefined {
  const t = text.trim();
  if (!UUID_TEXT.test(t)) return undefined;
  const hex = t.replace(/-/g, '').toLowerCase();
  return { kind: 'uuid', text: t.toLowerCase(), hex, swapped: guidSwap(hex) };
}

/** Reverse the byte order of the GUID's first three fields (u32, u16, u16): EFI ⇄ SMBIOS text order. */
function guidSwap(hex: string): string {
  const rev = (h: string) => (h.match(/../g) ?? []).reverse().join('');
  return rev(hex.slice(0, 8)) + rev(hex.slice(8, 12)) + rev(hex.slice(12, 16)) + hex.slice(16);
}

/**
 * A MAC pattern or a UUID.
 * @throws UserError naming `what` (e.g. `--deny entry 'xyz'`) when the text is neither
 */
export function parseClientPattern(text: string, what: string): ClientPattern {
  const p = parseUuidPattern(text) ?? parseMacPattern(text);
  if (!p) {
    throw new UserError(`${what}: '${text}' is neither a MAC address or pattern (b8:27:eb:*) nor a UUID`);
  }
  return p;
}

/** True when the client's MAC (lowercase, colon-separated) fits the pattern. */
export function macMatches(p: ClientPattern & { kind: 'mac' }, mac: string): boolean {
  const count = mac === '' ? 0 : (mac.length + 1) / 3;
  if (p.prefix ? count < p.octets.length : count !== p.octets.length) return false;
  return p.octets.every((o, i) => o === null || mac.startsWith(o, i * 3));
}

/** True when the client's option 97 GUID equals the pattern's, in either byte order (see ClientPattern). */
export function uuidMatches(p: ClientPattern & { kind: 'uuid' }, uuid: Buffer | undefined): boolean {
  if (uuid?.length !== 17) return false;
  const wire = uuid.toString('hex', 1);
  return wire === p.hex || wire === p.swapped;
}

/** True when the client fits the pattern. */
export function clientMatches(p: ClientPattern, client: PxeClient): boolean {
  return p.kind === 'mac' ? macMatches(p, client.mac) : uuidMatches(p, client.uuid);
}

/**
 * Parse a list of `--allow` or `--deny` entries (command line: repeated strings; config file: an
 * array of strings or one string).
 * @throws UserError naming the option and the bad entry
 */
export function parseClientPatterns(key: string, value: unknown): ClientPattern[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map((v) => {
    if (typeof v !== 'string' || v.trim() === '') throw new UserError(`${key}: entries must be MAC patterns or UUIDs`);
    return parseClientPattern(v, key);
  });
}

/** The allow/deny lists (pybootd's ACLs, PyPXE's whitelist). */
export interface AccessList {
  allow?: readonly ClientPattern[];
  deny?: readonly ClientPattern[];
}

/** Why a client is refused: `denied` (a deny entry fits) or `not-allowed` (allow list, no entry fits). */
export interface AccessRefusal {
  reason: 'denied' | 'not-allowed';
  detail: string;
}

/**
 * Check the client against the lists. Deny wins over allow, so `--allow b8:27:eb:*` with
 * `--deny b8:27:eb:00:00:01` serves every such Pi but one; with any allow entry, only clients that
 * fit one are answered.
 */
export function checkAccess(acl: AccessList, client: PxeClient): AccessRefusal | undefined {
  const denied = acl.deny?.find((p) => clientMatches(p, client));
  if (denied) return { reason: 'denied', detail: `matches --deny ${denied.text}` };
  const allow = acl.allow ?? [];
  if (allow.length > 0 && !allow.some((p) => clientMatches(p, client))) {
    return { reason: 'not-allowed', detail: 'matches no --allow entry' };
  }
  return undefined;
}
