// Builds keyport-node (node/main.ts), sshd's AuthorizedPrincipalsCommand, into one self-contained ES module
// with esbuild: dist/node/keyport-node.mjs, its dependencies (gRPC, protobuf, zod) inside, so it starts
// without tsx and without resolving node_modules (sshd runs it twice per connection). bin/keyport-node.mjs
// runs it, and falls back to the sources under tsx when it is missing or older than a source
// (node-bundle.mjs: the path, the sources and the staleness check both use).
// `node build-node.mjs --if-stale` skips the build when the bundle is newer than every source file;
// `--if-possible` (npm's prepare) skips it quietly where esbuild is not installed (no devDependencies).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bundleIsStale, bundlePath, repoRoot } from './node-bundle.mjs';

const bundle = bundlePath();

if (process.argv.includes('--if-stale') && !bundleIsStale()) {
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
  mkdirSync(dirname(bundle), { recursive: true });
  const result = await build({
    absWorkingDir: repoRoot,
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
  writeFileSync(join(dirname(bundle), 'meta.json'), JSON.stringify(result.metafile));
  console.log(`Built ${bundle}.`);
}
