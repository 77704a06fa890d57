// keyport-node's launcher (bin/keyport-node.mjs) runs the esbuild bundle once the lab has built it, and the
// bundle answers as the sources do: the same refusals, the same exit code. sshd runs the launcher.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../lab/cluster';
import { labNodeCommand } from '../lab/sshd';
import type { NodeCommand } from '../lab/sshd';

/** node-bundle.mjs, shared by the launcher and build-node.mjs. */
interface NodeBundle {
  bundlePath(root?: string): string;
  bundleSources: string[];
  bundleIsStale(root?: string): boolean;
}
const nodeBundle = (await import(pathToFileURL(join(repoRoot, 'node-bundle.mjs')).href)) as NodeBundle;

let nodeCommand: NodeCommand;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-node-bundle-'));
  nodeCommand = await labNodeCommand(); // builds dist/node/keyport-node.mjs when stale
});

afterAll(async () => {
  await nodeCommand?.remove();
  await rm(work, { recursive: true, force: true });
});

function run(args: string[], entry: 'launcher' | 'sources') {
  const argv =
    entry === 'launcher'
      ? [join(repoRoot, 'bin/keyport-node.mjs'), ...args]
      : ['--import', 'tsx', join(repoRoot, 'node/main.ts'), ...args];
  const result = spawnSync(process.execPath, argv, { cwd: repoRoot, encoding: 'utf8', env: {} });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('keyport-node bundle', () => {
  it('the launcher runs the current bundle (no fallback to the sources) and refuses as the sources do', async () => {
    const config = join(work, 'node.json');
    await writeFile(
      config,
      JSON.stringify({ node: 'web', auth_addr: '127.0.0.1:1', tls_ca_file: 'relative' }),
    );
    const cases = [
      [],
      ['principals', join(work, 'missing.json'), 'jerry', 'ssh-ed25519-cert-v01@openssh.com', 'AAAA', '1'],
      ['principals', config, 'jerry', 'ssh-ed25519-cert-v01@openssh.com', 'AAAA', '1'],
    ];
    for (const args of cases) {
      const bundled = run(args, 'launcher');
      expect(bundled.stderr).not.toMatch(/stale|running the sources/);
      expect(bundled.stderr).toMatch(/^keyport-node: refused: /);
      expect(bundled).toEqual(run(args, 'sources'));
      expect(bundled.code).toBe(1);
      expect(bundled.stdout).toBe('');
    }
    // The config's refusal names the field and why (zod/mini with its English messages).
    expect(run(cases[2]!, 'launcher').stderr).toBe(
      `keyport-node: refused: ${config}: tls_ca_file: Invalid string: must start with "/"\n`,
    );
  });

  it('the launcher never loads esbuild (only build-node.mjs does)', () => {
    // A resolve hook that fails any import of esbuild, registered before the launcher starts.
    const hook = `export async function resolve(specifier, context, next) {
      if (specifier === 'esbuild' || specifier.startsWith('esbuild/')) throw new Error('esbuild imported');
      return next(specifier, context);
    }`;
    const register = `import { register } from 'node:module';
      register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
    const result = spawnSync(
      process.execPath,
      [
        '--import',
        `data:text/javascript,${encodeURIComponent(register)}`,
        join(repoRoot, 'bin/keyport-node.mjs'),
      ],
      { cwd: repoRoot, encoding: 'utf8', env: {} },
    );
    expect({ code: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual(run([], 'sources'));
    expect(result.stderr).toMatch(/^keyport-node: refused: usage: /);
  });

  it('a change to any source in the shared list, build-node.mjs included, makes the bundle stale', async () => {
    expect(nodeBundle.bundleSources).toEqual(['node', 'proto', 'build-node.mjs', 'package-lock.json']);
    const tree = join(work, 'tree');
    const built = new Date('2026-01-02T00:00:00Z');
    const before = new Date('2026-01-01T00:00:00Z');
    const after = new Date('2026-01-03T00:00:00Z');
    const files = {
      node: join(tree, 'node', 'main.ts'),
      proto: join(tree, 'proto', 'gen', 'keyport.ts'),
      'build-node.mjs': join(tree, 'build-node.mjs'),
      'package-lock.json': join(tree, 'package-lock.json'),
    };
    for (const file of [...Object.values(files), nodeBundle.bundlePath(tree)]) {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, '');
    }
    const setAll = async () => {
      for (const file of Object.values(files)) await utimes(file, before, before);
      for (const folder of ['node', 'proto', 'proto/gen']) await utimes(join(tree, folder), before, before);
      await utimes(nodeBundle.bundlePath(tree), built, built);
    };
    await setAll();
    expect(nodeBundle.bundleIsStale(tree)).toBe(false);
    for (const [source, file] of Object.entries(files)) {
      await setAll();
      await utimes(file, after, after);
      expect(nodeBundle.bundleIsStale(tree), source).toBe(true);
    }
    await setAll();
    await rm(nodeBundle.bundlePath(tree));
    expect(nodeBundle.bundleIsStale(tree)).toBe(true);
    // The repo's own bundle (built in beforeAll) is current, and the launcher ran it above.
    expect(nodeBundle.bundleIsStale()).toBe(false);
  });
});
