import { resolve } from 'node:path';
import { UserError } from '../core/errors.js';
import { parseExitConditions } from '../core/events.js';
import { parseRemaps } from '../files/remap.js';
import type { Config } from '../daemon/config.js';
import { parseNotifyTarget, type EventsConfig } from '../daemon/events.js';
import { parseMetricsAddress } from '../daemon/metrics.js';
import { checkDecideUrl, DECIDE_DEFAULTS, type DecideSettings } from '../pxe/decide.js';

/**
 * The options of decisions and events from outside (issue 13): `--decide-url` and its settings,
 * `--remap`, `--events`, `--notify`, `--exit-after`, `--exit-timeout`, `--metrics`. Spread into the
 * command line's OPTIONS; the same keys work in the `--config` file.
 */
export const OUTSIDE_OPTIONS = {
  'decide-url': {
    type: 'string',
    desc: 'ask this URL what each PXE client boots (GET ?mac=&uuid=&arch=&…; 200 JSON answer, 204/403/404 deny)',
  },
  'decide-timeout': { type: 'number', desc: 'seconds to wait for --decide-url before the fallback (default 2)' },
  'decide-fallback': {
    type: 'string',
    choices: ['rules', 'deny'],
    desc: 'when --decide-url fails: answer from the local rules (default) or not at all',
  },
  'decide-cache': {
    type: 'number',
    desc: 'seconds an answer of --decide-url is reused per client (default 10; 0: never)',
  },
  remap: {
    type: 'string',
    desc: "rewrite requested names: 'REGEX REPLACEMENT' with $1, ${mac}, ${ip}, ${arch} (repeatable)",
  },
  events: { type: 'string', desc: 'write one JSON line per event to this file (- for stdout)' },
  notify: { type: 'string', desc: 'send one JSON datagram per event to udp://HOST:PORT (repeatable)' },
  'exit-after': {
    type: 'string',
    desc: 'exit 0 once this event has happened, e.g. transfer-done:vmlinuz (repeatable: all of them)',
  },
  'exit-timeout': { type: 'number', desc: 'with --exit-after: exit 1 after this many seconds' },
  metrics: {
    type: 'string',
    desc: 'serve /metrics (Prometheus) and /status (JSON) on ADDRESS:PORT, e.g. 127.0.0.1:9187',
  },
} as const;

/** The list options among them. */
export const OUTSIDE_LISTS = ['remap', 'notify', 'exit-after'] as const;

type Raw = Record<string, unknown>;

function text(raw: Raw, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw new UserError(`${key} must be a non-empty string`);
  return v;
}

function seconds(raw: Raw, key: string, min: number, max: number): number | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new UserError(`${key} must be a number of seconds from ${min} to ${max}`);
  }
  return v;
}

function list(raw: Raw, key: string): string[] {
  const v = raw[key];
  if (v === undefined || v === null) return [];
  const l = Array.isArray(v) ? (v as unknown[]) : [v];
  if (!l.every((x) => typeof x === 'string' && x !== '')) throw new UserError(`${key} entries must be strings`);
  return l as string[];
}

function decide(raw: Raw): DecideSettings | undefined {
  const url = text(raw, 'decide-url');
  const settings = ['decide-timeout', 'decide-fallback', 'decide-cache'].filter((k) => raw[k] !== undefined);
  if (url === undefined) {
    if (settings.length > 0) throw new UserError(`${settings[0]} needs --decide-url`);
    return undefined;
  }
  const fallback = text(raw, 'decide-fallback') ?? 'rules';
  if (fallback !== 'rules' && fallback !== 'deny') throw new UserError('decide-fallback must be one of rules, deny');
  return {
    url: checkDecideUrl(url),
    timeoutMs: Math.round((seconds(raw, 'decide-timeout', 0.1, 60) ?? DECIDE_DEFAULTS.timeoutMs / 1000) * 1000),
    fallback,
    cacheMs: Math.round((seconds(raw, 'decide-cache', 0, 86_400) ?? DECIDE_DEFAULTS.cacheMs / 1000) * 1000),
  };
}

function events(raw: Raw, foreground: boolean): EventsConfig | undefined {
  const file = text(raw, 'events');
  const notify = list(raw, 'notify').map(parseNotifyTarget);
  const exitAfter = parseExitConditions(raw['exit-after']);
  const exitTimeout = seconds(raw, 'exit-timeout', 1, 7 * 86_400);
  if (exitTimeout !== undefined && exitAfter.length === 0) throw new UserError('exit-timeout needs --exit-after');
  if (file === '-' && !foreground) throw new UserError('events - (stdout) needs -d: a detached daemon has no stdout');
  if (file === undefined && notify.length === 0 && exitAfter.length === 0) return undefined;
  return {
    ...(file !== undefined ? { file: file === '-' ? file : resolve(file) } : {}),
    notify,
    exitAfter,
    ...(exitTimeout !== undefined ? { exitTimeout } : {}),
  };
}

/**
 * The settings of these options, checked. `foreground` is `-d` (`--events -` needs it).
 * @throws UserError naming the option
 */
export function resolveOutside(raw: Raw, foreground: boolean): Pick<Config, 'decide' | 'remap' | 'events' | 'metrics'> {
  const d = decide(raw);
  const remap = parseRemaps(raw.remap);
  const e = events(raw, foreground);
  const metrics = text(raw, 'metrics');
  return {
    ...(d ? { decide: d } : {}),
    ...(remap.length > 0 ? { remap } : {}),
    ...(e ? { events: e } : {}),
    ...(metrics !== undefined ? { metrics: parseMetricsAddress(metrics) } : {}),
  };
}
