// Lint: typescript-eslint for correctness, import-x zones for the import rules of docs/architecture.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

// lab/ is handled by its own zone below, which spares tests.
const everyFolder = [
  'proto',
  'auth',
  'client',
  'cli',
  'node',
  'main',
  'preload',
  'renderer',
  'web',
  'native',
];
const others = (...allowed) => everyFolder.filter((f) => !allowed.includes(f)).map((f) => `./${f}`);

/** docs/architecture.md "Import rules": one zone per folder, naming what it must never import. */
export const importZones = [
  { target: './renderer', from: './', except: ['./renderer', './preload/contract.ts', './node_modules'] },
  { target: './preload', from: others('preload').filter((f) => f !== './preload') },
  // keyport-auth's web UI: itself, and the web API's paths and shapes (proto/webapi.ts).
  { target: './web', from: './', except: ['./web', './proto/webapi.ts', './node_modules'] },
  { target: './main', from: others('main', 'client', 'preload', 'proto') },
  { target: './client', from: others('client', 'proto') },
  { target: './auth', from: others('auth', 'proto') },
  { target: './cli', from: others('cli', 'client', 'proto') },
  { target: './node', from: others('node', 'proto') },
  { target: './proto', from: others('proto') },
];
/** Only tests, benchmarks and the demo launcher (itself in lab/) import lab/. */
const labZone = {
  target: ['./proto', './auth', './client', './cli', './node', './main', './preload', './renderer', './web'],
  from: './lab',
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'proto/gen/**',
      '.keyport-demo/**',
      'test-results/**',
      'dist/**',
      'release/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.tsx', '.js', '.mjs', '.json'] })],
    },
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: importZones }],
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'electron', message: 'Only main/electron/ and preload/ import electron.' }] },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.js', '**/*.mjs'],
    ignores: ['**/*.test.ts', '**/*.test.tsx', 'test/**', 'bench/**', 'lab/**'],
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: [...importZones, labZone] }],
    },
  },
  {
    files: ['main/electron/**', 'preload/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // docs/architecture.md: the renderer takes only *types* from the contract (the schemas stay in main).
    files: ['renderer/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/preload/contract', '**/preload/contract.ts'],
              allowTypeImports: true,
              message: 'The renderer imports only types from preload/contract.ts (import type).',
            },
          ],
        },
      ],
    },
  },
);
