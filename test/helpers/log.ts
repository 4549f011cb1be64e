import { PassThrough } from 'node:stream';
import { createLogger, type Logger, type LogLevel } from '../../src/daemon/logging.js';

/** A logger whose JSON lines land in `lines`, for tests that check what was logged. */
export function memoryLogger(level: LogLevel = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  return { log: createLogger({ level, format: 'json', sink: { kind: 'stream', stream } }), lines };
}
