import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Config } from '../../src/daemon/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import type { LogLevel } from '../../src/daemon/logging.js';
import { memoryLogger, type MemoryLogger } from './log.js';

/** Config for an in-process daemon on loopback: every port ephemeral, replies to `clientPort`. */
export function loopbackConfig(clientPort: number, overrides: Partial<Config> = {}): Config {
  return {
    foreground: true,
    interfaces: [],
    listenAddress: '127.0.0.1',
    tftpAddress: '127.0.0.1',
    broadcastAddress: '127.0.0.1',
    nbp: 'pxelinux.0',
    efiMode: 'binl',
    logLevel: 'debug',
    logFormat: 'json',
    bindAddress: '127.0.0.1',
    ports: { dhcp: 0, proxy: 0, client: clientPort },
    tftp: { enabled: false, root: '/nonexistent', port: 0, maxTransfers: 8, idleTimeout: 5, workers: 0 },
    ...overrides,
  };
}

/** A daemon whose log lines (JSON) are collected in `lines`. */
export interface TestDaemon {
  daemon: Daemon;
  lines: Record<string, unknown>[];
  /** The recording logger: `log.waitFor` resolves on a line as it is written. */
  log: MemoryLogger;
}

export async function startTestDaemon(config: Config, level: LogLevel = 'debug'): Promise<TestDaemon> {
  const { log, lines } = memoryLogger(level);
  const daemon = await startDaemon({ ...config, logLevel: level }, { log });
  return { daemon, lines, log };
}

/** A UDP client on 127.0.0.1 that queues what it receives. */
export class TestClient {
  readonly received: { msg: Buffer; from: RemoteInfo }[] = [];
  #waiters: (() => void)[] = [];
  private constructor(readonly socket: Socket) {
    socket.on('message', (msg, from) => {
      this.received.push({ msg, from });
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async open(port = 0): Promise<TestClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
    return new TestClient(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(msg: Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(msg, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
    );
  }

  /** Wait until `n` datagrams in all have arrived, or reject after `ms`. */
  async waitFor(n: number, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} datagrams, got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.close();
  }
}

/** Poll `cond` every few ms until true, or throw after `ms`. */
export async function until(cond: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
