import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { decodeDhcp } from '../../src/wire/dhcp-packet.js';
import { until } from '../helpers/daemon.js';
import { requestBytes } from '../helpers/packets.js';

// SIGHUP on the built daemon (`make build` first; `make test` does): a changed rule takes effect
// while DISCOVERs keep coming, none is left unanswered, and a broken file changes nothing.

const MAIN = fileURLToPath(new URL('../../dist/bin/pxe-pdhcp.js', import.meta.url));
const HOST = '127.0.0.1';
/** One DISCOVER every this many ms while the test runs. */
const SEND_EVERY_MS = 2;
/** Answers to see under each configuration (old rule, new rule, and after a failed reload). */
const ANSWERS_PER_PHASE = 100;
/** Bound on any one wait for the daemon: a log line, a number of answers. */
const WAIT_MS = 5000;

/** Free UDP ports on loopback: bind port 0, note the number, close. */
async function freePorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve) => {
          const s = createSocket('udp4');
          s.bind(0, HOST, () => resolve(s));
        }),
    ),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

interface LogLine {
  level: string;
  message: string;
  [k: string]: unknown;
}

/** The daemon as a child process, its stderr parsed as JSON log lines. */
class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly child: ChildProcess;
  exited = false;
  /** Called after every new line and at exit. */
  #wake: (() => void)[] = [];

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(text) as LogLine);
        } catch {
          this.lines.push({ level: 'raw', message: text });
        }
        this.#notify();
      }
    });
    this.child.on('exit', () => {
      this.exited = true;
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of this.#wake.splice(0)) w();
  }

  /** The first line matching `pred`, waiting (woken by each new line) up to `ms`. */
  async waitFor(pred: (l: LogLine) => boolean, what: string, ms = WAIT_MS): Promise<LogLine> {
    const end = Date.now() + ms;
    for (;;) {
      const l = this.lines.find(pred);
      if (l) return l;
      if (this.exited) assert.fail(`daemon exited while waiting for ${what}: ${JSON.stringify(this.lines)}`);
      const left = end - Date.now();
      if (left <= 0) assert.fail(`no ${what} within ${ms} ms: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  count(message: string): number {
    return this.lines.filter((l) => l.message === message).length;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await done;
  }
}

/** Sends a stream of BIOS DISCOVERs with distinct xids; records the file each reply names. */
class DiscoverStream {
  readonly sent: number[] = [];
  readonly answers = new Map<number, string>();
  /** Files in the order replies arrived. */
  readonly order: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #xid = 0x10000;

  constructor(
    private readonly sock: Socket,
    private readonly dhcpPort: number,
  ) {
    sock.on('message', (msg) => {
      const r = decodeDhcp(msg);
      this.answers.set(r.transactionId, r.bootFile);
      this.order.push(r.bootFile);
    });
  }

  start(): void {
    this.#timer = setInterval(() => {
      const xid = this.#xid++;
      this.sent.push(xid);
      this.sock.send(requestBytes({ arch: 0, xid }), this.dhcpPort, HOST);
    }, SEND_EVERY_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  unanswered(): number[] {
    return this.sent.filter((x) => !this.answers.has(x));
  }

  /** Wait until `n` more answers naming `file` arrive than there were when called. */
  async answersNaming(file: string, n: number): Promise<void> {
    const count = () => this.order.filter((f) => f === file).length;
    const target = count() + n;
    await until(() => count() >= target, WAIT_MS, `${n} answers naming ${file} (have ${count()} of ${target})`);
  }

  /** After `stop()`: wait until every DISCOVER sent has its answer. */
  async drained(): Promise<void> {
    await until(
      () => this.unanswered().length === 0,
      WAIT_MS,
      `answers to all ${this.sent.length} DISCOVERs (${this.unanswered().length} missing)`,
    );
  }
}

describe('SIGHUP reload of the built daemon on loopback', { timeout: 60_000 }, () => {
  let dir: string;
  let configPath: string;
  let daemon: DaemonProcess;
  let sock: Socket;
  let stream: DiscoverStream;

  const writeConfig = (body: string) => {
    writeFileSync(configPath, body);
    chmodSync(configPath, 0o644); // the daemon re-reads it after dropping root privileges
  };
  const rules = (file: string) =>
    JSON.stringify({
      boot: [
        { arch: 'bios', file },
        { arch: 'efi-x64', file: 'ipxe.efi' },
      ],
      'log-format': 'json',
    });

  before(async () => {
    assert.ok(existsSync(MAIN), `${MAIN} is missing: run \`make build\` first (make test does)`);
    dir = mkdtempSync(join(tmpdir(), 'pxe-reload-'));
    chmodSync(dir, 0o755);
    configPath = join(dir, 'pxe-pdhcp.json');
    writeConfig(rules('first.0'));
    const [dhcp, proxy, client] = await freePorts(3);
    sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(client, HOST, () => resolve()));
    daemon = new DaemonProcess([
      '-d',
      '-l',
      HOST,
      '-t',
      HOST,
      '-b',
      HOST,
      '--bind-address',
      HOST,
      '--dhcp-port',
      String(dhcp),
      '--proxy-port',
      String(proxy),
      '--client-port',
      String(client),
      '--no-tftp',
      '--config',
      configPath,
      'default.0',
    ]);
    await daemon.waitFor((l) => l.message === 'listening', 'the listening line');
    // The last start-up line: the SIGHUP handler is installed right after it. Only root drops
    // privileges (`npm test` runs as any user), so otherwise that line is 'listening'.
    if (process.getuid?.() === 0) {
      await daemon.waitFor((l) => l.message === 'dropped privileges', 'the dropped-privileges line');
    }
    stream = new DiscoverStream(sock, dhcp!);
  });

  after(async () => {
    stream?.stop();
    await daemon?.stop();
    sock?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies a changed rule at once and answers every DISCOVER across the reload', async () => {
    stream.start();
    await stream.answersNaming('first.0', ANSWERS_PER_PHASE);
    const beforeHup = stream.sent.length;
    writeConfig(rules('second.0'));
    daemon.child.kill('SIGHUP');
    await daemon.waitFor((l) => l.message === 'configuration reloaded', 'the reload line');
    await stream.answersNaming('second.0', ANSWERS_PER_PHASE);
    stream.stop();
    await stream.drained();
    assert.deepEqual(stream.unanswered(), [], `of ${stream.sent.length} DISCOVERs`);
    const firstSecond = stream.order.indexOf('second.0');
    assert.ok(firstSecond > 0, 'answers before the reload name the old rule, after it the new one');
    assert.ok(stream.order.slice(0, firstSecond).every((f) => f === 'first.0'));
    assert.ok(
      stream.order.slice(firstSecond).every((f) => f === 'second.0'),
      'never the old rule once the new one answered',
    );
    assert.ok(firstSecond >= beforeHup - 5, 'the old rule held until the signal');
    const rulesLogged = new Set(daemon.lines.filter((l) => l.message === 'proxy offer').map((l) => l.rule));
    assert.deepEqual(
      [...rulesLogged],
      ['rule 1 (arch=bios,file=first.0)', 'rule 1 (arch=bios,file=second.0)'],
      'log lines name the rule',
    );
    console.log(
      `reload: ${stream.sent.length} DISCOVERs, ${stream.answers.size} answered, switch after ${firstSecond}`,
    );
  });

  it('a broken file changes nothing, logs one error line, and the daemon keeps serving', async () => {
    const broken = [
      '{"boot": [{"arch": "bios", "file": "third.0"}',
      JSON.stringify({
        boot: [
          { arch: 'bios', file: 'third.0' },
          { arch: 'risc-v', file: 'x' },
        ],
        'log-format': 'json',
      }),
    ];
    for (const [i, body] of broken.entries()) {
      const errorsBefore = daemon.lines.filter((l) => l.level === 'error').length;
      const sentBefore = stream.sent.length;
      stream.start();
      await stream.answersNaming('second.0', ANSWERS_PER_PHASE / 2);
      writeConfig(body);
      daemon.child.kill('SIGHUP');
      await daemon.waitFor(
        () => daemon.lines.filter((l) => l.level === 'error').length > errorsBefore,
        `the error line for broken file ${i}`,
      );
      const line = daemon.lines.filter((l) => l.level === 'error')[errorsBefore]!;
      assert.equal(line.message, 'reload failed, keeping the running configuration');
      await stream.answersNaming('second.0', ANSWERS_PER_PHASE);
      stream.stop();
      await stream.drained();
      assert.equal(daemon.exited, false, 'still running');
      assert.equal(daemon.lines.filter((l) => l.level === 'error').length, errorsBefore + 1, 'exactly one error line');
      const since = stream.sent.slice(sentBefore);
      assert.ok(since.length > 50, `sent ${since.length}`);
      assert.deepEqual(
        since.filter((x) => stream.answers.get(x) !== 'second.0'),
        [],
        'every answer still names the running rule',
      );
    }
    const errors = daemon.lines.filter((l) => l.level === 'error').map((l) => String(l.error));
    assert.match(errors[0]!, /not valid JSON/);
    assert.match(errors[1]!, /boot rule '\{"arch":"risc-v","file":"x"\}': unknown arch 'risc-v'/);
  });
});
