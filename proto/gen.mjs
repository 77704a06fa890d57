// Protobuf codegen: buf (its own compiler, offline) + ts-proto with grpc-js services.
// `--check` regenerates into a temporary folder and fails when the committed code differs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const buf = join(root, 'node_modules/.bin/buf');
const check = process.argv.includes('--check');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

execFileSync(buf, ['lint'], { cwd: root, stdio: 'inherit' });
if (!check) {
  rmSync(join(root, 'proto/gen'), { recursive: true, force: true });
  execFileSync(buf, ['generate'], { cwd: root, stdio: 'inherit' });
  process.exit(0);
}

const out = mkdtempSync(join(tmpdir(), 'keyport-gen-'));
try {
  execFileSync(buf, ['generate', '--output', out], { cwd: root, stdio: 'inherit' });
  const fresh = join(out, 'proto/gen');
  const committed = join(root, 'proto/gen');
  const names = new Set([
    ...files(fresh).map((f) => relative(fresh, f)),
    ...files(committed).map((f) => relative(committed, f)),
  ]);
  const stale = [...names].filter((name) => {
    try {
      return !readFileSync(join(fresh, name)).equals(readFileSync(join(committed, name)));
    } catch {
      return true;
    }
  });
  if (stale.length > 0) {
    console.error(
      `proto/gen is out of date (${stale.join(', ')}): run \`npm run gen\` and commit the result.`,
    );
    process.exit(1);
  }
  console.log('proto/gen is current');
} finally {
  rmSync(out, { recursive: true, force: true });
}
