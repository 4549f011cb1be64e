import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../daemon/config.js';
import { tcpListenHolders } from '../net/port-owner.js';
import { Decider, type DecideReport, type Fetch } from '../pxe/decide.js';

/** One line of the `--check` report (the shape of src/cli/check.ts's CheckLine). */
interface Line {
  ok: boolean;
  text: string;
}

/** The client `--check` asks about: all-zero MAC, a BIOS PXE ROM. */
const PROBE_MAC = '00:00:00:00:00:00';

/**
 * `--check` with `--decide-url`: ask the URL once about a made-up BIOS client (MAC
 * 00:00:00:00:00:00) and say whether it answers as the daemon needs: an answer (200 with a valid
 * rule) or a denial (204, 403, 404) pass; anything else means every client would get the fallback.
 */
export async function decideCheckLines(config: Config, fetch?: Fetch): Promise<Line[]> {
  const d = config.decide;
  if (!d) return [];
  let report: DecideReport | undefined;
  const decider = new Decider(
    { ...d, cacheMs: 0, http: config.http?.enabled ?? false },
    { ...(fetch ? { fetch } : {}), onReport: (r) => (report = r) },
  );
  const outcome = await decider.ask({
    client: {
      mac: PROBE_MAC,
      arch: 0,
      archName: 'bios',
      archAssumed: false,
      vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
      isIpxe: false,
    },
    port: 67,
    ...(config.interfaces[0] !== undefined ? { interface: config.interfaces[0] } : {}),
  });
  const url = decider.displayUrl;
  const ms = Math.round(report?.ms ?? 0);
  switch (outcome.kind) {
    case 'answer':
      return [{ ok: true, text: `decide-url ${url} answers (200 in ${ms} ms): ${outcome.rule.text} for ${PROBE_MAC}` }];
    case 'deny':
      return [
        { ok: true, text: `decide-url ${url} answers (${outcome.status} in ${ms} ms): ${PROBE_MAC} is not answered` },
      ];
    default: {
      const why = `${outcome.why}${outcome.detail ? ` (${outcome.detail})` : ''}`;
      return [
        {
          ok: false,
          text: `decide-url ${url} does not answer as needed: ${why}; clients would get the fallback (${d.fallback})`,
        },
      ];
    }
  }
}

/** `--events FILE` can be appended to; `--metrics` has its TCP port free. */
export function eventsAndMetricsLines(config: Config, tcpHolders = tcpListenHolders): Line[] {
  const lines: Line[] = [];
  const file = config.events?.file;
  if (file !== undefined && file !== '-') {
    const target = existsSync(file) ? file : dirname(file);
    try {
      accessSync(target, constants.W_OK);
      lines.push({ ok: true, text: `events file ${file} is writable` });
    } catch {
      lines.push({ ok: false, text: `events file ${file} cannot be written (${target})` });
    }
  }
  const m = config.metrics;
  if (m) {
    const held = tcpHolders(m.port).filter((h) => h.address === m.address || h.address === '0.0.0.0');
    lines.push(
      held.length === 0 || m.port === 0
        ? { ok: true, text: `metrics ${m.address}:${m.port}: TCP port is free` }
        : { ok: false, text: `metrics ${m.address}:${m.port}: TCP port is in use` },
    );
  }
  return lines;
}
