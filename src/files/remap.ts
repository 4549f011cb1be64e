import { UserError } from '../core/errors.js';

/**
 * `--remap 'REGEX REPLACEMENT'`: rewrite a requested name before `FileRoot` resolves it, for TFTP
 * and HTTP alike (tftpd-hpa's `--map-file` and pybootd's filters do the same job). Rules are tried
 * in order and the first that matches rewrites the name; there is no second pass. What comes out is
 * an ordinary requested name: `FileRoot` cleans and contains it like any other, so a remap can
 * point only inside the root.
 *
 * The name is matched after `\` has become `/` and leading `/` are dropped (so `\Boot\BCD` and
 * `/boot/bcd` are matched as `Boot/BCD` and `boot/bcd`). The first match of REGEX in it is replaced,
 * as `String.replace` does; a REGEX anchored with `^…$` replaces the whole name. REPLACEMENT may use:
 *
 * - `$1` … `$9`, `${10}`…: capture groups; `$&` or `$0`: the whole match; `$$`: a `$`;
 * - `${mac}` (`52-54-00-12-34-56`), `${ip}`, `${arch}` (`bios`, `efi-x64`, …): the requesting
 *   client, where known; a rule that uses one that is not known for this request is skipped;
 * - `${lower:N}`, `${upper:N}` (N a group number or `&`): that text folded to one case.
 *
 * REGEX may start with `(?i)` to match without regard to case.
 */

/** What is known about the client asking for a name. */
export interface NameContext {
  /** The client's IP address (always known for TFTP and HTTP). */
  ip?: string;
  /** Lowercase, colon-separated; `${mac}` writes it with `-`. */
  mac?: string;
  /** Architecture name, as `--boot arch=` spells it (`efi-x64`). */
  arch?: string;
}

type Part =
  | { kind: 'text'; text: string }
  | { kind: 'group'; n: number; fold?: 'lower' | 'upper' }
  | { kind: 'client'; key: keyof NameContext };

export interface RemapRule {
  /** As given: `REGEX REPLACEMENT`. */
  text: string;
  regex: RegExp;
  replacement: readonly Part[];
  /** Client values the replacement needs: without them the rule is skipped. */
  needs: readonly (keyof NameContext)[];
}

const CLIENT_KEYS: readonly (keyof NameContext)[] = ['mac', 'ip', 'arch'];
/** Longest name a remap accepts or produces (PATH_MAX, as `FileRoot`). */
const MAX_NAME = 4096;

function fail(text: string, why: string): never {
  throw new UserError(`remap '${text}': ${why}`);
}

/** Parse REPLACEMENT into parts; group numbers are checked against the regex's group count. */
function parseReplacement(text: string, rep: string, groups: number): Part[] {
  const parts: Part[] = [];
  let literal = '';
  const flush = (): void => {
    if (literal) parts.push({ kind: 'text', text: literal });
    literal = '';
  };
  const group = (ref: string, fold?: 'lower' | 'upper'): void => {
    const n = ref === '&' ? 0 : Number(ref);
    if (!/^(&|\d+)$/.test(ref) || n > groups) fail(text, `'${ref}' is not a group of the pattern (it has ${groups})`);
    flush();
    parts.push({ kind: 'group', n, ...(fold ? { fold } : {}) });
  };
  for (let i = 0; i < rep.length; i++) {
    const c = rep[i]!;
    if (c !== '$') {
      literal += c;
      continue;
    }
    const next = rep[i + 1];
    if (next === '$') {
      literal += '$';
      i++;
    } else if (next === '&' || (next !== undefined && /\d/.test(next))) {
      group(next);
      i++;
    } else if (next === '{') {
      const end = rep.indexOf('}', i);
      if (end < 0) fail(text, `'\${' without '}'`);
      const name = rep.slice(i + 2, end);
      i = end;
      const fold = /^(lower|upper):(.+)$/.exec(name);
      if (fold) group(fold[2]!, fold[1] as 'lower' | 'upper');
      else if ((CLIENT_KEYS as readonly string[]).includes(name)) {
        flush();
        parts.push({ kind: 'client', key: name as keyof NameContext });
      } else if (/^\d+$/.test(name)) group(name);
      else fail(text, `unknown '\${${name}}' (known: \${mac}, \${ip}, \${arch}, \${N}, \${lower:N}, \${upper:N})`);
    } else {
      fail(text, `a '$' must be followed by a group number, &, {…} or another '$'`);
    }
  }
  flush();
  return parts;
}

/**
 * Parse one rule: the pattern up to the first white space, the replacement after it (the rest of
 * the text, trimmed). @throws UserError naming the rule
 */
export function parseRemap(text: string): RemapRule {
  const m = /^(\S+)\s+(.+?)\s*$/s.exec(text.trim());
  if (!m) fail(text, "must be 'REGEX REPLACEMENT', separated by white space");
  let source = m[1]!;
  let flags = '';
  if (source.startsWith('(?i)')) {
    source = source.slice(4);
    flags = 'i';
  }
  let regex: RegExp;
  try {
    regex = new RegExp(source, flags);
  } catch (err) {
    fail(text, `bad regular expression: ${(err as Error).message}`);
  }
  // A pattern's group count: an empty alternative of it matches the empty string.
  const groups = new RegExp(`${source}|`, flags).exec('')!.length - 1;
  const replacement = parseReplacement(text, m[2]!, groups);
  const needs = [...new Set(replacement.flatMap((p) => (p.kind === 'client' ? [p.key] : [])))];
  return { text: text.trim(), regex, replacement, needs };
}

/** The `remap` setting: command line, repeated strings; config file, a list or one string. @throws UserError */
export function parseRemaps(value: unknown): RemapRule[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  return list.map((v) => {
    if (typeof v !== 'string') throw new UserError("remap: entries must be strings 'REGEX REPLACEMENT'");
    return parseRemap(v);
  });
}

/** A requested name as remap rules see it: `/` separators, no leading `/`. */
export function remapSubject(requested: string): string {
  return requested.replaceAll('\\', '/').replace(/^\/+/, '');
}

function clientValue(key: keyof NameContext, ctx: NameContext): string | undefined {
  const v = ctx[key];
  return key === 'mac' && v !== undefined ? v.replaceAll(':', '-') : v;
}

/**
 * Rewrite a requested name by the first rule that matches (and whose client values are known).
 * Returns the name unchanged, and no rule, when none applies.
 */
export function remapName(
  rules: readonly RemapRule[],
  requested: string,
  ctx: NameContext = {},
): { name: string; rule?: RemapRule } {
  if (rules.length === 0 || requested.length > MAX_NAME) return { name: requested };
  const subject = remapSubject(requested);
  for (const rule of rules) {
    if (rule.needs.some((k) => clientValue(k, ctx) === undefined)) continue;
    const m = rule.regex.exec(subject);
    if (!m) continue;
    let out = '';
    for (const p of rule.replacement) {
      if (p.kind === 'text') out += p.text;
      else if (p.kind === 'client') out += clientValue(p.key, ctx)!;
      else {
        const g = m[p.n] ?? '';
        out += p.fold === 'lower' ? g.toLowerCase() : p.fold === 'upper' ? g.toUpperCase() : g;
      }
    }
    const name = subject.slice(0, m.index) + out + subject.slice(m.index + m[0].length);
    return { name: name.slice(0, MAX_NAME + 1), rule };
  }
  return { name: requested };
}
