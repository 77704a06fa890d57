// Everything single use or counted holds across keyport-auth replicas on one PostgreSQL database: each
// race below sends its calls through two replicas at once. One signup token completes one signup, one
// login challenge issues one certificate, one TOTP code signs in once, one device-enroll token enrolls
// once (a real lab swtpm), one proof of possession authenticates one call, parallel wrong passwords get
// exactly the lockout's checks, and the per-address rate limit counts the calls both replicas served.
// Nothing half-written remains.
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { TrustedDevice } from '../client/device-trust/device';
import { generateSessionKey } from '../client/keystore/session-key';
import { ProfileStore } from '../client/profiles';
import { connectTrusted, ensureTrustedCluster } from '../client/session';
import { fromServiceError } from '../proto/errors';
import { ChallengeScope, MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import { UserServiceService } from '../proto/gen/keyport/v1/user';
import type { UserStatus } from '../proto/gen/keyport/v1/user';
import {
  base64url,
  digestOf,
  encodeProof,
  POP_CERTIFICATE_METADATA_KEY,
  POP_METADATA_KEY,
  PopRefused,
} from '../proto/pop';
import { createLabClock } from '../lab/clock';
import { connectAsAdmin, nextTotpCode, signUpUserInProcess } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { startLabPostgres } from '../lab/postgres';
import type { LabPostgres } from '../lab/postgres';
import { createReplicaSet, queryRows } from '../lab/replicas';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const PUBLIC_ADDR = 'auth.single-use.test:3025';
const ASSET_TAG = 'REPLICA0RACE';
let work: string;
let postgres: LabPostgres;
let tpm: LabTpm;
const clock = createLabClock();
/** Two replicas of the cluster the races run on; two more (own database) with a small rate limit. */
let a: LabCluster;
let b: LabCluster;
let limitedA: LabCluster;
let limitedB: LabCluster;
let limitedConn: string;
const opened: ClusterApi[] = [];

const rows = <R extends Record<string, unknown>>(text: string, values: unknown[] = []) =>
  queryRows<R>(postgres.connString, text, values);

/** An unauthenticated client of `replica` (it trusts the cluster by its pin). */
async function anonymous(replica: LabCluster, name: string): Promise<ClusterApi> {
  const home = join(work, 'homes', `${name}-${replica.port}`);
  await mkdir(home, { recursive: true });
  const trusted = await ensureTrustedCluster(new ProfileStore(home), parseClusterAddress(replica.address), {
    caPin: replica.caPin,
    prompt: { confirmCaPin: async () => true },
  });
  const api = connectTrusted(trusted);
  opened.push(api);
  return api;
}

/** A client per replica, for calls spread over both: call i goes to replica i % 2. */
async function bothReplicas(name: string, replicas: [LabCluster, LabCluster] = [a, b]) {
  const apis = [await anonymous(replicas[0], name), await anonymous(replicas[1], name)];
  return (i: number) => apis[i % 2] as ClusterApi;
}

/** The code of each refusal; every refusal is a typed one (no INTERNAL, no transport failure). */
function outcomes(settled: PromiseSettledResult<unknown>[]): string[] {
  return settled.map((s) =>
    s.status === 'fulfilled' ? 'ok' : String((s.reason as { code?: string }).code ?? s.reason),
  );
}
const typed = (code: string) =>
  !['ok', 'INTERNAL', 'UNKNOWN', 'UNAVAILABLE'].includes(code) && /^[A-Z_]+$/.test(code);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-single-use-'));
  [postgres, tpm] = await Promise.all([startLabPostgres(), startLabTpm()]);
  limitedConn = await postgres.createDatabase('limited');
  await Promise.all([mkdir(join(work, 'main')), mkdir(join(work, 'limited'))]);
  const replicas = await createReplicaSet({
    work: join(work, 'main'),
    connString: postgres.connString,
    clusterName: 'single-use',
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
  });
  const limited = await createReplicaSet({
    work: join(work, 'limited'),
    connString: limitedConn,
    clusterName: 'limited',
    publicAddr: 'auth.limited.test:3025',
    extraYaml: 'auth_service:\n  rate_limit:\n    per_address: 20\n    per_user: 6\n    window: 1m\n',
    env: clock.env,
  });
  [a, b, limitedA, limitedB] = await Promise.all([
    replicas.start('a'),
    replicas.start('b'),
    limited.start('a'),
    limited.start('b'),
  ]);
});

afterAll(async () => {
  for (const api of opened) api.close();
  await Promise.all([a?.stop(), b?.stop(), limitedA?.stop(), limitedB?.stop()]);
  await Promise.all([postgres?.stop(), tpm?.stop()]);
  clock.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('single-use things spent through two replicas at once', () => {
  it('completes one signup of 50 sent with one token: one user with a password and one OTP device', async () => {
    const admin = await connectAsAdmin(a);
    const { signupToken: token } = await admin.admin
      .createUser({ name: 'sam', roles: ['access'], traits: {} })
      .finally(() => admin.close());
    const replica = await bothReplicas('sam');
    const started = await replica(0).auth.startSignup({
      token,
      deviceType: MFADeviceType.MFA_DEVICE_TYPE_TOTP,
      passwordless: false,
      deviceCredentialId: '',
    });
    const secret = started.registerChallenge?.totp?.secret ?? '';
    expect(secret).toMatch(/^[A-Z2-7]+$/);
    const code = totpCode(secret, Date.now());
    const settled = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        replica(i).auth.completeSignup({
          token,
          password: 'sam-password-123',
          newDevice: {
            challengeId: started.registerChallenge?.challengeId ?? '',
            deviceName: 'otp',
            response: { $case: 'totp', value: { code } },
          },
        }),
      ),
    );
    const codes = outcomes(settled);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(codes.filter((c) => c !== 'ok').every(typed)).toBe(true);

    expect(
      await rows(`select password_hash is not null as has_password from users where name = 'sam'`),
    ).toEqual([{ has_password: true }]);
    expect(await rows(`select type from mfa_devices where "user" = 'sam'`)).toEqual([{ type: 'totp' }]);
    expect(await rows(`select used from signup_tokens where "user" = 'sam'`)).toEqual([{ used: 1 }]);
    const audits = await rows<{ n: number }>(
      `select count(*)::int as n from audit_events where type = 'user.signup' and success = 1 and actor = 'sam'`,
    );
    expect(audits[0]?.n).toBe(1);
  });

  it('issues one certificate for 50 logins sent with one challenge', async () => {
    const person = await signUpUserInProcess(a, join(work, 'homes', 'lou'), 'lou', ['access']);
    const replica = await bothReplicas('lou');
    const challenge = await replica(1).auth.createAuthenticateChallenge({
      user: 'lou',
      password: person.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    const key = generateSessionKey('ecdsa-p256');
    const code = nextTotpCode(person.totpSecret);
    const settled = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        replica(i).auth.login({
          mfaResponse: { challengeId: challenge.challengeId, response: { $case: 'totp', value: { code } } },
          sshPublicKey: key.sshPublicKey,
          tlsPublicKey: key.publicKeyPem,
          ttlSeconds: 3600,
        }),
      ),
    );
    const codes = outcomes(settled);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(codes.filter((c) => c !== 'ok').every(typed)).toBe(true);
    const issued = await rows<{ n: number }>(
      `select count(*)::int as n from audit_events where type = 'cert.issued' and actor = 'lou'`,
    );
    expect(issued[0]?.n).toBe(1);
  });

  it('accepts a TOTP code once when two logins through different replicas send it together', async () => {
    const person = await signUpUserInProcess(a, join(work, 'homes', 'tia'), 'tia', ['access']);
    const replica = await bothReplicas('tia');
    const challenges = await Promise.all(
      [0, 1].map((i) =>
        replica(i).auth.createAuthenticateChallenge({
          user: 'tia',
          password: person.password,
          scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        }),
      ),
    );
    const key = generateSessionKey('ecdsa-p256');
    const code = nextTotpCode(person.totpSecret);
    const settled = await Promise.allSettled(
      challenges.map((challenge, i) =>
        replica(i).auth.login({
          mfaResponse: { challengeId: challenge.challengeId, response: { $case: 'totp', value: { code } } },
          sshPublicKey: key.sshPublicKey,
          tlsPublicKey: key.publicKeyPem,
          ttlSeconds: 3600,
        }),
      ),
    );
    const codes = outcomes(settled);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
    expect(codes.filter((c) => c !== 'ok')).toEqual(['MFA_FAILED']);
    const issued = await rows<{ n: number }>(
      `select count(*)::int as n from audit_events where type = 'cert.issued' and actor = 'tia'`,
    );
    expect(issued[0]?.n).toBe(1);
  });

  it('enrolls a device once when one enroll token is completed through both replicas at once', async () => {
    const person = await signUpUserInProcess(a, join(work, 'homes', 'dee'), 'dee', ['access']);
    const anon = await anonymous(a, 'dee');
    const challenge = await anon.auth.createAuthenticateChallenge({
      user: 'dee',
      password: person.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    const key = generateSessionKey('ecdsa-p256');
    const session = await anon.auth.login({
      mfaResponse: {
        challengeId: challenge.challengeId,
        response: { $case: 'totp', value: { code: nextTotpCode(person.totpSecret) } },
      },
      sshPublicKey: key.sshPublicKey,
      tlsPublicKey: key.publicKeyPem,
      ttlSeconds: 3600,
    });
    const admin = await connectAsAdmin(a);
    let token: string;
    try {
      await admin.devices.addDevice({ osType: 'linux', assetTag: ASSET_TAG });
      token = (await admin.devices.createDeviceEnrollToken({ device: ASSET_TAG, ttlSeconds: 0 })).token;
    } finally {
      admin.close();
    }
    const { caCertPem: caPem } = JSON.parse(
      await readFile(join(a.dataDir, 'admin-identity.json'), 'utf8'),
    ) as { caCertPem: string };
    const signedIn = [a, b].map((replica) => {
      const api = connectCluster({
        address: parseClusterAddress(replica.address),
        caPem,
        caPin: replica.caPin,
        clientKeyPem: key.privateKeyPem,
        clientCertPem: session.tlsCertificate,
      });
      opened.push(api);
      return api;
    });
    const device = await TrustedDevice.open({
      env: { ...process.env, ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    });
    try {
      // Step 1 through each replica (it only peeks at the token), the TPM answers both, then both
      // completions, which spend the token, race.
      const data = await device.enrollmentData();
      const begun: Awaited<ReturnType<ClusterApi['devices']['beginDeviceEnrollment']>>[] = [];
      for (const api of signedIn) {
        begun.push(await api.devices.beginDeviceEnrollment({ token, currentDevice: false, device: data }));
      }
      const answers: Awaited<ReturnType<TrustedDevice['answer']>>[] = [];
      for (const one of begun) answers.push(await device.answer(one.challenge!));
      const settled = await Promise.allSettled(
        signedIn.map((api, i) =>
          api.devices.completeDeviceEnrollment({ challengeId: begun[i]!.challengeId, response: answers[i] }),
        ),
      );
      const codes = outcomes(settled);
      expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
      expect(codes.filter((c) => c !== 'ok').every(typed)).toBe(true);
    } finally {
      await device.close().catch(() => {});
    }
    const devices = await rows<{ enroll_status: string; owner: string; has_credential: boolean }>(
      `select enroll_status, owner, credential_id is not null as has_credential from trusted_devices where asset_tag = $1`,
      [ASSET_TAG],
    );
    expect(devices).toEqual([{ enroll_status: 'enrolled', owner: 'dee', has_credential: true }]);
    expect(await rows(`select used from device_enroll_tokens`)).toEqual([{ used: 1 }]);
    const enrolled = await rows<{ n: number }>(
      `select count(*)::int as n from audit_events where type = 'device.enroll' and success = 1`,
    );
    expect(enrolled[0]?.n).toBe(1);
  });
});

describe('proof-of-possession nonces through two replicas at once', () => {
  it('accepts one of 50 calls carrying one proof, sent over both replicas; the other 49 are replays', async () => {
    const person = await signUpUserInProcess(a, join(work, 'homes', 'pia'), 'pia', ['access']);
    const anon = await anonymous(b, 'pia');
    const challenge = await anon.auth.createAuthenticateChallenge({
      user: 'pia',
      password: person.password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    const key = generateSessionKey('ecdsa-p256');
    const session = await anon.auth.login({
      mfaResponse: {
        challengeId: challenge.challengeId,
        response: { $case: 'totp', value: { code: nextTotpCode(person.totpSecret) } },
      },
      sshPublicKey: key.sshPublicKey,
      tlsPublicKey: key.publicKeyPem,
      ttlSeconds: 3600,
    });
    const certificateDer = new X509Certificate(session.tlsCertificate).raw;
    const nonce = base64url(randomBytes(16));
    const getStatus = UserServiceService.getStatus;
    const request = getStatus.requestSerialize({});
    const proof = await encodeProof(
      { m: getStatus.path, h: digestOf(request), t: Date.now(), n: nonce, c: digestOf(certificateDer) },
      async (data) => sign('sha256', data, createPrivateKey(key.privateKeyPem)),
    );
    const { caCertPem: caPem } = JSON.parse(
      await readFile(join(a.dataDir, 'admin-identity.json'), 'utf8'),
    ) as { caCertPem: string };
    // No client certificate on either channel: the certificate and the proof travel in the metadata.
    const channels = [a, b].map(
      (replica) => new Client(replica.address, credentials.createSsl(Buffer.from(caPem))),
    );
    try {
      const metadata = new Metadata();
      metadata.set(POP_CERTIFICATE_METADATA_KEY, certificateDer);
      metadata.set(POP_METADATA_KEY, proof);
      const settled = await Promise.allSettled(
        Array.from(
          { length: 50 },
          (_, i) =>
            new Promise<UserStatus>((resolve, reject) =>
              channels[i % 2]!.makeUnaryRequest(
                getStatus.path,
                (bytes: Buffer) => bytes,
                getStatus.responseDeserialize,
                request,
                metadata,
                { deadline: Date.now() + 30_000 },
                (error: ServiceError | null, status?: UserStatus) =>
                  error ? reject(fromServiceError(error)) : resolve(status!),
              ),
            ),
        ),
      );
      const codes = outcomes(settled);
      expect(codes.filter((c) => c === 'ok')).toHaveLength(1);
      expect(codes.filter((c) => c !== 'ok')).toEqual(Array.from({ length: 49 }, () => 'UNAUTHENTICATED'));
      const messages = settled.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).message] : []));
      expect(new Set(messages)).toEqual(new Set([new PopRefused('replayed').message]));
      expect(
        (settled.find((s) => s.status === 'fulfilled') as PromiseFulfilledResult<UserStatus>).value.user,
      ).toBe('pia');
    } finally {
      for (const channel of channels) channel.close();
    }
    expect(await rows(`select nonce from pop_nonces where nonce = $1`, [nonce])).toEqual([{ nonce }]);
  });
});

describe('counters shared by both replicas', () => {
  it('checks exactly max_attempts of 20 parallel wrong passwords sent through both, and locks the rest out', async () => {
    const person = await signUpUserInProcess(a, join(work, 'homes', 'pat'), 'pat', ['access']);
    const replica = await bothReplicas('pat');
    const guesses = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        replica(i).auth.createAuthenticateChallenge({
          user: 'pat',
          password: `wrong-guess-number-${i}`,
          scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        }),
      ),
    );
    const codes = outcomes(guesses);
    expect(codes.every((c) => ['ACCESS_DENIED', 'LOCKED', 'RESOURCE_EXHAUSTED'].includes(c))).toBe(true);
    const checked = await rows<{ n: number }>(
      `select count(*)::int as n from audit_events where actor = 'pat' and message = 'wrong password'`,
    );
    expect(checked[0]?.n).toBe(5);
    expect(codes.filter((c) => c === 'ACCESS_DENIED')).toHaveLength(4);
    expect(codes.filter((c) => c !== 'ACCESS_DENIED')).toHaveLength(16);
    for (const i of [0, 1]) {
      await expect(
        replica(i).auth.createAuthenticateChallenge({
          user: 'pat',
          password: person.password,
          scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        }),
      ).rejects.toMatchObject({ code: 'LOCKED' });
    }
  });

  it('serves per_address unauthenticated calls in all from one address, whichever replica answers', async () => {
    const replica = await bothReplicas('flood', [limitedA, limitedB]);
    // Both replicas read the lab clock: the whole flood falls in one fresh window.
    clock.advance(60_000 - (clock.now() % 60_000) + 500);
    const settled = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        replica(i).auth.startSignup({
          token: `bogus-${i}`,
          deviceType: 0,
          passwordless: false,
          deviceCredentialId: '',
        }),
      ),
    );
    const codes = outcomes(settled);
    expect(codes.filter((c) => c === 'RESOURCE_EXHAUSTED')).toHaveLength(40);
    expect(codes.filter((c) => c !== 'RESOURCE_EXHAUSTED').every(typed)).toBe(true);
    // The next window serves again, on either replica.
    clock.advance(60_000);
    for (const i of [0, 1]) {
      await expect(
        replica(i).auth.startSignup({
          token: 'bogus-next',
          deviceType: 0,
          passwordless: false,
          deviceCredentialId: '',
        }),
      ).rejects.not.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    }
    const served = await queryRows<{ n: number }>(
      limitedConn,
      `select count(*)::int as n from audit_events where type = 'rate.limited'`,
    );
    expect(served[0]?.n).toBeGreaterThanOrEqual(1);
  });
});
