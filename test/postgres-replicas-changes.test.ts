// A change made through one keyport-auth replica is enforced by the other on its very next call: both
// replicas read roles, users, locks, trusted devices and the cluster_auth_preference from the one
// PostgreSQL database on every call (the only in-process cache, auth/identity.ts, holds a certificate's
// verified signature and extensions, never the user's or the device's state). Each case changes something
// through replica A (its admin API or `keyport admin`), then asks replica B at once: no sleep, no polling,
// no clock read between the two. A refusal is checked for its typed code and for leaving the cluster's
// state as it was. The time bound itself (≤ 1 s) is measured in bench/replicas-propagation.ts.
// Every process reads the lab clock, which moves a minute after each login so every login has a fresh
// OTP step and no test waits for the wall clock.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { TrustedDevice } from '../client/device-trust/device';
import { generateSessionKey } from '../client/keystore/session-key';
import type { LoginResponse } from '../proto/gen/keyport/v1/auth';
import { ChallengeScope, MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import { createLabClock } from '../lab/clock';
import { connectAsAdmin, runAdmin } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { createReplicaSet, queryRows } from '../lab/replicas';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const PUBLIC_ADDR = 'auth.changes.test:3025';
const ASSET_TAG = 'REPLICA0CHANGE';
let work: string;
let postgres: LabPostgres;
let tpm: LabTpm;
const clock = createLabClock();
let a: LabCluster;
let b: LabCluster;
let caPem: string;
/** The super-admin API of replica A, where the changes are made (besides `keyport admin` on A). */
let adminA: ClusterApi;
const opened: ClusterApi[] = [];

const rows = <R extends Record<string, unknown>>(text: string, values: unknown[] = []) =>
  queryRows<R>(postgres.connString, text, values);

/** Everything policy is made of, and what a login or an admin call could write besides its audit. */
const STATE_TABLES = [
  'users',
  'roles',
  'cluster_config',
  'signup_tokens',
  'mfa_devices',
  'trusted_devices',
  'device_enroll_tokens',
  'cluster_authorities',
  'builtin_admins',
];
async function clusterState(user: string): Promise<string> {
  const tables = await Promise.all(STATE_TABLES.map((table) => rows(`select * from ${table} order by 1`)));
  const counts = await rows(
    `select
       (select count(*)::int from audit_events where type = 'cert.issued' and actor = $1) as issued,
       (select count(*)::int from login_attempts where name = $1 and state = 'failed') as failures`,
    [user],
  );
  return JSON.stringify({ tables, counts });
}

const denials = async (user: string) =>
  (
    await rows<{ n: number }>(
      `select count(*)::int as n from audit_events where type = 'auth.denied' and actor = $1`,
      [user],
    )
  )[0]?.n;

function track(api: ClusterApi): ClusterApi {
  opened.push(api);
  return api;
}

const anonymousApis = new Map<LabCluster, ClusterApi>();
/** An unauthenticated client of `replica` (one channel per replica, reused). */
function anonymous(replica: LabCluster): ClusterApi {
  let api = anonymousApis.get(replica);
  if (!api) {
    api = track(
      connectCluster({ address: parseClusterAddress(replica.address), caPem, caPin: replica.caPin }),
    );
    anonymousApis.set(replica, api);
  }
  return api;
}

interface Person {
  user: string;
  password: string;
  totpSecret: string;
}

/** Created through A's admin API, signed up through B with an OTP device (on the lab clock). */
async function person(user: string, roles: string[]): Promise<Person> {
  const password = `${user}-password-123`;
  const { signupToken: token } = await adminA.admin.createUser({
    name: user,
    roles,
    traits: { logins: user },
  });
  const started = await anonymous(b).auth.startSignup({
    token,
    deviceType: MFADeviceType.MFA_DEVICE_TYPE_TOTP,
    passwordless: false,
    deviceCredentialId: '',
  });
  const totpSecret = started.registerChallenge?.totp?.secret ?? '';
  await anonymous(b).auth.completeSignup({
    token,
    password,
    newDevice: {
      challengeId: started.registerChallenge?.challengeId ?? '',
      deviceName: 'otp',
      response: { $case: 'totp', value: { code: totpCode(totpSecret, clock.now()) } },
    },
  });
  // The signup spent this step's code: the first login uses a later one.
  clock.advance(60_000);
  return { user, password, totpSecret };
}

interface Session {
  /** The person's API on the replica they signed in through, with the new certificate. */
  api: ClusterApi;
  login: LoginResponse;
  /** The same certificate on the other replica. */
  on(replica: LabCluster): ClusterApi;
}

/**
 * Password and OTP code through `replica`, in process (the two calls `keyport login` makes); with a
 * trusted device, its credential goes along and its TPM quotes the device nonce when one comes back.
 */
async function signIn(replica: LabCluster, who: Person, device?: TrustedDevice): Promise<Session> {
  const anon = anonymous(replica);
  const credentialId = device ? await device.credentialId() : undefined;
  try {
    const challenge = await anon.auth.createAuthenticateChallenge({
      user: who.user,
      password: who.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      device: credentialId ? { credentialId, enroll: undefined } : undefined,
    });
    const deviceResponse =
      device && challenge.deviceChallenge ? await device.answer(challenge.deviceChallenge) : undefined;
    const key = generateSessionKey('ecdsa-p256');
    const login = await anon.auth.login({
      mfaResponse: {
        challengeId: challenge.challengeId,
        response: { $case: 'totp', value: { code: totpCode(who.totpSecret, clock.now()) } },
      },
      sshPublicKey: key.sshPublicKey,
      tlsPublicKey: key.publicKeyPem,
      ttlSeconds: 0,
      deviceResponse,
    });
    const on = (target: LabCluster) =>
      track(
        connectCluster({
          address: parseClusterAddress(target.address),
          caPem,
          caPin: target.caPin,
          clientKeyPem: key.privateKeyPem,
          clientCertPem: login.tlsCertificate,
        }),
      );
    return { api: on(replica), login, on };
  } finally {
    // The next login of anyone gets a fresh OTP step.
    clock.advance(60_000);
  }
}

/** `keyport admin` on replica A (its super-admin identity), on the lab clock. */
async function adminCliOnA(args: string[]) {
  const result = await runAdmin(a, args, { env: clock.env });
  expect(result.code, `${result.stdout}${result.stderr}`).toBe(0);
  return result;
}

/** A resource file for `keyport admin create -f`. */
async function resourceFile(name: string, yaml: string): Promise<string> {
  const path = join(work, name);
  await writeFile(path, yaml);
  return path;
}

const roleJson = (name: string, allow: Record<string, unknown>) =>
  JSON.stringify({ kind: 'role', version: 'v7', metadata: { name }, spec: { allow } });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-changes-'));
  [postgres, tpm] = await Promise.all([startLabPostgres(), startLabTpm()]);
  const replicas = await createReplicaSet({
    work,
    connString: postgres.connString,
    clusterName: 'changes',
    publicAddr: PUBLIC_ADDR,
    extraYaml: [
      'auth_service:',
      '  rate_limit:',
      '    per_address: 100000',
      '    per_user: 100000',
      '  authentication:',
      '    type: local',
      '    second_factor: otp',
      '    device_trust:',
      '      mode: optional',
      '',
    ].join('\n'),
    env: clock.env,
  });
  [a, b] = await Promise.all([replicas.start('a'), replicas.start('b')]);
  caPem = (
    JSON.parse(await readFile(join(a.dataDir, 'admin-identity.json'), 'utf8')) as { caCertPem: string }
  ).caCertPem;
  adminA = track(await connectAsAdmin(a));
});

afterAll(async () => {
  for (const api of opened) api.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([postgres?.stop(), tpm?.stop()]);
  clock.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a change made through replica A is enforced by replica B on its very next call', () => {
  it('a role edited through A: on the same certificate B refuses the rule it lost and grants the one it gained; the next login gets the new logins', async () => {
    await adminA.admin.createResources({
      documentsJson: [
        roleJson('ops', {
          logins: ['ops-v1'],
          rules: [{ resources: ['user'], verbs: ['list', 'read'] }],
        }),
      ],
      force: false,
    });
    const rob = await person('rob', ['ops']);
    const session = await signIn(b, rob);
    expect(session.login.roles).toEqual(['ops']);
    expect(session.login.logins).toEqual(['ops-v1']);
    expect((await session.api.admin.listResources({ kind: 'user' })).resources.length).toBeGreaterThan(0);
    await expect(session.api.admin.listResources({ kind: 'role' })).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
    });

    // Through A: user list taken away, role list given, the login renamed.
    const v2 = await resourceFile(
      'ops-v2.yaml',
      [
        'kind: role',
        'version: v7',
        'metadata:',
        '  name: ops',
        'spec:',
        '  allow:',
        '    logins: [ops-v2]',
        '    rules:',
        '      - resources: [role]',
        '        verbs: [list, read]',
        '',
      ].join('\n'),
    );
    await adminCliOnA(['create', '-f', v2, '--force']);

    const before = await clusterState('rob');
    const denied = await denials('rob');
    await expect(session.api.admin.listResources({ kind: 'user' })).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/rob \(roles ops\) may not list user/),
    });
    expect(await clusterState('rob')).toBe(before);
    expect(await denials('rob')).toBe((denied ?? 0) + 1);
    const roles = await session.api.admin.listResources({ kind: 'role' });
    expect(roles.resources.map((r) => r.name)).toContain('ops');

    const next = await signIn(b, rob);
    expect(next.login.roles).toEqual(['ops']);
    expect(next.login.logins).toEqual(['ops-v2']);
  });

  it('a user locked through A (keyport admin users lock): B refuses their certificate and a new login with LOCKED at once; unlocked through A, B accepts both', async () => {
    const lia = await person('lia', ['access']);
    const session = await signIn(b, lia);
    expect((await session.api.user.ping({})).serverTimeMs).toBeGreaterThan(0);

    await adminCliOnA(['users', 'lock', 'lia', '--reason', 'propagation test']);

    const before = await clusterState('lia');
    const challengesBefore = await rows(`select count(*)::int as n from challenges where "user" = 'lia'`);
    await expect(session.api.user.ping({})).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringMatching(/User "lia" is locked until an admin unlocks it/),
    });
    await expect(session.api.user.getStatus({})).rejects.toMatchObject({ code: 'LOCKED' });
    await expect(
      anonymous(b).auth.createAuthenticateChallenge({
        user: 'lia',
        password: lia.password,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      }),
    ).rejects.toMatchObject({ code: 'LOCKED' });
    // No certificate, no challenge, no failure counted, nothing else written.
    expect(await clusterState('lia')).toBe(before);
    expect(await rows(`select count(*)::int as n from challenges where "user" = 'lia'`)).toEqual(
      challengesBefore,
    );

    await adminCliOnA(['users', 'unlock', 'lia']);
    expect((await session.api.user.getStatus({})).user).toBe('lia');
    const again = await signIn(b, lia);
    expect(again.login.user).toBe('lia');
    expect((await again.api.user.ping({})).serverTimeMs).toBeGreaterThan(0);
  });

  it('a lock through A with a TTL stops the session on both replicas at once, and an unlock through B frees it on both', async () => {
    const lee = await person('lee', ['access']);
    const session = await signIn(a, lee);
    const onB = session.on(b);
    await adminA.admin.lockUser({ name: 'lee', durationSeconds: 3600, reason: 'ttl lock' });
    for (const api of [session.api, onB]) {
      await expect(api.user.ping({})).rejects.toMatchObject({
        code: 'LOCKED',
        message: expect.stringMatching(/User "lee" is locked until \d{4}-/),
      });
    }
    // Unlocked through B this time: A accepts at once.
    const adminB = track(await connectAsAdmin(b));
    await adminB.admin.unlockUser({ name: 'lee' });
    expect((await session.api.user.ping({})).serverTimeMs).toBeGreaterThan(0);
    expect((await onB.user.ping({})).serverTimeMs).toBeGreaterThan(0);
  });

  it("a user's roles changed through A: B drops the role from the live session at once; the user deleted through A: B refuses the certificate (also once the name is taken again) and a login", async () => {
    const uma = await person('uma', ['access', 'auditor']);
    const session = await signIn(b, uma);
    expect(session.login.roles).toEqual(['access', 'auditor']);
    expect((await session.api.admin.listAuditEvents({ sinceMs: 0, type: '', limit: 1 })).events).toHaveLength(
      1,
    );

    await adminA.admin.createResources({
      documentsJson: [
        JSON.stringify({
          kind: 'user',
          version: 'v2',
          metadata: { name: 'uma' },
          spec: { roles: ['access'], traits: { logins: ['uma'] } },
        }),
      ],
      force: true,
    });

    const before = await clusterState('uma');
    await expect(session.api.admin.listAuditEvents({ sinceMs: 0, type: '', limit: 1 })).rejects.toMatchObject(
      { code: 'ACCESS_DENIED' },
    );
    expect((await session.api.user.getStatus({})).roles).toEqual(['access']);
    expect(await clusterState('uma')).toBe(before);

    await adminA.admin.deleteResource({ kind: 'user', name: 'uma' });
    const deleted = await clusterState('uma');
    await expect(session.api.user.ping({})).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringMatching(/User "uma" no longer exists/),
    });
    await expect(
      anonymous(b).auth.createAuthenticateChallenge({
        user: 'uma',
        password: uma.password,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      }),
    ).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: 'Invalid user name or password.' });
    // The unknown name's failure is counted (as for any name); nothing else is written.
    const after = JSON.parse(await clusterState('uma')) as { tables: unknown; counts: unknown[] };
    const was = JSON.parse(deleted) as { tables: unknown; counts: unknown[] };
    expect(after.tables).toEqual(was.tables);
    expect(after.counts).toEqual([{ issued: 1, failures: 1 }]);
    expect(was.counts).toEqual([{ issued: 1, failures: 0 }]);
    expect(await rows(`select name from users where name = 'uma'`)).toEqual([]);

    // A new user of the same name, created through A: the old certificate stays refused on B.
    await adminA.admin.createUser({ name: 'uma', roles: ['access', 'auditor'], traits: {} });
    await expect(session.api.user.ping({})).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(session.api.admin.listAuditEvents({ sinceMs: 0, type: '', limit: 1 })).rejects.toMatchObject(
      { code: 'UNAUTHENTICATED' },
    );
  });

  it('the cap changed through A (keyport admin create -f): B reports it in GetClusterInfo and enforces it at the next login', async () => {
    const cai = await person('cai', ['access']);
    const first = await signIn(b, cai);
    expect(first.login.deviceTrustMode).toBe('optional');
    const info = await anonymous(b).auth.getClusterInfo({});
    expect(info.secondFactors).toEqual(['otp']);
    expect(info.deviceTrustMode).toBe('optional');

    const cap = (spec: string[]) =>
      [
        'kind: cluster_auth_preference',
        'version: v2',
        'metadata:',
        '  name: cluster-auth-preference',
        'spec:',
        '  type: local',
        ...spec,
        '',
      ].join('\n');
    const keysOnly = await resourceFile(
      'cap-webauthn.yaml',
      cap([
        '  second_factors: [webauthn]',
        '  webauthn:',
        '    rp_id: localhost',
        '  device_trust:',
        '    mode: "off"',
      ]),
    );
    await adminCliOnA(['create', '-f', keysOnly]);

    const changed = await anonymous(b).auth.getClusterInfo({});
    expect(changed.secondFactors).toEqual(['webauthn']);
    expect(changed.webauthnRpId).toBe('localhost');
    expect(changed.deviceTrustMode).toBe('off');

    // A login through B: its challenge no longer offers OTP, and an OTP code is refused.
    const challenge = await anonymous(b).auth.createAuthenticateChallenge({
      user: 'cai',
      password: cai.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    expect(challenge.totpAllowed).toBe(false);
    expect(challenge.mfaRequired).toBe(true);
    const before = await clusterState('cai');
    const key = generateSessionKey('ecdsa-p256');
    await expect(
      anonymous(b).auth.login({
        mfaResponse: {
          challengeId: challenge.challengeId,
          response: { $case: 'totp', value: { code: totpCode(cai.totpSecret, clock.now()) } },
        },
        sshPublicKey: key.sshPublicKey,
        tlsPublicKey: key.publicKeyPem,
        ttlSeconds: 0,
      }),
    ).rejects.toMatchObject({ code: 'MFA_FAILED', message: /OTP is not an allowed second factor/ });
    // No certificate, the OTP step not spent, no failure counted.
    expect(await clusterState('cai')).toBe(before);

    const otpAgain = await resourceFile(
      'cap-otp.yaml',
      cap(['  second_factors: [otp]', '  device_trust:', '    mode: optional']),
    );
    await adminCliOnA(['create', '-f', otpAgain]);
    expect((await anonymous(b).auth.getClusterInfo({})).secondFactors).toEqual(['otp']);
    const next = await signIn(b, cai);
    expect(next.login.user).toBe('cai');
    expect(next.login.deviceTrustMode).toBe('optional');
  });

  it('a trusted device locked, unlocked and removed through A: B drops it from the live session at once, and its next login is not device-trusted', async () => {
    const dee = await person('dee', ['access']);
    await adminA.devices.addDevice({ osType: 'linux', assetTag: ASSET_TAG });
    const { token } = await adminA.devices.createDeviceEnrollToken({ device: ASSET_TAG, ttlSeconds: 0 });
    const device = await TrustedDevice.open({
      env: { ...process.env, ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    });
    try {
      // Enrolled through A with the admin's token.
      const plain = await signIn(a, dee);
      const begun = await plain.api.devices.beginDeviceEnrollment({
        token,
        currentDevice: false,
        device: await device.enrollmentData(),
      });
      await plain.api.devices.completeDeviceEnrollment({
        challengeId: begun.challengeId,
        response: await device.answer(begun.challenge!),
      });
      const credentialId = (await device.credentialId())!;

      // A device-trusted session through A, used on B.
      const trusted = await signIn(a, dee, device);
      expect(trusted.login.device?.assetTag).toBe(ASSET_TAG);
      const deviceId = trusted.login.device!.deviceId;
      const onB = trusted.on(b);
      expect((await onB.user.getStatus({})).device?.deviceId).toBe(deviceId);
      expect(await onB.devices.getDeviceStatus({ credentialId, assetTag: '' })).toMatchObject({
        state: 'enrolled',
        trustedInSession: true,
      });

      await adminA.devices.lockDevice({ device: ASSET_TAG, reason: 'propagation test' });
      const locked = await clusterState('dee');
      expect((await onB.user.getStatus({})).device).toBeUndefined();
      expect(await onB.devices.getDeviceStatus({ credentialId, assetTag: '' })).toMatchObject({
        state: 'locked',
        trustedInSession: false,
      });
      // A login through B offering the locked device: no device nonce, a certificate without a device.
      const whileLocked = await signIn(b, dee, device);
      expect(whileLocked.login.device).toBeUndefined();
      expect((await whileLocked.api.user.getStatus({})).device).toBeUndefined();
      const untrusted = await rows<{ message: string }>(
        `select message from audit_events where type = 'device.authenticate' and success = 0 order by id desc limit 1`,
      );
      expect(untrusted[0]?.message).toBe(`device ${ASSET_TAG} is locked`);
      // The inventory is as A left it (the login only issued its certificate).
      const state = JSON.parse(await clusterState('dee')) as { tables: unknown[] };
      const was = JSON.parse(locked) as { tables: unknown[] };
      expect(state.tables[STATE_TABLES.indexOf('trusted_devices')]).toEqual(
        was.tables[STATE_TABLES.indexOf('trusted_devices')],
      );

      // Unlocked through A: the same certificate is device-trusted on B again.
      await adminA.devices.unlockDevice({ device: ASSET_TAG });
      expect((await onB.user.getStatus({})).device?.deviceId).toBe(deviceId);

      // Removed through A: gone from B's view of the session and of the inventory at once.
      await adminA.devices.deleteDevice({ device: ASSET_TAG });
      expect((await onB.user.getStatus({})).device).toBeUndefined();
      expect(await onB.devices.getDeviceStatus({ credentialId, assetTag: '' })).toMatchObject({
        state: 'not_registered',
        trustedInSession: false,
      });
      const afterRemoval = await signIn(b, dee, device);
      expect(afterRemoval.login.device).toBeUndefined();
      expect(await rows(`select id from trusted_devices where asset_tag = $1`, [ASSET_TAG])).toEqual([]);
    } finally {
      await device.close().catch(() => {});
    }
  });
});
