// The Electron main bundle, built the way build-app.mjs builds it (dependencies external), must import only
// what a packaged app has: Electron, Node's built-ins and the production dependencies electron-builder ships
// (devDependencies are not shipped), and none of the server-side native modules electron-builder.yml leaves out.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const everyDependency = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });

/** Every chunk's code (the entry and the chunks its lazy imports split off) and the chunks' file names. */
async function bundleMain(): Promise<{ code: string; chunks: Set<string> }> {
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    root,
    build: {
      write: false,
      ssr: 'main/electron/main.ts',
      target: 'node20',
      rollupOptions: {
        external: (id) =>
          id === 'electron' ||
          id.startsWith('node:') ||
          everyDependency.some((dep) => id === dep || id.startsWith(`${dep}/`)),
        output: { format: 'es', entryFileNames: 'main.mjs' },
      },
    },
  });
  const codes: string[] = [];
  const chunks = new Set<string>();
  for (const output of Array.isArray(result) ? result : [result]) {
    if (!('output' in output)) continue;
    for (const chunk of output.output) {
      if (chunk.type !== 'chunk') continue;
      codes.push(chunk.code);
      chunks.add(chunk.fileName);
    }
  }
  if (!chunks.has('main.mjs')) throw new Error('Vite produced no main chunk.');
  return { code: codes.join('\n'), chunks };
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

let imported: string[];

beforeAll(async () => {
  const { code, chunks } = await bundleMain();
  const specifiers = [
    ...code.matchAll(/^\s*import\s[^'"]*?from\s*["']([^"']+)["']/gm),
    ...code.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
    ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ].map((match) => match[1] as string);
  // A chunk of the bundle itself (a lazy import split off) ships with it in dist/electron: its imports are
  // checked with the rest; a relative import that is not one of the chunks stays in the list and fails.
  const ownChunk = (specifier: string) =>
    /^\.\.?\//.test(specifier) &&
    [...chunks].some((name) => specifier.endsWith(`/${name}`) || specifier.endsWith(name));
  imported = [...new Set(specifiers)].filter((specifier) => !ownChunk(specifier)).sort();
}, 180_000);

describe('dist/electron/main.mjs', () => {
  it('imports electron and the contract backend’s runtime dependencies', () => {
    expect(imported).toContain('electron');
    expect(imported.some((specifier) => specifier.startsWith('zod'))).toBe(true);
  });

  it('imports only Electron, Node built-ins and production dependencies', () => {
    const shipped = new Set(Object.keys(pkg.dependencies));
    const missing = imported.filter((specifier) => {
      if (specifier === 'electron') return false;
      const bare = specifier.replace(/^node:/, '');
      if (specifier.startsWith('node:') || builtinModules.includes(packageOf(bare))) return false;
      return !shipped.has(packageOf(specifier));
    });
    expect(missing, 'not in package.json "dependencies", so not in the packaged app').toEqual([]);
  });

  it('never loads the server-side native modules the package leaves out', () => {
    const excluded = ['better-sqlite3', '@node-rs/argon2'];
    expect(imported.filter((specifier) => excluded.includes(packageOf(specifier)))).toEqual([]);
  });
});
