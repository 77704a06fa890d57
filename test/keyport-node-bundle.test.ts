// keyport-node's launcher (bin/keyport-node.mjs) runs the esbuild bundle once the lab has built it, and the
// bundle answers as the sources do: the same refusals, the same exit code. sshd runs the launcher.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../lab/cluster';
import { labNodeCommand } from '../lab/sshd';
import type { NodeCommand } from '../lab/sshd';

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
});
