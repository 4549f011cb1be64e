import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';

/** One line of output, stamped with the wall clock (ms) when it arrived, to compare with captures. */
export interface Line {
  at: number;
  text: string;
}

/**
 * ANSI escapes, charset shifts and other control characters that OVMF and syslinux's menu put on
 * the serial console; stripped per whole line, since an escape may span two reads.
 */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-9;?=]*[A-Za-z]|\x1b[()%][A-Za-z0-9@]|\x1b[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]/g;

function clean(text: string): string {
  return text.replace(ESCAPES, '');
}

/**
 * Everything a child process printed (stdout and stderr), kept as lines, so a test can wait on an
 * event ("this line appeared") instead of sleeping, and print the whole transcript on failure.
 */
export class Transcript {
  readonly lines: Line[] = [];
  readonly #events = new EventEmitter();
  #partial = '';
  #exited: string | undefined;

  /**
   * @param name shown in messages and, with `echo`, before every line
   * @param echo print each line live (make lab)
   */
  constructor(
    readonly name: string,
    child: ChildProcess,
    readonly echo?: (line: string) => void,
  ) {
    const onData = (chunk: Buffer): void => this.#add(chunk.toString('latin1'));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      this.#flush();
      this.#exited = `exited (${code ?? signal ?? '?'})`;
      this.#events.emit('exit');
    });
  }

  #add(text: string): void {
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const part of parts) this.#push(part);
    // Firmware prompts end without a newline; the marker may sit in a partial line.
    if (this.#partial !== '') this.#events.emit('partial');
  }

  #push(text: string): void {
    const line = { at: Date.now(), text: clean(text) };
    this.lines.push(line);
    this.echo?.(line.text);
    this.#events.emit('line', line);
  }

  #flush(): void {
    if (this.#partial !== '') this.#push(this.#partial);
    this.#partial = '';
  }

  /** All output so far, including an unfinished last line. */
  get text(): string {
    return [...this.lines.map((l) => l.text), clean(this.#partial)].join('\n');
  }

  /** Lines from index `since` on that match a pattern. */
  matching(pattern: RegExp, since = 0): Line[] {
    return this.lines.slice(since).filter((l) => pattern.test(l.text));
  }

  /**
   * Resolve with the first line from index `since` on (seen before or later) that matches, or reject
   * after `ms`, or when the process exits first.
   */
  waitFor(pattern: RegExp, ms: number, since = 0): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.lines.slice(since).find((l) => pattern.test(l.text));
        if (hit) return finish(() => resolve(hit));
        const partial = clean(this.#partial);
        if (pattern.test(partial)) return finish(() => resolve({ at: Date.now(), text: partial }));
        if (this.#exited)
          return finish(() => reject(new Error(`${this.name} ${this.#exited} before ${String(pattern)}`)));
        return false;
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`${this.name}: no ${String(pattern)} within ${ms / 1000} s`))),
        ms,
      );
      const finish = (settle: () => void): true => {
        clearTimeout(timer);
        for (const e of ['line', 'partial', 'exit']) this.#events.off(e, check);
        settle();
        return true;
      };
      for (const e of ['line', 'partial', 'exit']) this.#events.on(e, check);
      check();
    });
  }

  /** Resolve once `count` lines from index `since` on match (see waitFor). */
  async waitForCount(pattern: RegExp, count: number, ms: number, since = 0): Promise<void> {
    const end = Date.now() + ms;
    let from = since;
    for (let i = 0; i < count; i++) {
      const hit = await this.waitFor(pattern, Math.max(1, end - Date.now()), from);
      from = this.lines.indexOf(hit) + 1;
    }
  }
}
