// keyport-auth on PostgreSQL (keyport.storage.type: postgresql): a real keyport-auth process on a lab
// PostgreSQL; a person signs up and signs in, and what they did is in the PostgreSQL database, not in a
// SQLite file in the data dir. The log names the database without the password of its conn string.
// (The CAs are in the database too, shared by replicas: test/postgres-replicas.test.ts.)
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginWithPassword } from '../client/ceremonies/login';
import { ProfileStore } from '../client/profiles';
import { parseClusterAddress } from '../client/cluster-trust';
import { nextTotpCode, signUpUserInProcess, startLabCluster } from '../lab/cluster';
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
});
