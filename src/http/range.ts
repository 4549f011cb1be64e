/**
 * The `Range` request header (RFC 9110 §14.1.2, §14.2), bytes only. Pure.
 *
 * - absent, another unit, or bad syntax: `none` (the whole file, 200: a server may ignore Range);
 * - one satisfiable range: `single`, clipped to the file (206);
 * - one or more ranges and none satisfiable: `unsatisfiable` (416);
 * - several ranges with at least one satisfiable: `multiple`, served as the whole file (200):
 *   multipart/byteranges is not offered, which RFC 9110 §14.2 allows (a server MAY ignore Range).
 */
export type RangeResult =
  { kind: 'none' } | { kind: 'single'; start: number; end: number } | { kind: 'multiple' } | { kind: 'unsatisfiable' };

/** Ranges past this many, or a header past this length, are ignored rather than parsed. */
const MAX_RANGES = 16;
const MAX_HEADER = 1024;

type Spec = { start: number; end: number } | 'unsatisfiable' | null;

function num(text: string): number | undefined {
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** One `first-last`, `first-` or `-suffix` against a file of `size` bytes; null when malformed. */
function spec(text: string, size: number): Spec {
  const m = /^(\d*)-(\d*)$/.exec(text.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = num(m[2]!);
    if (suffix === undefined) return null;
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const first = num(m[1]!);
  const last = m[2] === '' ? Infinity : num(m[2]!);
  if (first === undefined || last === undefined || last < first) return null;
  if (first >= size) return 'unsatisfiable';
  return { start: first, end: Math.min(last, size - 1) };
}

/** Parse a Range header for a file of `size` bytes. */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined || header.length > MAX_HEADER) return { kind: 'none' };
  const m = /^\s*bytes\s*=(.*)$/i.exec(header);
  if (!m) return { kind: 'none' };
  const parts = m[1]!.split(',').filter((p) => p.trim() !== '');
  if (parts.length === 0 || parts.length > MAX_RANGES) return { kind: 'none' };
  const specs = parts.map((p) => spec(p, size));
  if (specs.includes(null)) return { kind: 'none' };
  const ok = specs.filter((s): s is { start: number; end: number } => s !== null && s !== 'unsatisfiable');
  if (ok.length === 0) return { kind: 'unsatisfiable' };
  if (parts.length > 1) return { kind: 'multiple' };
  return { kind: 'single', ...ok[0]! };
}
