/** Longest text taken from the network into a log line or an event. */
export const MAX_PRINTABLE = 200;

/**
 * Printable ASCII only, capped: names, vendor classes and messages come from the network and must
 * not carry terminal escapes, newlines (forged log lines) or megabytes into a log.
 */
export function printable(text: string, max = MAX_PRINTABLE): string {
  const out = text.replace(/[^\x20-\x7e]/g, '?');
  return out.length > max ? `${out.slice(0, max)}…` : out;
}
