import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAuthConfig, parseHostPort } from './config';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function configFile(text: string): Promise<string> {
  const path = join(dir, `${Math.random()}.yaml`);
  await writeFile(path, text);
  return path;
}

describe('keyport-auth configuration', () => {
  it('reads the file and lets flags win', async () => {
    const config = await loadAuthConfig({
      config: await configFile(
        'keyport:\n  data_dir: /var/lib/k\nauth_service:\n  listen_addr: 0.0.0.0:3025\n  public_addr: auth.example.com:443\n  cluster_name: example\n  lockout:\n    max_attempts: 3\n    window: 10m\n',
      ),
      listen: '127.0.0.1:0',
    });
    expect(config).toMatchObject({
      dataDir: '/var/lib/k',
      listen: { host: '127.0.0.1', port: 0 },
      publicAddr: 'auth.example.com:443',
      clusterName: 'example',
      lockout: { maxAttempts: 3, windowMs: 600_000, durationMs: 1_800_000 },
    });
  });

  it('defaults the lockout to 5 failures in 30 minutes, locking for 30 minutes', async () => {
    const config = await loadAuthConfig({ dataDir: dir });
    expect(config.lockout).toEqual({ maxAttempts: 5, windowMs: 1_800_000, durationMs: 1_800_000 });
  });

  it('names an unknown key in the file', async () => {
    const path = await configFile('auth_service:\n  listen_adr: 1.2.3.4:5\n');
    await expect(loadAuthConfig({ config: path, dataDir: dir })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('listen_adr'),
    });
  });

  it('names a bad lockout duration', async () => {
    const path = await configFile('auth_service:\n  lockout:\n    window: soon\n');
    await expect(loadAuthConfig({ config: path, dataDir: dir })).rejects.toMatchObject({
      fields: { fieldPath: 'auth_service.lockout.window' },
    });
  });

  it('requires a data dir', async () => {
    await expect(loadAuthConfig({})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it.each(['localhost', 'host:', ':80', 'host:70000'])('rejects the address %j', (text) => {
    expect(() => parseHostPort(text, '--listen')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
