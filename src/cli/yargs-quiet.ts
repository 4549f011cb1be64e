import type { Argv } from 'yargs';

/** What a yargs parse gave, without printing or exiting: the arguments, a failure, or help text. */
export interface QuietParse {
  parsed: Record<string, unknown>;
  /** The usage error, when there is one. */
  failure?: string;
  /** `--help` or `--version` text, when asked for. */
  output: string;
}

/**
 * Parse with a parser built with `.exitProcess(false)`: yargs then neither exits nor prints, and
 * the caller decides what to print and which status to exit with (only main files exit).
 */
export function parseQuietly(parser: Argv, argv: string[]): QuietParse {
  let failure: string | undefined;
  let output = '';
  let parsed: Record<string, unknown> = {};
  try {
    parsed = parser
      .fail((msg, err) => {
        failure = msg ?? err?.message ?? 'invalid arguments';
      })
      .parseSync(argv, {}, (_err, _argv, out) => {
        output = out;
      });
  } catch (err) {
    failure ??= (err as Error).message;
  }
  return { parsed, output, ...(failure !== undefined ? { failure } : {}) };
}
