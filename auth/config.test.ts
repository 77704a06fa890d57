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

  it('has no web listener unless asked, and reaches a loopback one as localhost (a browser refuses an IP as RP ID)', async () => {
    expect((await loadAuthConfig({ dataDir: dir })).web).toBeUndefined();
    expect((await loadAuthConfig({ dataDir: dir, webListen: '127.0.0.1:0' })).web).toEqual({
      listen: { host: '127.0.0.1', port: 0 },
      publicAddr: 'localhost:0',
    });
    const fromFile = await loadAuthConfig({
      dataDir: dir,
      config: await configFile(
        'auth_service:\n  web_listen_addr: 0.0.0.0:3080\n  web_public_addr: auth.example.com:443\n',
      ),
    });
    expect(fromFile.web).toEqual({
      listen: { host: '0.0.0.0', port: 3080 },
      publicAddr: 'auth.example.com:443',
    });
    // Flags win over the file.
    expect(
      (await loadAuthConfig({ dataDir: dir, webListen: '127.0.0.1:9', webPublicAddr: 'web.example.com:9' }))
        .web,
    ).toEqual({ listen: { host: '127.0.0.1', port: 9 }, publicAddr: 'web.example.com:9' });
  });

  it.each([
    [{ webListen: 'nowhere' }, '--web-listen'],
    [{ webPublicAddr: 'web.example.com:443' }, 'web_listen_addr'],
    [{ webListen: '127.0.0.1:0', webPublicAddr: '[::1]:443' }, 'not an IP address'],
    [{ webListen: '127.0.0.1:0', webPublicAddr: '127.0.0.1:443' }, 'not an IP address'],
  ])('refuses a web listener config that cannot work (%o)', async (flags, words) => {
    await expect(loadAuthConfig({ dataDir: dir, ...flags })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(words),
    });
  });

  it("has no oidc_ca_file unless given, and reads a relative one from the config file's folder", async () => {
    expect((await loadAuthConfig({ dataDir: dir })).oidcCaFile).toBeUndefined();
    const path = await configFile('auth_service:\n  oidc_ca_file: certs/idp-ca.pem\n');
    expect((await loadAuthConfig({ config: path, dataDir: dir })).oidcCaFile).toBe(
      join(dir, 'certs/idp-ca.pem'),
    );
    const absolute = await configFile('auth_service:\n  oidc_ca_file: /etc/keyport/idp.pem\n');
    expect((await loadAuthConfig({ config: absolute, dataDir: dir })).oidcCaFile).toBe(
      '/etc/keyport/idp.pem',
    );
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

  it('stores in SQLite by default, and in PostgreSQL when keyport.storage says so', async () => {
    expect((await loadAuthConfig({ dataDir: dir })).storage).toEqual({ type: 'sqlite' });
    const path = await configFile(
      'keyport:\n  data_dir: /var/lib/keyport\n  storage:\n    type: postgresql\n    conn_string: postgresql://keyport@db.example.com:5432/keyport?sslmode=verify-full\n    pool_size: 4\n    statement_timeout: 5s\n',
    );
    expect((await loadAuthConfig({ config: path })).storage).toEqual({
      type: 'postgresql',
      connString: 'postgresql://keyport@db.example.com:5432/keyport?sslmode=verify-full',
      poolSize: 4,
      statementTimeoutMs: 5000,
    });
    const defaults = await configFile(
      'keyport:\n  storage:\n    type: postgresql\n    conn_string: postgres://k@db/keyport\n',
    );
    expect((await loadAuthConfig({ config: defaults, dataDir: dir })).storage).toMatchObject({
      poolSize: 10,
      statementTimeoutMs: 30_000,
    });
  });

  it.each([
    ['keyport:\n  storage:\n    type: postgresql\n', 'keyport.storage.conn_string'],
    [
      'keyport:\n  storage:\n    type: postgresql\n    conn_string: db.example.com:pa55word\n',
      'keyport.storage.conn_string',
    ],
    [
      'keyport:\n  storage:\n    conn_string: postgresql://k:pa55word@db/keyport\n',
      'keyport.storage.conn_string',
    ],
    ['keyport:\n  storage:\n    type: mysql\n', 'keyport.storage.type'],
    [
      'keyport:\n  storage:\n    type: postgresql\n    conn_string: postgresql://k@db/k\n    pool_size: 0\n',
      'keyport.storage.pool_size',
    ],
    [
      'keyport:\n  storage:\n    type: postgresql\n    conn_string: postgresql://k@db/k\n    statement_timeout: soon\n',
      'keyport.storage.statement_timeout',
    ],
  ])('refuses storage %j naming %s, never repeating a password', async (yaml, fieldPath) => {
    const error = await loadAuthConfig({ config: await configFile(yaml), dataDir: dir }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { fieldPath } });
    expect((error as Error).message).not.toContain('pa55word');
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
