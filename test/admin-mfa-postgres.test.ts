// MFA for admin actions on PostgreSQL: the challenge, its grants (rows of `challenges` with derived ids) and
// their single use behave as on SQLite, through a real keyport-auth on a lab PostgreSQL.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterApi } from '../client/api';
import { adminActionFor, authorizeAdminActions } from '../client/ceremonies/admin-action';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { connectAsProfile, webauthnOrigin } from '../client/session';
import { openKeys } from '../client/webauthn';
import { runAdmin, runKeyport, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

let postgres: LabPostgres;
let cluster: LabCluster;
let key: SoftKey;
let work: string;
let api: ClusterApi;
let origin: string;
let touches = 0;
const home = () => join(work, 'home');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-admin-mfa-pg-'));
  postgres = await startLabPostgres();
  cluster = await startLabCluster({
    clusterName: 'admin-mfa-pg',
    configYaml: [
      'keyport:',
      '  storage:',
      '    type: postgresql',
      `    conn_string: ${postgres.connString}`,
      '    pool_size: 4',
      'auth_service:',
      '  public_addr: localhost:0',
      '  authentication:',
      '    type: local',
      '    second_factors: [webauthn]',
      '    webauthn:',
      '      rp_id: localhost',
      '',
    ].join('\n'),
  });
  key = await startSoftKey({
    socketPath: join(work, 'k.sock'),
    statePath: join(work, 'k.json'),
    touch: 'auto:20',
  });
  key.events.on('presence', (event: { outcome: string }) => {
    if (event.outcome === 'approve') touches += 1;
  });
  const env = { KEYPORT_LAB_SECURITY_KEY: key.socketPath };
  const added = await runAdmin(cluster, ['users', 'add', 'ada', '--roles', 'editor']);
  const token = /signup token: (\S+)/.exec(added.stdout)?.[1] ?? '';
  const signup = await runKeyport(
    [
      ...['signup', '--cluster', cluster.address, '--token', token, '--ca-pin', cluster.caPin],
      ...['--device', 'webauthn', '--device-name', 'ada-key'],
    ],
    { home: home(), input: ['ada-password-123'], env },
  );
  expect(signup.code, signup.stderr).toBe(0);
  const login = await runKeyport(
    [
      ...['login', '--cluster', cluster.address, '--user', 'ada', '--ca-pin', cluster.caPin],
      ...['--password-stdin', '--keystore', 'file', '--mfa', 'key'],
    ],
    { home: home(), input: ['ada-password-123'], env },
  );
  expect(login.code, login.stderr).toBe(0);
  const profiles = new ProfileStore(home());
  const profile = (await profiles.getProfile())!;
  api = await connectAsProfile(profiles, profile);
  origin = webauthnOrigin((await profiles.getTrustedCluster(parseClusterAddress(profile.address)))!);
}, 300_000);

afterAll(async () => {
  api?.close();
  await key?.stop();
  await cluster?.stop();
  await postgres?.stop();
  await rm(work, { recursive: true, force: true });
});

async function rows(text: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: postgres.connString });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

describe('MFA for admin actions on PostgreSQL', () => {
  it('one touch for a command of several documents, written in PostgreSQL', async () => {
    const file = join(work, 'two.yaml');
    await writeFile(
      file,
      [
        'kind: role\nversion: v7\nmetadata:\n  name: red\nspec:\n  allow:\n    logins: [red]',
        'kind: user\nversion: v2\nmetadata:\n  name: dora\nspec:\n  roles: [red]',
      ].join('\n---\n'),
    );
    const before = touches;
    const result = await runKeyport(['admin', 'create', '-f', file], {
      home: home(),
      env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(touches - before).toBe(1);
    expect(await rows("SELECT name FROM users WHERE name = 'dora'")).toHaveLength(1);
  });

  it('grants each named call once, and nothing for a call not named', async () => {
    const lock = { name: 'dora', durationSeconds: 0, reason: 'pg' };
    const unlock = { name: 'dora' };
    const bound = await authorizeAdminActions(
      api,
      [adminActionFor('admin', 'lockUser', lock), adminActionFor('admin', 'unlockUser', unlock)],
      {
        origin,
        keys: openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } }),
        prompts: {
          otpCode: () => Promise.reject(new Error('no OTP here')),
          securityKey: { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} },
        },
      },
    );
    await bound.admin.lockUser(lock);
    expect(
      await rows("SELECT 1 FROM challenges WHERE scope = 'ADMIN_ACTION_GRANT' AND used = 0"),
    ).toHaveLength(1);
    await expect(bound.admin.deleteResource({ kind: 'user', name: 'dora' })).rejects.toMatchObject({
      code: 'EXPIRED',
    });
    await bound.admin.unlockUser(unlock);
    await expect(bound.admin.unlockUser(unlock)).rejects.toMatchObject({ code: 'EXPIRED' });
    await expect(api.admin.lockUser(lock)).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    expect(
      await rows("SELECT 1 FROM users WHERE name = 'dora' AND locked_until_ms IS NOT NULL"),
    ).toHaveLength(0);
  });
});
