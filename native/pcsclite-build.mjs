// Builds the `pcsclite` npm package's addon (client/hardware/piv talks to pcscd through it) with node-gyp,
// against libpcsclite-dev. npm does not build it at install (package.json `allowScripts` says false):
// on a fresh machine `npm install` runs before lab/system-packages.mjs has installed the PC/SC headers, and
// a failed install script would fail the install. So `npm install` (prepare) builds it when it can, and
// `npm test` / `npm start` build it once the headers are there. Plain Node, no dependencies.
//   --if-stale     skip when the addon already loads in this Node (built for its ABI)
//   --if-possible  when the PC/SC headers are missing, say so in one line and exit 0
// The headers node-gyp builds against come from npm's configuration (`nodedir`), which npm passes to the
// scripts it runs; .ci/node24.sh sets it to Node 24's package.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const flags = new Set(process.argv.slice(2));
for (const flag of flags) {
  if (flag !== '--if-stale' && flag !== '--if-possible') {
    console.error(`pcsclite build: unknown flag ${flag} (known: --if-stale, --if-possible)`);
    process.exit(2);
  }
}

let packageDir;
try {
  packageDir = dirname(require.resolve('pcsclite/package.json'));
} catch {
  console.error('pcsclite build: the pcsclite package is not installed: run `npm install` first');
  process.exit(1);
}

/** Whether the built addon loads in this Node (require only: nothing connects to pcscd). */
function loads() {
  const probe = spawnSync(process.execPath, ['-e', "require('pcsclite')"], { cwd: root, encoding: 'utf8' });
  return probe.status === 0;
}

if (flags.has('--if-stale') && loads()) process.exit(0);

if (!existsSync('/usr/include/PCSC/winscard.h')) {
  const line =
    'pcsclite build: the PC/SC headers are missing (Debian: libpcsclite-dev); `npm test` and `npm start` install them and build it';
  if (flags.has('--if-possible')) {
    console.log(line);
    process.exit(0);
  }
  console.error(line);
  process.exit(1);
}

// npm's own node-gyp (npm names it to the scripts it runs), else the one beside the npm running this.
const npmCli = process.env.npm_execpath;
const nodeGyp =
  process.env.npm_config_node_gyp ??
  (npmCli ? join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : undefined);
if (!nodeGyp || !existsSync(nodeGyp)) {
  console.error('pcsclite build: no node-gyp found; run this through npm (npm test, npm start, npm install)');
  process.exit(1);
}
const built = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release'], {
  cwd: packageDir,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
if (built.status !== 0 || !loads()) {
  console.error(`pcsclite build: node-gyp failed:\n${built.stdout}${built.stderr}`);
  process.exit(1);
}
console.log(`pcsclite build: built for Node ${process.version}`);
