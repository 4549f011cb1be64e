/**
 * The request target of an HTTP request, turned into a name for `FileRoot` or refused. Pure.
 *
 * Only the origin form (`/path?query`, RFC 9112 §3.2.1) is served: `*` and absolute URLs are refused.
 * The path is percent-decoded once (RFC 3986 §2.1); what decoding could smuggle past `FileRoot` is
 * refused before it gets there: an encoded `/` or `\` (a name that is one segment to a proxy and two
 * to us), a backslash at all, NUL and other control characters, and a `..` segment. `FileRoot` then
 * does the containment itself (real path inside the root, O_NOFOLLOW, regular files only).
 */

/** Why a target was refused: a log field. Every refusal is answered 404. */
export type TargetRefusal =
  'not-origin-form' | 'encoded-separator' | 'bad-encoding' | 'control' | 'backslash' | 'dot-dot';

export type Target = { ok: true; path: string; query: string } | { ok: false; reason: TargetRefusal };

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Split and decode a request target. `path` keeps its leading `/`; `query` has no `?`. */
export function parseTarget(target: string): Target {
  if (!target.startsWith('/')) return { ok: false, reason: 'not-origin-form' };
  const hash = target.indexOf('#');
  const noFragment = hash < 0 ? target : target.slice(0, hash);
  const q = noFragment.indexOf('?');
  const raw = q < 0 ? noFragment : noFragment.slice(0, q);
  const query = q < 0 ? '' : noFragment.slice(q + 1);
  if (/%(2f|5c)/i.test(raw)) return { ok: false, reason: 'encoded-separator' };
  if (raw.includes('\\')) return { ok: false, reason: 'backslash' };
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { ok: false, reason: 'bad-encoding' };
  }
  if (CONTROL.test(path)) return { ok: false, reason: 'control' };
  if (path.includes('\\')) return { ok: false, reason: 'backslash' };
  if (path.split('/').includes('..')) return { ok: false, reason: 'dot-dot' };
  return { ok: true, path, query };
}

/** The name `FileRoot.open` gets for a decoded path: without its leading slashes. */
export function fileNameOf(path: string): string {
  return path.replace(/^\/+/, '');
}
