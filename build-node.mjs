// Builds keyport-node (node/main.ts), sshd's AuthorizedPrincipalsCommand, into one self-contained ES module
// with esbuild: dist/node/keyport-node.mjs, its dependencies (gRPC, protobuf, zod) inside, so it starts
// without tsx and without resolving node_modules (sshd runs it twice per connection). bin/keyport-node.mjs
// runs it, and falls back to the sources under tsx when it is missing or older than a source.
// `node build-node.mjs --if-stale` skips the build when the bundle is newer than every source file;
// `--if-possible` (npm's prepare) skips it quietly where esbuild is not installed (no devDependencies).
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
export const bundle = join(root, 'dist', 'node', 'keyport-node.mjs');
// What goes into the bundle (node/ imports only proto/) and what decides how it is built.
export const sources = ['node', 'proto', 'build-node.mjs', 'package-lock.json'];

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

function isStale() {
  if (!existsSync(bundle)) return true;
  const built = statSync(bundle).mtimeMs;
  return sources.some((source) => newest(join(root, source)) > built);
}

if (process.argv.includes('--if-stale') && !isStale()) {
  console.log('dist/node is up to date.');
} else {
  let build;
  try {
    ({ build } = await import('esbuild'));
  } catch (error) {
    if (!process.argv.includes('--if-possible')) throw error;
    console.log('esbuild is not installed; keyport-node runs from the sources (tsx).');
    process.exit(0);
  }
  mkdirSync(join(root, 'dist', 'node'), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['node/main.ts'],
    outfile: bundle,
    write: false,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Bundled CommonJS (grpc-js) calls require() for Node's own modules.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  // Written beside and renamed into place: a keyport-node starting meanwhile (a test's sshd, or another
  // build racing this one) reads the old bundle or the new one, never half of one.
  const temporary = `${bundle}.${process.pid}.tmp`;
  writeFileSync(temporary, result.outputFiles[0].contents);
  renameSync(temporary, bundle);
  writeFileSync(join(root, 'dist', 'node', 'meta.json'), JSON.stringify(result.metafile));
  console.log(`Built ${bundle}.`);
}
