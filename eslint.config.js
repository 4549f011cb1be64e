import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first. A folder may import its own files and the folders listed for it;
 * nothing below the daemon knows the daemon, the command line, yargs or winston.
 */
const LAYERS = {
  core: [],
  wire: [],
  files: ['core'],
  net: ['core', 'wire'],
  pxe: ['core', 'wire', 'net'],
  tftp: ['core', 'wire', 'files', 'net'],
  http: ['core', 'wire', 'files', 'net', 'pxe'],
  probe: ['core', 'wire', 'net'],
  daemon: ['core', 'wire', 'files', 'net', 'pxe', 'tftp', 'http'],
  cli: ['core', 'wire', 'files', 'net', 'pxe', 'tftp', 'http', 'daemon', 'probe'],
  bin: ['cli', 'probe'],
};
const FOLDERS = Object.keys(LAYERS);
const FRAMEWORKS = { yargs: ['cli', 'probe'], winston: ['daemon'] };

function layerRule(folder) {
  const allowed = new Set([folder, ...LAYERS[folder]]);
  const forbidden = FOLDERS.filter((f) => !allowed.has(f));
  const patterns = forbidden.map((f) => ({
    group: [`../${f}/*`, `../../${f}/*`],
    message: `src/${folder}/ may not import src/${f}/ (layering: see eslint.config.js)`,
  }));
  for (const [pkg, users] of Object.entries(FRAMEWORKS)) {
    if (!users.includes(folder)) {
      patterns.push({ group: [pkg, `${pkg}/*`], message: `${pkg} belongs to src/${users.join('/ and src/')}/ only` });
    }
  }
  return {
    files: [`src/${folder}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns }] },
  };
}

export default defineConfig(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'test/e2e/work/'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  { files: ['**/*.js', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  // node:test's describe/it return promises that the runner itself awaits.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-floating-promises': 'off' } },
  ...FOLDERS.map(layerRule),
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver()],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
);
