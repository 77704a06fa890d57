// Whether a build output is older than its sources, for the --if-stale builds (build-app.mjs, and
// node-bundle.mjs for keyport-node). By modification times: a folder counts as its newest file.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

/** True when `output` is missing or any of `sources` (paths below `root`) is newer than it. */
export function isOlderThanSources(output, root, sources) {
  if (!existsSync(output)) return true;
  const built = statSync(output).mtimeMs;
  return sources.some((source) => newest(join(root, source)) > built);
}
