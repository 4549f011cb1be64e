import type { OfferSummary } from './analyze.js';
import type { TransferReport } from './fetch.js';
import type { ProbeResult } from './run.js';
import { decisionText, originText } from './status.js';

function vendorText(o: OfferSummary): string {
  if (o.vendorShape === 'none') return 'none';
  if (o.vendorShape === 'bypass') return `bypass (6=${o.discoveryControl})`;
  if (o.vendorShape === 'menu')
    return `menu: ${o.menu.map((m) => `${m.type.toString(16)}:"${m.description}"`).join(' ')}`;
  return o.vendorShape;
}

const ROWS: [string, (o: OfferSummary) => string][] = [
  ['server', (o) => o.server],
  ['from', (o) => o.source],
  ['kind', (o) => `${o.kind} ${o.message}`],
  ['address (yiaddr)', (o) => o.yourIp],
  ['next-server', (o) => o.nextServer],
  ['boot file', (o) => o.bootFile || '-'],
  ['option 60', (o) => (o.pxeClient ? 'PXEClient' : o.httpClient ? 'HTTPClient' : '-')],
  ['option 66', (o) => o.tftpServerName ?? '-'],
  ['option 43', vendorText],
  ['option 97', (o) => (o.kind === 'address' ? '-' : o.uuidEcho)],
];

/** Offers side by side: one column per server. */
export function offerTable(offers: OfferSummary[]): string {
  if (offers.length === 0) return 'Offers: none\n';
  const cells = ROWS.map(([label, f]) => [label, ...offers.map(f)]);
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  const lines = cells.map((row) =>
    row
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
  return `Offers (${offers.length}):\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

function transferLine(t: TransferReport): string {
  if (!t.ok)
    return `  ${t.role.padEnd(9)} ${t.file}: FAILED (${t.failure?.kind === 'error' ? `${t.failure.name}: ${t.failure.message}` : t.failure?.message})`;
  const from = t.origin !== undefined ? ` [${originText(t.origin)}]` : '';
  if (t.protocol === 'http')
    return `  ${t.role.padEnd(9)} ${t.file}: ${t.bytes} bytes in ${t.ms} ms (${t.kBps} kB/s, HTTP ${t.status}) sha256 ${t.sha256}${from}`;
  return `  ${t.role.padEnd(9)} ${t.file}: ${t.bytes} bytes in ${t.ms} ms (${t.kBps} kB/s, blksize ${t.blksize}, windowsize ${t.windowsize}${t.tsize !== undefined ? `, tsize ${t.tsize}` : ''}) sha256 ${t.sha256}${from}`;
}

function exchangeText(r: ProbeResult): string[] {
  const lines: string[] = [];
  if (r.lease) lines.push(`Lease: ${r.lease.address} from ${r.lease.server}: ${r.lease.answer}`);
  if (r.plan.kind === 'ask-4011') {
    lines.push(
      `Next: boot request to ${r.plan.target}:4011${r.plan.bootItemType !== undefined ? ` (boot server discovery, item type ${r.plan.bootItemType})` : ''}`,
    );
  }
  const br = r.bootRequest;
  if (br)
    lines.push(
      br.answered
        ? `Port 4011: ${br.reply?.message} from ${br.target}:${br.sourcePort}, file "${br.reply?.bootFile ?? ''}"`
        : `Port 4011: no answer from ${br.target}`,
    );
  lines.push(
    r.final
      ? /^http:\/\//i.test(r.final.file)
        ? `Boot: "${r.final.file}" over HTTP (answer of ${r.final.from})`
        : `Boot: "${r.final.file}" from TFTP server ${r.final.nextServer} (answer of ${r.final.from})`
      : 'Boot: nothing to boot',
  );
  if (r.status) lines.push(decisionText(r.status));
  return lines;
}

function fetchText(r: ProbeResult): string[] {
  if (!r.fetch) return [];
  const lines = [r.fetch.transfers[0]?.protocol === 'http' ? 'HTTP:' : 'TFTP:'];
  const px = r.fetch.pxelinux;
  lines.push(...r.fetch.transfers.filter((t) => t.role === 'boot file').map(transferLine));
  if (px) {
    lines.push(`  ldlinux: ${px.ldlinux.file}${px.ldlinux.found ? '' : ' MISSING'}`);
    lines.push(
      `  pxelinux config search: ${px.searched.map((s) => `${s.file.replace(/^.*pxelinux\.cfg\//, '')}${s.found ? ' (found)' : ''}`).join(', ')}`,
    );
    if (px.entry?.kernel !== undefined)
      lines.push(
        `  default entry "${px.entry.label}": kernel ${px.entry.kernel}${px.entry.initrd.length ? `, initrd ${px.entry.initrd.join(',')}` : ''}`,
      );
    else if (px.entry)
      lines.push(`  default entry: local boot (label "${px.entry.label}", LOCALBOOT ${px.entry.localBoot})`);
  }
  lines.push(...r.fetch.transfers.filter((t) => t.role !== 'boot file').map(transferLine));
  return lines;
}

/** The human report. */
export function textReport(r: ProbeResult): string {
  const head = `pxe-probe on ${r.interface}: MAC ${r.mac}, arch ${r.arch} (${r.archName}), as ${r.firmware}`;
  const findings = r.findings.map((f) => `${f.level.toUpperCase()}: ${f.text}`);
  const verdict = r.ok ? 'RESULT: OK, a boot file was offered' + (r.fetch ? ' and fetched' : '') : 'RESULT: FAILED';
  return [
    head,
    '',
    offerTable(r.offers),
    ...exchangeText(r),
    ...fetchText(r),
    ...(r.lease?.acked ? [`Released: ${r.released ? 'yes' : 'no'}`] : []),
    '',
    ...findings,
    verdict,
    '',
  ].join('\n');
}

/** The `--json` report: one object, stable keys. */
export function jsonReport(r: ProbeResult): string {
  return `${JSON.stringify(r, (key, value: unknown) => (key === 'via' ? (value as OfferSummary).server : value), 2)}\n`;
}
