#!/usr/bin/env node
// keyport-node, sshd's AuthorizedPrincipalsCommand on a node (node/main.ts). sshd runs it twice per
// connection, so it runs the esbuild bundle (dist/node/keyport-node.mjs, `node build-node.mjs`: ≈ 0.2 s to
// start, not ≈ 0.65 s under tsx). Where the bundle is missing or older than a source, it runs the sources
// under tsx instead (never stale code), and says so on stderr (sshd's log).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'dist', 'node', 'keyport-node.mjs');

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

function bundleIsCurrent() {
  if (!existsSync(bundle)) return false;
  const built = statSync(bundle).mtimeMs;
  return ['node', 'proto', 'package-lock.json'].every((source) => newest(join(root, source)) <= built);
}

if (bundleIsCurrent()) {
  await import(pathToFileURL(bundle).href);
} else {
  process.stderr.write(
    'keyport-node: dist/node is missing or stale (node build-node.mjs); running the sources\n',
  );
  const { register } = await import('tsx/esm/api');
  register();
  await import('../node/main.ts');
}
