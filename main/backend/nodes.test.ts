// nodes.list through the handler table, against a real keyport-auth with node resources and roles: the
// Servers view's data. Only the nodes the roles reach, each with its labels and the logins allowed there
// (allow.logins × allow.node_labels, deny winning); the argument checked first; no host key, certificate
// or key material in the result.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { connectAsAdmin, nextTotpCode, signUpUserInProcess, startLabCluster } from '../../lab/cluster';
import type { LabCluster, SignedUpUser } from '../../lab/cluster';
import { createBackend } from './backend';
import type { Backend } from './backend';

const CONFIG = 'auth_service:\n  authentication:\n    type: local\n    second_factor: otp\n';

const node = (name: string, labels: Record<string, string>, port: number) =>
  JSON.stringify({
    kind: 'node',
    version: 'v2',
    sub_kind: 'openssh',
    metadata: { name, labels },
    spec: { addr: `127.0.0.1:${port}` },
  });
const role = (name: string, spec: object) =>
  JSON.stringify({ kind: 'role', version: 'v7', metadata: { name }, spec });

let clock: LabClock;
let cluster: LabCluster;
let home: string;
let person: SignedUpUser;
let backend: Backend;

beforeAll(async () => {
  clock = createLabClock();
  cluster = await startLabCluster({ clusterName: 'servers', configYaml: CONFIG, env: clock.env });
  home = await mkdtemp(join(tmpdir(), 'keyport-backend-nodes-'));
  const admin = await connectAsAdmin(cluster);
  try {
    await admin.admin.createResources({
      documentsJson: [
        role('servers-dev', {
          allow: { logins: ['{{internal.logins}}', 'deploy'], node_labels: { env: 'dev' } },
        }),
        role('servers-prod', {
          allow: { logins: ['viewer'], node_labels: { env: 'prod' } },
          deny: { node_labels: { tier: 'db' } },
        }),
        node('web-dev', { env: 'dev', team: 'web' }, 2201),
        node('api-dev', { env: 'dev' }, 2202),
        node('web-prod', { env: 'prod' }, 2203),
        node('db-prod', { env: 'prod', tier: 'db' }, 2204),
        node('build', { env: 'ci' }, 2205),
      ],
      force: false,
    });
  } finally {
    admin.close();
  }
  person = await signUpUserInProcess(cluster, home, 'nina', ['servers-dev', 'servers-prod']);
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: { ...process.env, ...clock.env },
    watchProfiles: false,
  });
}, 120_000);

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
  clock?.dispose();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('nodes.list through the backend (the Servers view)', () => {
  it('asks for a signed-in session first', async () => {
    const result = await backend.handlers['nodes.list']();
    expect(result).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
  });

  it('lists the nodes the roles reach, with their labels and logins, and nothing else', async () => {
    const stop = backend.on('onPrompt', (prompt) => {
      if (prompt.kind !== 'otpCode') return;
      void backend.handlers['prompts.answer']({
        id: prompt.id,
        value: { kind: 'otpCode', code: nextTotpCode(person.totpSecret, clock.now()) },
      });
    });
    try {
      const login = await backend.handlers['auth.login']({
        address: cluster.address,
        user: person.user,
        password: person.password,
        secondFactor: 'otp',
      });
      expect(login.ok).toBe(true);
    } finally {
      stop();
    }
    const result = await backend.handlers['nodes.list']({ cluster: cluster.address });
    // db-prod: denied by tier=db; build: no role's node_labels match env=ci.
    expect(result).toEqual({
      ok: true,
      value: [
        {
          name: 'api-dev',
          addr: '127.0.0.1:2202',
          labels: [{ key: 'env', value: 'dev' }],
          logins: ['deploy', 'nina'],
        },
        {
          name: 'web-dev',
          addr: '127.0.0.1:2201',
          labels: [
            { key: 'env', value: 'dev' },
            { key: 'team', value: 'web' },
          ],
          logins: ['deploy', 'nina'],
        },
        {
          name: 'web-prod',
          addr: '127.0.0.1:2203',
          labels: [{ key: 'env', value: 'prod' }],
          logins: ['viewer'],
        },
      ],
    });
    // The current profile's cluster when none is named.
    expect(await backend.handlers['nodes.list']()).toEqual(result);
    expect(JSON.stringify(result)).not.toMatch(/ssh-ed25519|ecdsa-sha2|BEGIN|cert/);
  });

  it('refuses a cluster it is not signed in to, typed', async () => {
    const result = await backend.handlers['nodes.list']({ cluster: '127.0.0.1:1' });
    expect(result).toMatchObject({ ok: false, error: { code: 'UNAUTHENTICATED' } });
  });
});
