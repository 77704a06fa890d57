// Builds native/tpm-helper/build/keyport-tpm-helper with gcc against tss2 (libtss2-dev). Plain Node, no
// dependencies: it runs from `npm install` (prepare), `npm test` and `npm start`.
//   --if-stale     skip when the binary is newer than every source file
//   --if-possible  when gcc, pkg-config or the tss2 headers are missing, say so in one line and exit 0
//                  (`npm test` and `npm start` install them through lab/system-packages.mjs first)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'build', 'keyport-tpm-helper');
const sources = readdirSync(here)
  .filter((name) => name.endsWith('.c') || name.endsWith('.h'))
  .map((name) => join(here, name));
const cFiles = sources.filter((file) => file.endsWith('.c'));
const libraries = ['tss2-esys', 'tss2-tctildr', 'tss2-rc', 'tss2-mu'];

const flags = new Set(process.argv.slice(2));
for (const flag of flags) {
  if (flag !== '--if-stale' && flag !== '--if-possible') {
    console.error(`tpm-helper build: unknown flag ${flag} (known: --if-stale, --if-possible)`);
    process.exit(2);
  }
}

if (flags.has('--if-stale') && existsSync(output)) {
  const built = statSync(output).mtimeMs;
  const newer = [...sources, fileURLToPath(import.meta.url)].filter((file) => statSync(file).mtimeMs > built);
  if (newer.length === 0) process.exit(0);
}

const missing = [];
if (spawnSync('gcc', ['--version']).status !== 0) missing.push('gcc');
const pkgConfig = spawnSync('pkg-config', ['--cflags', '--libs', ...libraries], { encoding: 'utf8' });
if (pkgConfig.error) missing.push('pkg-config');
else if (pkgConfig.status !== 0) missing.push(`the tss2 development files (${libraries.join(', ')})`);
if (missing.length > 0) {
  const line = `tpm-helper build: ${missing.join(', ')} missing (Debian: gcc pkg-config libtss2-dev); \`npm test\` and \`npm start\` install them and build the TPM helper`;
  if (flags.has('--if-possible')) {
    console.log(line);
    process.exit(0);
  }
  console.error(line);
  process.exit(1);
}

mkdirSync(dirname(output), { recursive: true });
// Built beside the binary and renamed over it: a running helper keeps its file, a failed build leaves
// the old binary in place.
const temporary = `${output}.${process.pid}.tmp`;
const args = [
  '-O2',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-std=gnu11',
  '-o',
  temporary,
  ...cFiles,
  ...pkgConfig.stdout.trim().split(/\s+/),
  '-lm',
];
const gcc = spawnSync('gcc', args, { stdio: 'inherit' });
if (gcc.status !== 0) {
  console.error(`tpm-helper build: gcc failed (exit ${gcc.status ?? gcc.signal})`);
  process.exit(1);
}
renameSync(temporary, output);
