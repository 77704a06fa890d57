// keyport-auth on PostgreSQL (keyport.storage.type: postgresql): a real keyport-auth process on a lab
// PostgreSQL; a person signs up and signs in, and what they did is in the PostgreSQL database, not in a
// SQLite file in the data dir. The log names the database without the password of its conn string.
// (The CAs are in the database too, shared by replicas: test/postgres-replicas.test.ts.)
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginWithPassword } from '../client/ceremonies/login';
import { ProfileStore } from '../client/profiles';
import { parseClusterAddress } from '../client/cluster-trust';
import {
  nextTotpCode,
  runKeyport,
  runKeyportAuth,
  signUpUserInProcess,
  startLabCluster,
} from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';

let postgres: LabPostgres;
let cluster: LabCluster;
let home: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'keyport-pg-cluster-'));
  postgres = await startLabPostgres();
  cluster = await startLabCluster({
    clusterName: 'pg-lab',
    configYaml: `keyport:\n  storage:\n    type: postgresql\n    conn_string: ${postgres.connString}\n    pool_size: 4\n    statement_timeout: 10s\n`,
  });
});

afterAll(async () => {
  await cluster?.stop();
  await postgres?.stop();
  await rm(home, { recursive: true, force: true });
});

async function rows<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: postgres.connString });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('keyport-auth on PostgreSQL', () => {
  it('signs a person up and in, keeping users, devices, config and audit in PostgreSQL', async () => {
    const person = await signUpUserInProcess(cluster, home, 'pia', ['access']);
    const profile = await loginWithPassword({
      profiles: new ProfileStore(home),
      address: parseClusterAddress(cluster.address),
      user: 'pia',
      keystore: 'file',
      prompts: {
        confirmCaPin: async () => false,
        password: async () => person.password,
        otpCode: async () => nextTotpCode(person.totpSecret),
      },
    });
    expect(profile).toMatchObject({ user: 'pia', mfaVerified: true });

    const [user] = await rows<{ name: string; has_password: boolean }>(
      `select name, password_hash is not null as has_password from users where name = $1`,
      ['pia'],
    );
    expect(user).toEqual({ name: 'pia', has_password: true });
    const devices = await rows<{ type: string; totp_last_step: number }>(
      `select type, totp_last_step from mfa_devices where "user" = $1`,
      ['pia'],
    );
    expect(devices).toHaveLength(1);
    expect(devices[0]?.type).toBe('totp');
    expect(await rows(`select value_json from cluster_config where key = 'cluster_name'`)).toEqual([
      { value_json: '"pg-lab"' },
    ]);
    const signups = await rows<{ used: number }>(`select used from signup_tokens where "user" = $1`, ['pia']);
    expect(signups.map((t) => t.used)).toEqual([1]);
    const audit = await rows<{ type: string }>(`select type from audit_events where actor = $1`, ['pia']);
    expect(audit.length).toBeGreaterThan(0);

    // The data dir keeps the admin identity, and no database of its own.
    expect(existsSync(join(cluster.dataDir, 'keyport.db'))).toBe(false);
    const password = new URL(postgres.connString).password;
    expect(cluster.output()).toMatch(/storage: postgresql postgresql:\/\/keyport:\*\*\*@127\.0\.0\.1/);
    expect(cluster.output()).not.toContain(password);
  });

  it('lets `keyport admin -c FILE` (and --config) on the auth host use the data dir the config file names', async () => {
    // The operator's config file: the data dir and the storage, as keyport-auth reads them.
    const config = join(home, 'auth-host.yaml');
    await writeFile(
      config,
      `keyport:\n  data_dir: ${cluster.dataDir}\n  storage:\n    type: postgresql\n    conn_string: ${postgres.connString}\n`,
    );
    const elsewhere = await mkdtemp(join(tmpdir(), 'keyport-pg-admin-home-'));
    try {
      // No profile in this home: the identity comes from the data dir alone.
      const status = await runKeyport(['admin', '-c', config, 'status'], { home: elsewhere });
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/Cluster\s+pg-lab/);
      expect(status.stdout).toContain(`CA pin       ${cluster.caPin}`);
      const added = await runKeyport(
        ['admin', '--config', config, 'users', 'add', 'cora', '--roles', 'access'],
        { home: elsewhere },
      );
      expect(added.code, added.stderr).toBe(0);
      expect(added.stdout).toMatch(/signup token: \S+/);
      expect(await rows(`select name from users where name = $1`, ['cora'])).toEqual([{ name: 'cora' }]);

      // A config file without keyport.data_dir is refused, saying what to pass instead.
      const bare = join(home, 'no-data-dir.yaml');
      await writeFile(
        bare,
        `keyport:\n  storage:\n    type: postgresql\n    conn_string: ${postgres.connString}\n`,
      );
      const refused = await runKeyport(['admin', '-c', bare, 'status'], { home: elsewhere });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('names no keyport.data_dir: pass --data-dir DIR');
      expect(refused.stderr).not.toContain(new URL(postgres.connString).password);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('does not start while its database is unreachable, says so for the process, and binds nothing', async () => {
    // A port nothing listens on (the lab server's own, once a free port was taken from it, is not safe to
    // guess): port 1 on loopback refuses at once.
    const config = join(home, 'unreachable.yaml');
    const unreachable = new URL(postgres.connString);
    unreachable.port = '1';
    await writeFile(
      config,
      `keyport:\n  storage:\n    type: postgresql\n    conn_string: ${unreachable.toString()}\n`,
    );
    const dataDir = join(home, 'never-started');
    const result = await runKeyportAuth([
      'start',
      '--config',
      config,
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--cluster-name',
      'pg-lab',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /The database is unreachable \(connect ECONNREFUSED 127\.0\.0\.1:1\): keyport-auth did not start\. Start it again once PostgreSQL answers/,
    );
    expect(result.stderr).not.toContain('the call was not completed');
    expect(result.stderr + result.stdout).not.toContain(unreachable.password);
    expect(result.stdout).not.toMatch(/listening on/);
    expect(existsSync(join(dataDir, 'admin-identity.json'))).toBe(false);
  });
});
