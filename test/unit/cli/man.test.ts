import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { OPTIONS } from '../../../src/cli/args.js';

const page = readFileSync(new URL('../../../man/pxe-pdhcp.8', import.meta.url), 'utf8');
/** The page as a reader sees it: roff's `\-` is a dash. */
const text = page.replace(/\\-/g, '-');

describe('man/pxe-pdhcp.8 is in sync with the command line', () => {
  for (const [name, o] of Object.entries(OPTIONS)) {
    it(`mentions --${name}`, () => {
      const spelled = [`--${name}`, ...('alias' in o ? [`-${String(o.alias)}`] : [])];
      if (o.type === 'boolean') spelled.push(`--no-${name}`);
      assert.ok(
        spelled.some((s) => new RegExp(`(^|[^\\w-])${s.replace(/[-]/g, '\\-')}([^\\w-]|$)`, 'm').test(text)),
        `the manual page does not mention ${spelled.join(' or ')}`,
      );
    });
  }
});
