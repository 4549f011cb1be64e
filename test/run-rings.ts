/**
 * `npm test` and `make unit`: the unit and loopback rings, as any user. `make test` (root, CI) runs
 * every ring with `node --test`, one process per file.
 *
 * Here every test file is imported into this one process instead, in order, and node:test runs their
 * tests one after another. Node 20's `--test` does not expand globs, and a process per file pays
 * tsx's start-up (most of a second of CPU) once per file: about 40 s for the ~50 files of these two
 * rings, more than the tests themselves. A test that only passes alone still fails under `make test`.
 *
 * Usage: node --import tsx test/run-rings.ts [ring ...]   (rings: folders of test/; default unit loopback)
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const TEST = fileURLToPath(new URL('.', import.meta.url));
const rings = process.argv.length > 2 ? process.argv.slice(2) : ['unit', 'loopback'];

// Top-level tests run one at a time, in the order they were registered: this first one holds the
// others back until every file is imported, so no timed test runs beside the compiling of the rest.
let imported!: () => void;
let failed!: (error: unknown) => void;
const allImported = new Promise<void>((resolve, reject) => {
  imported = resolve;
  failed = reject;
});
allImported.catch(() => undefined); // reported by the test below, not as an unhandled rejection
test(`import the test files of test/${rings.join(', test/')}`, () => allImported);

try {
  for (const ring of rings) {
    const files = readdirSync(join(TEST, ring), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.test.ts'))
      .sort();
    if (files.length === 0) throw new Error(`no test files under test/${ring}`);
    for (const file of files) await import(pathToFileURL(join(TEST, ring, file)).href);
  }
  imported();
} catch (err) {
  failed(err);
}
