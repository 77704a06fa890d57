// keyport-node's esbuild bundle: where it is, what it is built from, and whether it is older than any of that.
// build-node.mjs (which builds it) and bin/keyport-node.mjs (which runs it, or the sources when it is stale)
// share this one list. No esbuild here: the launcher imports this on every start (sshd runs it twice per
// connection).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isOlderThanSources } from './build-stale.mjs';

export const repoRoot = fileURLToPath(new URL('.', import.meta.url));

/** dist/node/keyport-node.mjs below `root`. */
export function bundlePath(root = repoRoot) {
  return join(root, 'dist', 'node', 'keyport-node.mjs');
}

/** What goes into the bundle (node/ imports only proto/) and what decides how it is built. */
export const bundleSources = ['node', 'proto', 'build-node.mjs', 'package-lock.json'];

/** True when the bundle is missing or a source (a file, or anything in a folder) is newer than it. */
export function bundleIsStale(root = repoRoot) {
  return isOlderThanSources(bundlePath(root), root, bundleSources);
}
