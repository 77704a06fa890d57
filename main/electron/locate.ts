// Whether a runnable Electron binary is installed, found the way the electron package finds it
// (node_modules/electron/path.txt names it under dist/) but without requiring the package: requiring it
// starts a download when the binary is missing, and none can be downloaded on the machines this is built on.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';

/** The absolute path of the Electron binary under `root`, or undefined when there is none to run. */
export function electronBinary(root: string): string | undefined {
  const packageDir = join(root, 'node_modules', 'electron');
  let named: string;
  try {
    named = readFileSync(join(packageDir, 'path.txt'), 'utf8').trim();
  } catch {
    return undefined;
  }
  if (named === '') return undefined;
  const dist = join(packageDir, 'dist');
  const binary = resolve(dist, named);
  const inside = relative(dist, binary);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) return undefined;
  try {
    if (!statSync(binary).isFile()) return undefined;
    accessSync(binary, constants.X_OK);
  } catch {
    return undefined;
  }
  return binary;
}
