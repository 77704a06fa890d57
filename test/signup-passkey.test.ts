// Signing up with a security key registered as a passkey (StartSignup{passwordless}), which the demo and
// the app's end-to-end tests use: the account then signs in without a password, with the key's PIN.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDevices } from '../client/ceremonies/devices';
import { loginPasswordless } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { fileKeyStoreDir } from '../client/keystore';
import { ProfileStore } from '../client/profiles';
import { connectAsAdmin, openClusterDb, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { connectClusterConfig, scriptedKeyPrompts, signUpWithLabKey } from '../lab/connect';
import { startSoftKey } from '../lab/security-key/soft-key';
import { readState } from '../lab/security-key/state';
import { generateSessionKey } from '../client/keystore/session-key';
import type { SoftKey } from '../lab/security-key/soft-key';
import { ChallengeScope, MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import { connectCluster } from '../client/api';
import { KeyportError } from '../proto/errors';

let cluster: LabCluster;
let key: SoftKey;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kp-passkey-'));
  cluster = await startLabCluster({ clusterName: 'passkeys', configYaml: connectClusterConfig() });
  key = await startSoftKey({
    socketPath: join(work, 'key.sock'),
    statePath: join(work, 'key.json'),
    touch: 'auto:20',
    pin: '2468',
  });
});

afterAll(async () => {
  await key?.stop();
  await cluster?.stop();
  await rm(work, { recursive: true, force: true });
});

/** The API without a client certificate (signup is anonymous), trusting the cluster's CA. */
async function anonymousApi(target: LabCluster = cluster) {
  const identity = JSON.parse(await readFile(join(target.dataDir, 'admin-identity.json'), 'utf8'));
  return connectCluster({
    address: parseClusterAddress(target.address),
    caPem: identity.caCertPem,
    caPin: target.caPin,
  });
}

describe('signup with a passkey', () => {
  it('registers the first key as a passkey; the account signs in without a password', async () => {
    const person = await signUpWithLabKey(cluster, {
      user: 'pat',
      roles: ['access'],
      password: 'pat-password-123',
      keySocket: key.socketPath,
      pin: '2468',
      addOtp: true,
    });
    expect(person.totpSecret).toMatch(/^[A-Z2-7]+=*$/);
    const home = join(work, 'home');
    process.env[LAB_SECURITY_KEY_ENV] = key.socketPath;
    try {
      const profiles = new ProfileStore(home);
      const profile = await loginPasswordless({
        profiles,
        address: parseClusterAddress(cluster.address),
        caPin: cluster.caPin,
        keystore: 'file',
        prompts: {
          confirmCaPin: async () => false,
          password: () => Promise.reject(new Error('passwordless asks no password')),
          otpCode: () => Promise.reject(new Error('passwordless asks no OTP code')),
          securityKey: scriptedKeyPrompts('2468'),
        },
      });
      expect(profile).toMatchObject({ user: 'pat', mfaVerified: true });
      const devices = await listDevices(profiles);
      expect(devices.map((d) => [d.name, d.type, d.passkey])).toEqual(
        expect.arrayContaining([
          ['lab key', MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN, true],
          ['otp', MFADeviceType.MFA_DEVICE_TYPE_TOTP, false],
        ]),
      );

      // The session key goes to the keystore while step 1 is in flight; a keystore that cannot take it
      // fails the login before the PIN is asked (no attempt spent) and before Login.
      const broken = join(work, 'broken-home');
      await mkdir(join(broken, 'clusters'), { recursive: true });
      await cp(join(home, 'clusters'), join(broken, 'clusters'), { recursive: true });
      await writeFile(fileKeyStoreDir(broken), 'not a directory');
      const asked: string[] = [];
      const calls: string[] = [];
      const failed = await loginPasswordless({
        profiles: new ProfileStore(broken),
        address: parseClusterAddress(cluster.address),
        caPin: cluster.caPin,
        keystore: 'file',
        onCall: (method) => calls.push(method),
        prompts: {
          confirmCaPin: async () => false,
          password: () => Promise.reject(new Error('passwordless asks no password')),
          otpCode: () => Promise.reject(new Error('passwordless asks no OTP code')),
          securityKey: {
            tap: () => asked.push('tap'),
            pin: async () => (asked.push('pin'), '2468'),
            newPin: async () => (asked.push('newPin'), '2468'),
          },
        },
      }).catch((error: unknown) => error);
      expect(failed).toMatchObject({ code: 'KEYSTORE_IO' });
      expect(asked).toEqual([]);
      expect(calls).toEqual(['auth.createAuthenticateChallenge']);
      expect(await new ProfileStore(broken).getProfile()).toBeUndefined();
    } finally {
      delete process.env[LAB_SECURITY_KEY_ENV];
    }
  });

  it("a passwordless login forgives its user's failed passwords from its address, and only those", async () => {
    const renesKey = await startSoftKey({
      socketPath: join(work, 'rene.sock'),
      statePath: join(work, 'rene.json'),
      touch: 'auto:20',
      pin: '2468',
    });
    try {
      await signUpWithLabKey(cluster, {
        user: 'rene',
        roles: ['access'],
        password: 'rene-password-123',
        keySocket: renesKey.socketPath,
        pin: '2468',
      });
      const api = await anonymousApi();
      for (const user of ['rene', 'rene', 'nobody-else']) {
        const refused = await api.auth
          .createAuthenticateChallenge({
            user,
            password: 'not-the-password',
            scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
          })
          .catch((error: unknown) => error);
        expect(refused).toMatchObject({ code: 'ACCESS_DENIED' });
      }
      api.close();
      const failed = () => {
        const db = openClusterDb(cluster);
        try {
          return db
            .prepare("SELECT name, client_addr FROM login_attempts WHERE state = 'failed' ORDER BY name, id")
            .all() as { name: string; client_addr: string }[];
        } finally {
          db.close();
        }
      };
      const before = failed();
      expect(before.filter((row) => row.name === 'rene')).toHaveLength(2);
      const others = before.filter((row) => row.name !== 'rene');
      expect(others.length).toBeGreaterThan(0);

      process.env[LAB_SECURITY_KEY_ENV] = renesKey.socketPath;
      try {
        const profile = await loginPasswordless({
          profiles: new ProfileStore(join(work, 'rene-home')),
          address: parseClusterAddress(cluster.address),
          caPin: cluster.caPin,
          keystore: 'file',
          prompts: {
            confirmCaPin: async () => false,
            password: () => Promise.reject(new Error('passwordless asks no password')),
            otpCode: () => Promise.reject(new Error('passwordless asks no OTP code')),
            securityKey: scriptedKeyPrompts('2468'),
          },
        });
        expect(profile).toMatchObject({ user: 'rene' });
      } finally {
        delete process.env[LAB_SECURITY_KEY_ENV];
      }
      expect(failed()).toEqual(others);
    } finally {
      await renesKey.stop();
    }
  });

  it('gives certificates to one of 10 passwordless logins racing with one sign counter (a cloned key), audited once', async () => {
    const clonedKey = await startSoftKey({
      socketPath: join(work, 'clone.sock'),
      statePath: join(work, 'clone.json'),
      touch: 'auto',
      pin: '2468',
    });
    try {
      await signUpWithLabKey(cluster, {
        user: 'cleo',
        roles: ['access'],
        password: 'cleo-password-123',
        keySocket: clonedKey.socketPath,
        pin: '2468',
      });
      const passkey = readState(clonedKey.statePath)?.credentials.find((c) => c.rk && c.userName === 'cleo');
      if (!passkey?.userId) throw new Error('no passkey for cleo');
      const audited = () => {
        const db = openClusterDb(cluster);
        try {
          return db
            .prepare(
              "SELECT type, actor, success, message FROM audit_events WHERE type IN ('user.login', 'cert.issued') ORDER BY id",
            )
            .all() as { type: string; actor: string; success: number; message: string }[];
        } finally {
          db.close();
        }
      };
      const before = audited();
      const api = await anonymousApi();
      const session = generateSessionKey('ecdsa-p256');
      // Ten challenges, each answered by the same key with the same counter, as two copies of one key would.
      const challenges = await Promise.all(
        Array.from({ length: 10 }, () =>
          api.auth.createAuthenticateChallenge({
            user: '',
            password: '',
            scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
          }),
        ),
      );
      const settled = await Promise.allSettled(
        challenges.map((challenge) => {
          const options = JSON.parse(challenge.webauthnRequestOptionsJson) as { challenge: string };
          const clientData = Buffer.from(
            JSON.stringify({
              type: 'webauthn.get',
              challenge: options.challenge,
              origin: 'https://localhost',
            }),
          );
          const authData = Buffer.concat([
            createHash('sha256').update('localhost').digest(),
            Buffer.of(0x05), // user present, user verified
            Buffer.from([0, 0, 0x10, 0]), // one counter for all ten
          ]);
          const signature = sign(
            'sha256',
            Buffer.concat([authData, createHash('sha256').update(clientData).digest()]),
            createPrivateKey(passkey.privateKeyPem),
          );
          const assertion = {
            id: passkey.id,
            rawId: passkey.id,
            type: 'public-key',
            clientExtensionResults: {},
            response: {
              clientDataJSON: clientData.toString('base64url'),
              authenticatorData: authData.toString('base64url'),
              signature: signature.toString('base64url'),
              userHandle: passkey.userId,
            },
          };
          return api.auth.login({
            mfaResponse: {
              challengeId: challenge.challengeId,
              response: { $case: 'webauthnJson', value: JSON.stringify(assertion) },
            },
            sshPublicKey: session.sshPublicKey,
            tlsPublicKey: session.publicKeyPem,
            ttlSeconds: 0,
          });
        }),
      );
      api.close();
      expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(1);
      // The others: refused as a key used concurrently, or (once the winner's counter was read) as one
      // whose counter did not increase; never an internal error.
      for (const s of settled.filter((x) => x.status === 'rejected')) {
        expect((s as PromiseRejectedResult).reason).toMatchObject({ code: 'MFA_FAILED' });
      }
      const after = audited().slice(before.length);
      expect(after.filter((e) => e.type === 'cert.issued')).toMatchObject([{ actor: 'cleo', success: 1 }]);
      expect(after.filter((e) => e.type === 'user.login' && e.success === 1)).toMatchObject([
        { actor: 'cleo', message: 'passwordless' },
      ]);
      // A refused passwordless login is audited before its user is known.
      const refusals = after.filter((e) => e.type === 'user.login' && e.success === 0);
      expect(refusals).toHaveLength(9);
      expect(refusals.every((e) => e.actor === 'unknown' && e.message.startsWith('passwordless: '))).toBe(
        true,
      );
    } finally {
      await clonedKey.stop();
    }
  });

  it('refuses a passwordless signup for an OTP device, and leaves the token usable', async () => {
    const admin = await connectAsAdmin(cluster);
    const { signupToken } = await admin.admin.createUser({ name: 'quinn', roles: ['access'], traits: {} });
    admin.close();
    const api = await anonymousApi();
    try {
      const refused = await api.auth
        .startSignup({
          token: signupToken,
          deviceType: MFADeviceType.MFA_DEVICE_TYPE_TOTP,
          passwordless: true,
          deviceCredentialId: '',
        })
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(KeyportError);
      expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'passwordless' } });
      const started = await api.auth.startSignup({
        token: signupToken,
        deviceType: MFADeviceType.MFA_DEVICE_TYPE_TOTP,
        passwordless: false,
        deviceCredentialId: '',
      });
      expect(started.user).toBe('quinn');
    } finally {
      api.close();
    }
  });
});

describe('signup with a passkey where passwordless is off', () => {
  it('refuses with PASSWORDLESS_DISABLED', async () => {
    const strict = await startLabCluster({
      clusterName: 'no-passwordless',
      configYaml: connectClusterConfig().replace('allow_passwordless: true', 'allow_passwordless: false'),
    });
    try {
      const admin = await connectAsAdmin(strict);
      const { signupToken } = await admin.admin.createUser({ name: 'ray', roles: ['access'], traits: {} });
      admin.close();
      const api = await anonymousApi(strict);
      try {
        const refused = await api.auth
          .startSignup({
            token: signupToken,
            deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
            passwordless: true,
            deviceCredentialId: '',
          })
          .catch((error: unknown) => error);
        expect(refused).toMatchObject({ code: 'PASSWORDLESS_DISABLED' });
        // A passwordless login's first step is refused too, and stores no challenge (the statement that
        // counts the address stores it; the refusal removes it again).
        const challenges = () => {
          const db = openClusterDb(strict);
          try {
            return db.prepare('SELECT id FROM challenges').all();
          } finally {
            db.close();
          }
        };
        const before = challenges();
        const step1 = await api.auth
          .createAuthenticateChallenge({
            user: '',
            password: '',
            scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
          })
          .catch((error: unknown) => error);
        expect(step1).toMatchObject({ code: 'PASSWORDLESS_DISABLED' });
        expect(challenges()).toEqual(before);
      } finally {
        api.close();
      }
    } finally {
      await strict.stop();
    }
  });
});
