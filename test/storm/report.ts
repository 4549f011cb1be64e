import type { StackResult } from './run.js';

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export interface Summary {
  finished: number;
  lost: number;
  p50: number;
  p95: number;
  max: number;
  /** The NBP phase alone: seconds from power-on to NBP loaded (median). */
  nbpP50: number;
  timeouts: number;
  duplicates: number;
  busy: number;
  rrqRetries: number;
  discovers: number;
  errors: Record<string, number>;
}

export function summarize(r: StackResult): Summary {
  const res = r.clients.results;
  const done = res.filter((m) => m.ok).map((m) => m.doneAt!);
  const errors: Record<string, number> = {};
  for (const m of res) if (!m.ok) errors[m.error ?? '?'] = (errors[m.error ?? '?'] ?? 0) + 1;
  const sum = (f: (m: (typeof res)[number]) => number): number => res.reduce((a, m) => a + f(m), 0);
  return {
    finished: done.length,
    lost: res.length - done.length,
    p50: quantile(done, 0.5),
    p95: quantile(done, 0.95),
    max: done.length ? Math.max(...done) : NaN,
    nbpP50: quantile(
      res.filter((m) => m.nbpAt !== undefined).map((m) => m.nbpAt!),
      0.5,
    ),
    timeouts: sum((m) => m.tftp.timeouts),
    duplicates: sum((m) => m.tftp.duplicates),
    busy: sum((m) => m.tftp.busy),
    rrqRetries: sum((m) => m.tftp.requestRetries),
    discovers: sum((m) => m.discovers),
    errors,
  };
}

const f = (n: number | null | undefined, d = 1): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d);

/** The markdown table, one row per stack, with ratios to ours (theirs / ours: above 1 means we are better). */
export function table(results: StackResult[]): string {
  const ours = results.find((r) => r.stack === 'ours');
  const os = ours ? summarize(ours) : undefined;
  const ratio = (theirs: number, mine: number | undefined): string =>
    mine !== undefined && Number.isFinite(theirs) && Number.isFinite(mine) && mine > 0
      ? ` (${(theirs / mine).toFixed(2)}×)`
      : '';
  const lines = [
    '| stack | finished | p50 s | p95 s | max s | max/p50 | NBP p50 s | TFTP timeouts / dup blocks | busy / RRQ retries | server CPU s | peak RSS MiB | rcvbuf drops srv/cli | generator CPU s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const s = summarize(r);
    const mine = r === ours;
    const name = r.stack + (r.via === 'http' && r.httpServer ? ` + ${r.httpServer}` : '');
    lines.push(
      `| ${name} | ${s.finished}/${r.n} | ${f(s.p50)}${mine ? '' : ratio(s.p50, os?.p50)} | ${f(s.p95)}${mine ? '' : ratio(s.p95, os?.p95)} | ${f(s.max)}${mine ? '' : ratio(s.max, os?.max)} | ${f(s.max / s.p50, 2)} | ${f(s.nbpP50, 2)} | ${s.timeouts} / ${s.duplicates} | ${s.busy} / ${s.rrqRetries} | ${f(r.cpuSeconds)}${mine ? '' : ratio(r.cpuSeconds ?? NaN, ours?.cpuSeconds ?? undefined)} | ${f(r.peakRssKiB / 1024)}${mine ? '' : ratio(r.peakRssKiB, ours?.peakRssKiB)} | ${r.rcvbufErrors.server} / ${r.rcvbufErrors.client} | ${f(r.clients.cpuSeconds)} |`,
    );
  }
  lines.push('', 'Ratios in brackets: that stack / ours (above 1: ours is faster or lighter).');
  for (const r of results) {
    const s = summarize(r);
    for (const [e, n] of Object.entries(s.errors)) lines.push(`- ${r.stack}: ${n} lost: ${e}`);
    for (const w of r.warnings) lines.push(`- ${r.stack} logged ${w.count}× at warn: ${w.example.slice(0, 400)}`);
    if (r.stats) {
      const tftp = Object.entries(r.stats).filter(([k, v]) => k.startsWith('tftp-') && v > 0);
      lines.push(`- ${r.stack} TFTP counters: ${tftp.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
  }
  return lines.join('\n');
}
