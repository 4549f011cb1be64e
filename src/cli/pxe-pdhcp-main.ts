import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { checkReport, runCheck } from './check.js';
import { parseArgs, resolveConfig, type RawOptions } from './args.js';
import { DEFAULT_USER, type Config } from '../daemon/config.js';
import { startDaemon, type Daemon } from '../daemon/daemon.js';
import { UserError } from '../core/errors.js';
import { closeLogger, createLogger, logFilesOpen, type LogSink, type DaemonLogger } from '../daemon/logging.js';
import { dropPrivileges, lookupAccount } from '../daemon/privileges.js';

/** Set in the environment of the detached child, so it does not detach again. */
const CHILD_ENV = 'PXE_PDHCP_DETACHED';

type ChildMessage = { ready: true } | { error: string };

function fail(message: string): never {
  process.stderr.write(`pxe-pdhcp: ${message}\n`);
  process.exit(1);
}

/**
 * Without -d, pxe-pdhcp detaches as daemon(3) did. Node cannot fork, so the same command runs again
 * as a detached child, which reports over IPC once its sockets are bound (or why they are not);
 * this process then exits 0 or 1 accordingly.
 */
function detach(): void {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  child.once('message', (m: ChildMessage) => {
    if ('error' in m) fail(m.error);
    child.disconnect();
    child.unref();
    process.exit(0);
  });
  child.once('exit', (code) => fail(`the daemon exited during start-up (status ${code ?? 'signal'})`));
  child.once('error', (err) => fail(`cannot start the daemon: ${err.message}`));
}

function sinkFor(config: Config, detached: boolean): LogSink {
  if (config.logFile) return { kind: 'file', path: config.logFile };
  if (!detached) return { kind: 'stderr' };
  if (process.getuid?.() !== 0) return { kind: 'syslog' };
  // logger(1) lives as long as we do: it runs as the account we will drop to, not as root.
  const account = lookupAccount(config.user ?? DEFAULT_USER);
  return { kind: 'syslog', runAs: { uid: account.uid, gid: account.gid } };
}

function report(m: ChildMessage): void {
  if (process.send) {
    process.send(m);
    if ('ready' in m) process.disconnect();
  }
}

/** Signals: TERM/INT/QUIT stop cleanly, HUP reloads the config file, a second stop signal exits at once. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;

/** Returns how `--exit-after` ends the daemon: the same clean stop, with its exit status. */
function installSignals(
  daemon: Daemon,
  raw: RawOptions,
  log: DaemonLogger,
  pending: string | undefined,
): (code: number, reason: string) => void {
  let stopping = false;
  const stop = (signal: string, code = 0): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info('stopping', { signal, stats: daemon.stats.snapshot() });
    setTimeout(() => process.exit(1), 5000).unref();
    void daemon
      .close()
      .then(() => closeLogger(log))
      .then(() => {
        process.exitCode = code;
      });
  };
  for (const s of STOP_SIGNALS) {
    process.removeAllListeners(s);
    process.on(s, () => stop(s));
  }
  process.removeAllListeners('SIGHUP');
  process.on('SIGHUP', () => {
    try {
      const next = resolveConfig(raw);
      const kept = daemon.reload(next);
      log.level = next.logLevel;
      for (const setting of kept) {
        log.warn('reload cannot change this setting; it keeps its running value until a restart', { setting });
      }
      log.info('configuration reloaded', raw.config ? { config: raw.config } : {});
    } catch (err) {
      log.error('reload failed, keeping the running configuration', { error: (err as Error).message });
    }
  });
  if (pending) stop(pending);
  return (code, reason) => stop(reason, code);
}

/** After the drop, the TFTP root must still be readable: say so at once rather than refuse every request. */
function warnUnreadableRoot(root: string, user: string, log: DaemonLogger): void {
  try {
    accessSync(root, constants.R_OK | constants.X_OK);
  } catch {
    log.warn(
      `TFTP root ${root} is not readable by user ${user}: every request will fail (make it world-readable, or use --user)`,
    );
  }
}

async function run(config: Config, raw: RawOptions, detached: boolean): Promise<void> {
  let log: DaemonLogger;
  try {
    log = createLogger({ level: config.logLevel, format: config.logFormat, sink: sinkFor(config, detached) });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    if (detached) report({ error: err.message });
    fail(err.message);
  }
  const logOpen = logFilesOpen(log);
  logOpen.catch(() => undefined); // awaited (and reported) before the privilege drop
  let dying = false;
  process.on('uncaughtException', (err) => {
    // Once only: when the log itself is what failed (EPIPE on a closed stderr), logging the error
    // raises another, and a throw from this handler would end the process with status 7.
    if (dying) return;
    dying = true;
    try {
      log.error('unexpected error, exiting', { error: err.stack ?? String(err) });
    } catch {
      /* nowhere left to log */
    }
    void closeLogger(log).then(() => process.exit(1));
  });
  // Until the daemon is up, a SIGHUP (Node's default: exit) must not kill it; there is nothing to reload yet.
  process.on('SIGHUP', () => log.info('SIGHUP during start-up: nothing to reload yet'));
  // A stop asked for during start-up is carried out, cleanly, as soon as there is something to stop.
  let pendingStop: string | undefined;
  let stopWith: ((code: number, reason: string) => void) | undefined = undefined;
  let pendingExit: { code: number; reason: string } | undefined;
  for (const s of STOP_SIGNALS) process.on(s, () => (pendingStop ??= s));
  let daemon: Daemon;
  try {
    // Root only to bind: the drop comes after the last bind and before any packet is read or any
    // file of the TFTP root touched.
    const afterBind = async (): Promise<void> => {
      await logOpen;
      const drop = dropPrivileges(config.user ?? DEFAULT_USER);
      if (!drop.dropped) return;
      log.info('dropped privileges', { user: drop.account.name, uid: drop.account.uid, gid: drop.account.gid });
      if (config.tftp.enabled) warnUnreadableRoot(config.tftp.root, drop.account.name, log);
    };
    // --exit-after: the verdict is carried out by the signal handlers' clean stop once installed.
    const exit = (code: number, reason: string): void => {
      if (stopWith) stopWith(code, reason);
      else pendingExit ??= { code, reason };
    };
    daemon = await startDaemon(config, { log, afterBind, exit });
  } catch (err) {
    const message = err instanceof UserError ? err.message : `start-up failed: ${(err as Error).message}`;
    if (detached) {
      report({ error: message });
      log.error(message);
    }
    await closeLogger(log);
    fail(message);
  }
  stopWith = installSignals(daemon, raw, log, pendingStop);
  if (pendingExit) stopWith(pendingExit.code, pendingExit.reason);
  if (detached) report({ ready: true });
}

/** The `pxe-pdhcp` command: parse, then check, detach or serve. */
export function main(): void {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed.kind === 'exit') {
    if (parsed.stdout) process.stdout.write(parsed.stdout);
    if (parsed.stderr) process.stderr.write(parsed.stderr);
    process.exitCode = parsed.code;
    return;
  }
  if (parsed.raw.check === true) {
    void runCheck(parsed.config).then((lines) => {
      process.stdout.write(checkReport(lines));
      process.exitCode = lines.every((l) => l.ok) ? 0 : 1;
    });
    return;
  }
  const detached = process.env[CHILD_ENV] === '1';
  if (!parsed.config.foreground && !detached) {
    detach();
    return;
  }
  void run(parsed.config, parsed.raw, detached);
}
