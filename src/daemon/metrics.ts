/*
 * Over 300 lines on purpose: the registry (fed by the events and the daemon's counters), `/status`
 * and the listener that serves both are the one `--metrics` surface, and most of the length is
 * metric definitions. They are wired to the daemon in outside.ts.
 */
/**
 * `--metrics ADDR:PORT`: `/metrics` in the Prometheus text format and `/status` as JSON, on an
 * address of its own (127.0.0.1 or a management LAN; never the boot LAN by accident).
 *
 * The exposition is prom-client's: a well-kept library whose registry, metric types and text format
 * (escaping, HELP/TYPE lines, histogram buckets) are done right and checked by `promtool`, which a
 * hand-written format would have to earn again. The daemon's own counters (`Daemon.stats`) are read
 * when scraped; answers, transfers and decision latencies are counted from the events.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Counters } from '../core/counters.js';
import { UserError } from '../core/errors.js';
import type { EventSink, FileOrigin, PxeEvent } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { isIPv4 } from '../wire/ip.js';
import type { ClientTable, SeenClient } from '../pxe/clients.js';

/** `--metrics` as parsed. */
export interface MetricsConfig {
  address: string;
  port: number;
}

/** Parse `ADDR:PORT` (an IPv4 address; `0.0.0.0` only when written out). @throws UserError */
export function parseMetricsAddress(text: string): MetricsConfig {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : -1;
  if (!m || !isIPv4(m[1]!) || port < 0 || port > 65535) {
    throw new UserError(`metrics '${text}' must be ADDRESS:PORT, e.g. 127.0.0.1:9187`);
  }
  return { address: m[1]!, port };
}

/** The version in package.json (dist/daemon/ and src/daemon/ are both two levels below it). */
export function daemonVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** A transfer in progress, for `/status`. */
export interface ActiveTransfer {
  protocol: 'tftp';
  ip: string;
  port: number;
  mac?: string;
  file: string;
  size: number;
  started: string;
  origin: FileOrigin;
}

/** A transfer started lately (TFTP) or served (HTTP), for `/status`: who, which file, from where. */
export interface RecentTransfer {
  time: string;
  protocol: 'tftp' | 'http';
  ip: string;
  mac?: string;
  /** As served, and as asked for when `--remap` changed it. */
  file: string;
  requested?: string;
  origin: FileOrigin;
}

/** What the metrics and status pages read from the daemon, when asked. */
export interface MetricsSource {
  stats: Counters<string>;
  version: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  interfaces: () => { name: string; address: string; ports: Record<string, number[]> }[];
  tftpActive: () => number;
  httpConnections: () => number;
  transfers: () => ActiveTransfer[];
  /** Newest first. */
  recentTransfers: () => RecentTransfer[];
  clients?: ClientTable;
  decide: () => { url: string; inFlight: number; fallback: string } | undefined;
}

/** Clients listed by `/status`. */
const STATUS_CLIENTS = 50;
/** Distinct answer label sets kept; more are counted under `rule="other"`. */
const MAX_RULE_LABELS = 256;
const DECIDE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

/** Counter names that are not dropped packets: answers, the other servers', decisions. */
function isDrop(name: string): boolean {
  return !/^(tftp-|http-|decide-)/.test(name) && name !== 'offer-sent' && name !== 'ack-sent';
}

/** The registry and the event sink that feeds it. */
export class DaemonMetrics implements EventSink {
  readonly registry = new Registry();
  readonly #answers: Counter;
  readonly #decide: Histogram;
  readonly #bytes: Counter;
  readonly #transfers: Counter;
  readonly #rules = new Set<string>();

  constructor(src: MetricsSource) {
    const r = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters, which `promtool check metrics` rejects (prom-client's own defaults).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'pxe_pdhcp_info',
      help: 'Always 1; the version label names the running pxe-pdhcp.',
      labelNames: ['version'],
      registers: r,
      collect() {
        this.set({ version: src.version }, 1);
      },
    });
    new Gauge({
      name: 'pxe_pdhcp_uptime_seconds',
      help: 'Seconds since the daemon started serving.',
      registers: r,
      collect() {
        this.set((Date.now() - src.startedAt) / 1000);
      },
    });
    new Counter({
      name: 'pxe_pdhcp_stats_total',
      help: 'Every counter the daemon keeps (answers, refusals by reason, TFTP and HTTP outcomes), by name.',
      labelNames: ['stat'],
      registers: r,
      collect() {
        this.reset();
        for (const [k, v] of Object.entries(src.stats.snapshot())) this.inc({ stat: k }, v);
      },
    });
    new Counter({
      name: 'pxe_pdhcp_dhcp_dropped_total',
      help: 'DHCP packets not answered, by reason (not PXE, malformed, denied, not served, ...).',
      labelNames: ['reason'],
      registers: r,
      collect() {
        this.reset();
        for (const [k, v] of Object.entries(src.stats.snapshot())) if (isDrop(k)) this.inc({ reason: k }, v);
      },
    });
    this.#answers = new Counter({
      name: 'pxe_pdhcp_dhcp_answers_total',
      help: 'Proxy offers (port 67) and boot ACKs (port 4011) sent, by the rule that chose them.',
      labelNames: ['kind', 'rule', 'decided_by'],
      registers: r,
    });
    this.#decide = new Histogram({
      name: 'pxe_pdhcp_decide_duration_seconds',
      help: 'Time to an outcome from --decide-url, by outcome (answer, deny, fallback).',
      labelNames: ['outcome'],
      buckets: DECIDE_BUCKETS,
      registers: r,
    });
    this.#bytes = new Counter({
      name: 'pxe_pdhcp_transfer_bytes_total',
      help: 'File bytes sent by the TFTP and HTTP servers (TFTP: acknowledged).',
      labelNames: ['protocol'],
      registers: r,
    });
    this.#transfers = new Counter({
      name: 'pxe_pdhcp_transfers_total',
      help: 'File transfers ended, by protocol and result (done, or the reason it failed).',
      labelNames: ['protocol', 'result'],
      registers: r,
    });
    new Gauge({
      name: 'pxe_pdhcp_transfers_active',
      help: 'Transfers in progress: TFTP transfers, open HTTP connections.',
      labelNames: ['protocol'],
      registers: r,
      collect() {
        this.set({ protocol: 'tftp' }, src.tftpActive());
        this.set({ protocol: 'http' }, src.httpConnections());
      },
    });
    new Gauge({
      name: 'pxe_pdhcp_decide_in_flight',
      help: 'Requests to --decide-url not yet answered.',
      registers: r,
      collect() {
        this.set(src.decide()?.inFlight ?? 0);
      },
    });
    new Gauge({
      name: 'pxe_pdhcp_clients_known',
      help: 'PXE clients in the table of recent clients.',
      registers: r,
      collect() {
        this.set(src.clients?.size ?? 0);
      },
    });
  }

  emit(e: PxeEvent): void {
    switch (e.type) {
      case 'offer':
      case 'ack': {
        // Decided answers are one label (their text is per machine); fallbacks keep the rule only.
        let rule = e['decided-by'] === 'decide-url' ? 'decide-url' : e.rule.split(', after ')[0]!;
        if (!this.#rules.has(rule)) {
          if (this.#rules.size >= MAX_RULE_LABELS) rule = 'other';
          else this.#rules.add(rule);
        }
        this.#answers.inc({ kind: e.type, rule, decided_by: e['decided-by'] });
        return;
      }
      case 'decide':
        if (e.status !== 'busy') this.#decide.observe({ outcome: e.outcome }, e.ms / 1000);
        return;
      case 'transfer-done':
      case 'transfer-failed':
        this.#bytes.inc({ protocol: e.protocol }, e.bytes);
        this.#transfers.inc({
          protocol: e.protocol,
          result: e.type === 'transfer-done' ? 'done' : (e.reason ?? 'failed'),
        });
        return;
      default:
    }
  }
}

/** `/status`: what runs, and who was seen. */
export function statusOf(src: MetricsSource): Record<string, unknown> {
  const clients = src.clients?.recent(STATUS_CLIENTS) ?? [];
  return {
    version: src.version,
    pid: process.pid,
    started: new Date(src.startedAt).toISOString(),
    'uptime-seconds': Math.round((Date.now() - src.startedAt) / 1000),
    interfaces: src.interfaces(),
    'active-transfers': { tftp: src.tftpActive(), http: src.httpConnections(), list: src.transfers() },
    'recent-transfers': src.recentTransfers(),
    'decide-url': src.decide() ?? null,
    'clients-seen': clients.map((c: SeenClient) => ({ ...c, lastSeen: new Date(c.lastSeen).toISOString() })),
  };
}

/** The metrics listener: bound in the bind phase, answering once `serve()` is called. */
export class MetricsServer {
  readonly #server: Server;
  readonly #metrics: DaemonMetrics;
  readonly #src: MetricsSource;
  #serving = false;

  private constructor(server: Server, metrics: DaemonMetrics, src: MetricsSource) {
    this.#server = server;
    this.#metrics = metrics;
    this.#src = src;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#answer(req, res));
  }

  /**
   * Listen on `config`; warn when that is every address (0.0.0.0) or a served interface's.
   * @throws UserError when the address or port cannot be used
   */
  static async bind(
    config: MetricsConfig,
    metrics: DaemonMetrics,
    src: MetricsSource,
    log: Logger,
  ): Promise<MetricsServer> {
    const server = createServer({ headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000 });
    server.maxConnections = 16;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new UserError(`metrics port ${config.address}:${config.port} cannot be bound (${err.code ?? err.message})`),
        ),
      );
      server.listen({ host: config.address, port: config.port }, () => resolve());
    });
    server.removeAllListeners('error');
    server.on('error', () => undefined);
    const served = src.interfaces().map((i) => i.address);
    if (config.address === '0.0.0.0') {
      log.warn('metrics listen on every address, the boot LAN included: give a management address such as 127.0.0.1', {
        metrics: `${config.address}:${config.port}`,
      });
    } else if (served.includes(config.address)) {
      log.warn('metrics listen on an address of a served interface: machines on the boot LAN can read them', {
        metrics: `${config.address}:${config.port}`,
      });
    }
    return new MetricsServer(server, metrics, src);
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  serve(): void {
    this.#serving = true;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, {
        'Content-Type': type,
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'Method Not Allowed\n');
    if (!this.#serving) return send(503, 'text/plain', 'Starting\n');
    try {
      if (path === '/metrics')
        return send(200, this.#metrics.registry.contentType, await this.#metrics.registry.metrics());
      if (path === '/status') return send(200, 'application/json', `${JSON.stringify(statusOf(this.#src), null, 2)}\n`);
      send(404, 'text/plain', 'Not Found: try /metrics or /status\n');
    } catch (err) {
      send(500, 'text/plain', `${String(err)}\n`);
    }
  }
}
