// keyport-node's esbuild bundle: where it is, what it is built from, and whether it is older than any of that.
// build-node.mjs (which builds it) and bin/keyport-node.mjs (which runs it, or the sources when it is stale)
// share this one list. No esbuild here: the launcher imports this on every start (sshd runs it twice per
// connection).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('.', import.meta.url));

/** dist/node/keyport-node.mjs below `root`. */
export function bundlePath(root = repoRoot) {
  return join(root, 'dist', 'node', 'keyport-node.mjs');
}

/** What goes into the bundle (node/ imports only proto/) and what decides how it is built. */
export const bundleSources = ['node', 'proto', 'build-node.mjs', 'package-lock.json'];

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

/** True when the bundle is missing or a source (a file, or anything in a folder) is newer than it. */
export function bundleIsStale(root = repoRoot) {
  const bundle = bundlePath(root);
  if (!existsSync(bundle)) return true;
  const built = statSync(bundle).mtimeMs;
  return bundleSources.some((source) => newest(join(root, source)) > built);
}
