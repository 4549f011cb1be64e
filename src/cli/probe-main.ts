import { UserError } from '../core/errors.js';
import { parseProbeArgs } from './probe-args.js';
import { jsonReport, textReport } from '../probe/report.js';
import { runProbe, type Undo } from '../probe/run.js';

/** The `pxe-probe` command. */
export async function main(): Promise<void> {
  const parsed = parseProbeArgs(process.argv.slice(2));
  if (parsed.kind === 'exit') {
    if (parsed.stdout) process.stdout.write(parsed.stdout);
    if (parsed.stderr) process.stderr.write(parsed.stderr);
    process.exitCode = parsed.code;
    return;
  }
  // Interrupted: still release the lease and remove the borrowed address before leaving.
  const undo: Undo[] = [];
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void (async () => {
        for (const step of undo) await step().catch(() => undefined);
      })().finally(() => process.exit(130));
    });
  }
  try {
    const result = await runProbe(parsed.options, undo);
    process.stdout.write(parsed.json ? jsonReport(result) : textReport(result));
    process.exitCode = result.ok ? 0 : 1;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    process.stderr.write(`pxe-probe: ${err.message}\n`);
    process.exitCode = 2;
  }
}
