import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './netns.js';

/** Debian's nginx-light serving one directory as a mirror, with every file of its own in `work`. */
export interface NginxOptions {
  /** Holds nginx.conf, nginx.pid, error.log, access.log and nginx's temporary directories. */
  work: string;
  /** `address:port` to listen on. */
  listen: string;
  /** The directory served. Its workers run as nobody: it must be world-readable. */
  root: string;
  /** More directives inside `server { }`, such as `location ~ … { limit_rate …; }`. */
  server?: string;
}

/**
 * nginx in the foreground (`daemon off;`) in a namespace of a lab, ended by its PID (`stop()` or the
 * lab's cleanup). Its access log has one line per request: `METHOD URI STATUS BYTES`.
 */
export class Nginx {
  readonly #lab: Lab;
  readonly child: ChildProcess;
  readonly work: string;
  /** What nginx printed before its error log was open. */
  #stderr = '';

  private constructor(lab: Lab, child: ChildProcess, work: string) {
    this.#lab = lab;
    this.child = child;
    this.work = work;
    child.stdout?.resume();
    child.stderr?.on('data', (c: Buffer) => (this.#stderr += c.toString()));
  }

  /**
   * Write the configuration and start nginx in `ns`; resolves once it listens (nginx writes its pid
   * file only after opening its listening sockets).
   * @throws Error with nginx's error log, when it exits or does not come up within `ms`
   */
  static async start(lab: Lab, ns: string, o: NginxOptions, ms = 10_000): Promise<Nginx> {
    const conf = join(o.work, 'nginx.conf');
    writeFileSync(conf, nginxConf(o));
    const child = lab.spawn(ns, 'nginx', ['-c', conf, '-p', o.work, '-e', join(o.work, 'error.log')]);
    const nginx = new Nginx(lab, child, o.work);
    const pidFile = join(o.work, 'nginx.pid');
    for (const end = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 20))) {
      if (existsSync(pidFile) && statSync(pidFile).size > 0) return nginx;
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > end) {
        await nginx.stop();
        throw new Error(`nginx did not start in ${ns}: ${nginx.errors()}`);
      }
    }
  }

  /** Lines of the access log so far: `METHOD URI STATUS BYTES`. */
  access(): string[] {
    const file = join(this.work, 'access.log');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** The error log and anything nginx printed, for failure messages. */
  errors(): string {
    const file = join(this.work, 'error.log');
    return `${existsSync(file) ? readFileSync(file, 'utf8') : ''}${this.#stderr}`.trim();
  }

  /** End nginx by its PID (SIGTERM: its workers go with it). */
  stop(): Promise<void> {
    return this.#lab.stop(this.child);
  }
}

/** The whole configuration: one server, nothing under /var, logs and temporary files in `work`. */
export function nginxConf(o: NginxOptions): string {
  const w = o.work;
  return `daemon off;
worker_processes 1;
pid ${w}/nginx.pid;
error_log ${w}/error.log warn;
events { worker_connections 256; }
http {
  log_format mirror '$request_method $uri $status $body_bytes_sent';
  access_log ${w}/access.log mirror;
  client_body_temp_path ${w}/body;
  proxy_temp_path ${w}/proxy;
  fastcgi_temp_path ${w}/fastcgi;
  uwsgi_temp_path ${w}/uwsgi;
  scgi_temp_path ${w}/scgi;
  default_type application/octet-stream;
  sendfile on;
  server {
    listen ${o.listen};
    root ${o.root};
${o.server ? `    ${o.server}\n` : ''}  }
}
`;
}
