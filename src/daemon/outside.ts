import type { Counters } from '../core/counters.js';
import { EventBus, fileOrigin, type PxeEvent } from '../core/events.js';
import type { Logger, PeerLog } from '../core/logger.js';
import type { NameContext, RemapRule } from '../files/remap.js';
import type { HttpServerOptions } from '../http/server.js';
import { ClientTable } from '../pxe/clients.js';
import { DECIDE_LABEL, Decider, type DecideCounter, type DecideReport } from '../pxe/decide.js';
import type { ResponderDeps } from '../pxe/responder.js';
import type { TftpServerOptions } from '../tftp/server.js';
import type { Config } from './config.js';
import {
  bindEventSinks,
  decideEvent,
  httpEvents,
  tftpEndEvent,
  tftpStartEvent,
  watchExit,
  type BoundSinks,
} from './events.js';
import {
  DaemonMetrics,
  daemonVersion,
  MetricsServer,
  type ActiveTransfer,
  type MetricsSource,
  type RecentTransfer,
} from './metrics.js';

/**
 * What the daemon asks of and tells the world outside its three servers: `--decide-url`, `--remap`,
 * the events (`--events`, `--notify`, `--exit-after`) and `--metrics`. One object, bound with the
 * sockets (files and listeners are opened as root, before the drop), serving after the drop,
 * reloaded on SIGHUP (decide and remap; the rest is restart-only) and closed with the daemon.
 */

/** What the TFTP server gets: the remap rules for its root, and the hooks that feed events and `/status`. */
export type TftpHooks = Pick<TftpServerOptions, 'onTransferStart' | 'onTransferEnd' | 'nameContext'> & {
  remap: () => readonly RemapRule[];
};

/** What the HTTP server gets. */
export type HttpHooks = Pick<HttpServerOptions, 'nameContext' | 'decided' | 'onRequest'> & {
  remap: () => readonly RemapRule[];
};

export interface OutsideDeps {
  log: Logger;
  lines: PeerLog;
  stats: Counters<string> & { count(key: DecideCounter): void };
  /** `--exit-after`: how the daemon ends (the command exits with `code`). */
  exit?: (code: number, reason: string) => void;
}

/** What `/status` and `/metrics` read once serving. */
export type ServingState = Pick<MetricsSource, 'interfaces' | 'tftpActive' | 'httpConnections'>;

/** Transfers listed by `/status` at most (the TFTP server's own cap is higher; this is a view). */
const MAX_LISTED_TRANSFERS = 256;
/** Transfers started lately that `/status` lists, newest first, with where each file came from. */
const RECENT_TRANSFERS = 256;

export class Outside {
  readonly events = new EventBus();
  readonly clients = new ClientTable();
  readonly #deps: OutsideDeps;
  readonly #transfers = new Map<string, ActiveTransfer>();
  readonly #recent: RecentTransfer[] = [];
  readonly #startedAt = Date.now();
  #config: Config;
  #decider: Decider | undefined;
  #remap: readonly RemapRule[];
  #sinks: BoundSinks | undefined;
  #metrics: MetricsServer | undefined;
  #stopExit: (() => void) | undefined;
  #state: ServingState = { interfaces: () => [], tftpActive: () => 0, httpConnections: () => 0 };

  private constructor(config: Config, deps: OutsideDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#remap = config.remap ?? [];
    this.#decider = this.#makeDecider(config);
  }

  /**
   * Open the event sinks and the metrics listener (bind phase, before the privilege drop).
   * @throws UserError when a file, host or port cannot be used (nothing stays open then)
   */
  static async bind(config: Config, deps: OutsideDeps): Promise<Outside> {
    const o = new Outside(config, deps);
    try {
      o.#sinks = await bindEventSinks(config.events);
      for (const s of o.#sinks.sinks) o.events.add(s);
      if (config.metrics) {
        const metrics = new DaemonMetrics(o.#source());
        o.events.add(metrics);
        o.#metrics = await MetricsServer.bind(config.metrics, metrics, o.#source(), deps.log);
      }
    } catch (err) {
      await o.close();
      throw err;
    }
    return o;
  }

  /** The `--decide-url` in force, if any. */
  get decider(): Decider | undefined {
    return this.#decider;
  }

  /** The metrics listener's port (tests bind port 0), if any. */
  get metricsPort(): number | undefined {
    return this.#metrics?.port;
  }

  /** What the responder needs: the events, the client table, the decider in force. */
  responderDeps(): Pick<ResponderDeps, 'events' | 'clients' | 'decider'> {
    return { events: this.events, clients: this.clients, decider: () => this.#decider };
  }

  tftpHooks(): TftpHooks {
    return {
      remap: () => this.#remap,
      nameContext: (peer) => this.#nameContext(peer.address),
      onTransferStart: (peer, file, size, requested, cache) => {
        const e = tftpStartEvent(this.clients, peer, file, size, requested, fileOrigin(cache));
        if (this.#transfers.size < MAX_LISTED_TRANSFERS) {
          this.#transfers.set(`${peer.address}:${peer.port}`, {
            protocol: 'tftp',
            ip: peer.address,
            port: peer.port,
            ...(e.mac !== undefined ? { mac: e.mac } : {}),
            file,
            size,
            started: e.time,
            origin: e.origin,
          });
        }
        this.#remember(e);
        this.events.emit(e);
      },
      onTransferEnd: (r) => {
        const key = `${r.client.address}:${r.client.port}`;
        const origin = this.#transfers.get(key)?.origin;
        this.#transfers.delete(key);
        if (this.events.active) this.events.emit(tftpEndEvent(this.clients, r, origin));
      },
    };
  }

  httpHooks(): HttpHooks {
    return {
      remap: () => this.#remap,
      nameContext: (address) => this.#nameContext(address),
      decided: (client) => {
        const rule = this.#decider?.scriptRule(client.mac);
        return rule ? { rule, label: `${DECIDE_LABEL} (${rule.text})` } : undefined;
      },
      onRequest: (r) => {
        if (!this.events.active && !this.#metrics) return;
        for (const e of httpEvents(this.clients, r)) {
          this.#remember(e);
          this.events.emit(e);
        }
      },
    };
  }

  /** Start answering: `/metrics` and `/status` read `state`; `--exit-after` starts watching. */
  serve(state: ServingState): void {
    this.#state = state;
    this.#metrics?.serve();
    const ev = this.#config.events;
    if (ev && ev.exitAfter.length > 0 && this.#deps.exit) {
      const w = watchExit(ev.exitAfter, ev.exitTimeout, this.#deps.exit, this.#deps.log);
      this.events.add(w.sink);
      this.#stopExit = w.stop;
    }
    if (this.#decider) {
      // Node loads its fetch (undici) on first use, a quarter of a second on a small machine: load
      // it now, with a data: URL that asks nobody, rather than in the first client's answer.
      void fetch('data:,').catch(() => undefined);
      const s = this.#decider.settings;
      this.#deps.log.info('decide-url', {
        url: this.#decider.displayUrl,
        timeout: s.timeoutMs / 1000,
        fallback: s.fallback,
        cache: s.cacheMs / 1000,
      });
    }
    if (this.#metrics)
      this.#deps.log.info('metrics listening', { address: `${this.#config.metrics!.address}:${this.#metrics.port}` });
  }

  /** SIGHUP: a new `--decide-url` (its cache starts empty) and new `--remap` rules take effect at once. */
  reload(next: Config): void {
    if (JSON.stringify(next.decide) !== JSON.stringify(this.#config.decide)) this.#decider = this.#makeDecider(next);
    this.#remap = next.remap ?? [];
    this.#config = next;
  }

  async close(): Promise<void> {
    this.#stopExit?.();
    this.#decider?.close();
    await Promise.all([this.#sinks?.close(), this.#metrics?.close()]);
  }

  /** A transfer, with where its file came from, for `/status`: TFTP at its start, HTTP (no start) once served. */
  #remember(e: PxeEvent): void {
    if (!this.#metrics) return;
    if (e.type !== 'transfer-start' && e.type !== 'transfer-done' && e.type !== 'transfer-failed') return;
    if (e.origin === undefined || (e.type !== 'transfer-start' && e.protocol === 'tftp')) return;
    this.#recent.push({
      time: e.time,
      protocol: e.protocol,
      ip: e.ip ?? '',
      ...(e.mac !== undefined ? { mac: e.mac } : {}),
      file: e.file,
      ...(e.requested !== undefined ? { requested: e.requested } : {}),
      origin: e.origin,
    });
    if (this.#recent.length > RECENT_TRANSFERS) this.#recent.shift();
  }

  #nameContext(ip: string): NameContext {
    const c = this.clients.byIp(ip);
    return c ? { ip, mac: c.mac, arch: c.arch } : { ip };
  }

  #makeDecider(config: Config): Decider | undefined {
    if (!config.decide) return undefined;
    return new Decider(
      { ...config.decide, http: config.http?.enabled ?? false },
      { count: (k) => this.#deps.stats.count(k), onReport: (r) => this.#onDecide(r) },
    );
  }

  #onDecide(r: DecideReport): void {
    const failed = r.outcome === 'fallback';
    this.#deps.lines.line(failed ? 'warn' : 'info', 'decide-url', {
      mac: r.mac,
      status: r.status,
      ms: Math.round(r.ms),
      outcome: r.outcome,
      ...(r.detail ? { detail: r.detail } : {}),
    });
    const e = decideEvent(this.clients, r);
    // Kept with the client, for `/status` (pxe-probe --status shows what decided its answer).
    const { time, url, status, ms, outcome, detail } = e;
    this.clients.note(r.mac, { decide: { time, url, status, ms, outcome, ...(detail ? { detail } : {}) } });
    this.events.emit(e);
  }

  #source(): MetricsSource {
    return {
      stats: this.#deps.stats,
      version: daemonVersion(),
      startedAt: this.#startedAt,
      interfaces: () => this.#state.interfaces(),
      tftpActive: () => this.#state.tftpActive(),
      httpConnections: () => this.#state.httpConnections(),
      transfers: () => [...this.#transfers.values()],
      recentTransfers: () => [...this.#recent].reverse(),
      clients: this.clients,
      decide: () =>
        this.#decider && {
          url: this.#decider.displayUrl,
          inFlight: this.#decider.inFlight,
          fallback: this.#decider.settings.fallback,
        },
    };
  }
}
