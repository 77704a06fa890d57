// Limits that hold against a determined client: session length, parallel guessing, reused names,
// revoked roles. Through a real keyport-auth, with the client core in-process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { connectAsProfile, connectTrusted, ensureTrustedCluster } from '../client/session';
import { connectAsAdmin, nextTotpCode, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';

let cluster: LabCluster;
let homes: string;

beforeAll(async () => {
  cluster = await startLabCluster({ clusterName: 'hardening' });
  homes = await mkdtemp(join(tmpdir(), 'keyport-hardening-'));
});

afterAll(async () => {
  await cluster?.stop();
  await rm(homes, { recursive: true, force: true });
});

async function login(person: SignedUpUser, ttlSeconds?: number) {
  const profiles = new ProfileStore(join(homes, person.user));
  const profile = await loginWithPassword({
    profiles,
    address: parseClusterAddress(cluster.address),
    user: person.user,
    caPin: cluster.caPin,
    ttlSeconds,
    keystore: 'file',
    prompts: {
      confirmCaPin: async () => true,
      password: async () => person.password,
      otpCode: async () => nextTotpCode(person.totpSecret),
    },
  });
  return { profile, api: await connectAsProfile(profiles, profile) };
}

async function anonymousApi(name: string) {
  const profiles = new ProfileStore(join(homes, `${name}-anon`));
  const trusted = await ensureTrustedCluster(profiles, parseClusterAddress(cluster.address), {
    caPin: cluster.caPin,
    prompt: { confirmCaPin: async () => true },
  });
  return connectTrusted(trusted);
}

describe('session length', () => {
  it('caps a requested TTL at 12 h when no role sets max_session_ttl', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'tess'), 'tess', ['access']);
    const { profile, api } = await login(person, 48 * 3600);
    api.close();
    expect(profile.expiresMs - Date.now()).toBeLessThanOrEqual(12 * 3600 * 1000);
    expect(profile.expiresMs - Date.now()).toBeGreaterThan(12 * 3600 * 1000 - 60_000);
  });

  it('refuses an absurd TTL without spending the challenge or the OTP step', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'otto'), 'otto', ['access']);
    const api = await anonymousApi('otto');
    try {
      const challenge = await api.auth.createAuthenticateChallenge({
        user: 'otto',
        password: person.password,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      });
      const key = (await import('../client/keystore')).generateSessionKey('ecdsa-p256');
      const code = nextTotpCode(person.totpSecret);
      const request = (ttlSeconds: number) => ({
        mfaResponse: {
          challengeId: challenge.challengeId,
          response: { $case: 'totp' as const, value: { code } },
        },
        sshPublicKey: key.sshPublicKey,
        tlsPublicKey: key.publicKeyPem,
        ttlSeconds,
      });
      await expect(api.auth.login(request(1e13))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        fields: { fieldPath: 'ttl_seconds' },
      });
      const issued = await api.auth.login(request(3600));
      expect(issued.user).toBe('otto');
    } finally {
      api.close();
    }
  });
});

describe('lockout', () => {
  it('lets ten right passwords sent at once all through, and locks nobody out', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'dana'), 'dana', ['access']);
    const api = await anonymousApi('dana');
    try {
      const answers = await Promise.allSettled(
        Array.from({ length: 10 }, () =>
          api.auth.createAuthenticateChallenge({
            user: 'dana',
            password: person.password,
            scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
          }),
        ),
      );
      expect(
        answers.map((a) => (a.status === 'fulfilled' ? 'ok' : (a.reason as { code: string }).code)),
      ).toEqual(Array.from({ length: 10 }, () => 'ok'));
    } finally {
      api.close();
    }
    const { api: signedIn } = await login(person);
    expect((await signedIn.user.getStatus({})).user).toBe('dana');
    signedIn.close();
  });

  it('does not count a code replayed right after a good login (a double submit) toward a lockout', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'remy'), 'remy', ['access']);
    const api = await anonymousApi('remy');
    const key = (await import('../client/keystore')).generateSessionKey('ecdsa-p256');
    const code = nextTotpCode(person.totpSecret);
    const loginWith = async (otp: string) => {
      const challenge = await api.auth.createAuthenticateChallenge({
        user: 'remy',
        password: person.password,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      });
      return api.auth.login({
        mfaResponse: {
          challengeId: challenge.challengeId,
          response: { $case: 'totp', value: { code: otp } },
        },
        sshPublicKey: key.sshPublicKey,
        tlsPublicKey: key.publicKeyPem,
        ttlSeconds: 3600,
      });
    };
    try {
      expect((await loginWith(code)).user).toBe('remy');
      for (let replay = 0; replay < 7; replay++) {
        await expect(loginWith(code)).rejects.toMatchObject({
          code: 'MFA_FAILED',
          message: expect.stringContaining('already used'),
        });
      }
    } finally {
      api.close();
    }
    const admin = await connectAsAdmin(cluster);
    const shown = await admin.admin.getResource({ kind: 'user', name: 'remy' });
    admin.close();
    expect(JSON.parse(shown.json).status.locked_out).toBeUndefined();
  });

  it('counts password guesses sent in parallel, so they cannot outrun the limit', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'pat'), 'pat', ['access']);
    const api = await anonymousApi('pat');
    try {
      const guesses = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          api.auth.createAuthenticateChallenge({
            user: 'pat',
            password: `wrong-guess-number-${i}`,
            scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
          }),
        ),
      );
      expect(guesses.every((g) => g.status === 'rejected')).toBe(true);
      await expect(
        api.auth.createAuthenticateChallenge({
          user: 'pat',
          password: person.password,
          scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        }),
      ).rejects.toMatchObject({ code: 'LOCKED' });
      const admin = await connectAsAdmin(cluster);
      const { events } = await admin.admin.listAuditEvents({ sinceMs: 0, type: 'user.login', limit: 1000 });
      admin.close();
      // Exactly the limit's worth of guesses were checked; the others waited, then heard the lockout.
      const checked = events.filter((e) => e.actor === 'pat' && e.message === 'wrong password');
      expect(checked).toHaveLength(5);
      const codes = guesses.map((g) =>
        g.status === 'rejected' ? (g.reason as { code: string }).code : 'ok',
      );
      expect(codes.filter((c) => c === 'ACCESS_DENIED')).toHaveLength(4);
      expect(codes.filter((c) => c === 'LOCKED')).toHaveLength(16);
    } finally {
      api.close();
    }
  });
});

describe('certificates after admin changes', () => {
  it('does not revive a deleted user’s certificate when the name is reused', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'rita'), 'rita', ['editor']);
    const { api } = await login(person);
    try {
      expect((await api.user.getStatus({})).user).toBe('rita');
      const admin = await connectAsAdmin(cluster);
      await admin.admin.deleteResource({ kind: 'user', name: 'rita' });
      // Certificates carry whole seconds: the new user is created in a later second than the old login.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await admin.admin.createUser({ name: 'rita', roles: ['access'], traits: {} });
      admin.close();
      await expect(api.admin.getClusterStatus({})).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      api.close();
    }
  });

  it('stops honouring a role taken away from the user, without a new login', async () => {
    const person = await signUpUserInProcess(cluster, join(homes, 'sid'), 'sid', ['editor', 'access']);
    const { api } = await login(person);
    try {
      expect((await api.admin.getClusterStatus({})).clusterName).toBe('hardening');
      const admin = await connectAsAdmin(cluster);
      await admin.admin.createResources({
        documentsJson: [
          JSON.stringify({
            kind: 'user',
            version: 'v2',
            metadata: { name: 'sid' },
            spec: { roles: ['access'] },
          }),
        ],
        force: true,
      });
      admin.close();
      await expect(api.admin.getClusterStatus({})).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
      expect((await api.user.getStatus({})).roles).toEqual(['access']);
    } finally {
      api.close();
    }
  });
});
