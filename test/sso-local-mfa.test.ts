// `require_local_mfa: true` on an oidc connector (Keyport's field): after the IdP's login, the redemption
// also needs Keyport's own security-key check, by a key registered to that person. Against the lab IdP, a real
// keyport-auth (WebAuthn only, device trust required), swtpm and the lab's soft keys: a person with no key is
// sent to register their first (from a trusted device only), a person with a key touches it, and an attacker
// who controls the IdP but lacks the key gets no session, each refusal audited with connector and subject.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerChallenge, registerKey } from '../client/ceremonies/mfa';
import { TrustedDevice } from '../client/device-trust/device';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { webauthnOrigin } from '../client/session';
import { openKeys } from '../client/webauthn';
import type { MFAAuthenticateChallenge } from '../proto/gen/keyport/v1/mfa';
import { openClusterDb, runAdmin } from '../lab/cluster';
import { labSoftKey, startSsoLab, ssoCliLogin, WEBAUTHN_DEVICE_TRUST_REQUIRED } from '../lab/oidc/sso-lab';
import type { SsoLab } from '../lab/oidc/sso-lab';
import { codeAfterIdp, newSessionKey, redeemSso, ssoChallenge, startSso } from '../lab/oidc/sso-login';
import type { StartedSso } from '../lab/oidc/sso-login';
import type { SoftKey } from '../lab/security-key/soft-key';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const ASSET_TAG = 'SSO-LMFA-1';
let lab: SsoLab;
let tpm: LabTpm;
let key: SoftKey;
let touches = 0;
let origin = '';

/** Through the IdP's login and the callback: the one-time code. */
const codeFor = (started: StartedSso, user = 'alice') => codeAfterIdp(lab, started, user);

/** What a refused login must leave as it was: MFA devices, trusted devices, certificates issued. */
function stored() {
  const db = openClusterDb(lab.cluster);
  try {
    return {
      keys: db.prepare('SELECT user, name FROM mfa_devices ORDER BY id').all(),
      devices: db.prepare('SELECT id, enroll_status, owner FROM trusted_devices ORDER BY id').all(),
      certificates: db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'cert.issued'").get(),
    };
  } finally {
    db.close();
  }
}

function expectAudited(step: 'mfa' | 'redeem', message: RegExp) {
  const row = lab.lastAudit('sso.login');
  expect(row).toMatchObject({ success: 0, actor: 'alice@keyport.lab' });
  expect(row.message).toMatch(message);
  expect(row.fields).toMatchObject({ step, connector: 'lab', idp_subject: 'alice' });
}

const keyPrompts = {
  otpCode: () => Promise.reject(new Error('no OTP here')),
  securityKey: { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} },
};

/** alice's key answering `challenge`, in this process. */
function aliceKey(challenge: MFAAuthenticateChallenge) {
  return answerChallenge(challenge, {
    origin,
    preference: 'key',
    keys: openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } }),
    prompts: keyPrompts,
  });
}

/** Runs `work` with the lab key plugged in for this process (registerKey opens the keys itself). */
async function withProcessKey<T>(work: () => Promise<T>): Promise<T> {
  process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
  try {
    return await work();
  } finally {
    delete process.env.KEYPORT_LAB_SECURITY_KEY;
  }
}

beforeAll(async () => {
  tpm = await startLabTpm();
  lab = await startSsoLab({
    clusterName: 'sso-lmfa',
    publicAddr: 'localhost:0',
    authentication: WEBAUTHN_DEVICE_TRUST_REQUIRED,
    connectorExtra: ['  require_local_mfa: true'],
  });
  Object.assign(process.env, lab.clock.env);
  key = await labSoftKey(lab, 'key');
  key.events.on('presence', (event: { outcome: string }) => {
    if (event.outcome === 'approve') touches += 1;
  });
  const added = await runAdmin(lab.cluster, ['devices', 'add', '--os', 'linux', '--asset-tag', ASSET_TAG]);
  expect(added.code, added.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const name of Object.keys(lab?.clock.env ?? {})) delete process.env[name];
  await key?.stop();
  await lab?.stop();
  await tpm?.stop();
});

describe('require_local_mfa: a person with no security key yet', () => {
  it('from an untrusted device: sent to register a first key, which needs a trusted device; refused before any touch', async () => {
    const before = stored();
    const touched = touches;
    const home = await mkdtemp(join(lab.work, 'untrusted-'));
    const result = await ssoCliLogin(lab, {
      home,
      user: 'alice',
      env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('A trusted device is required for your first MFA device');
    expect(result.tab?.text).toContain('Sign-in to sso-lmfa failed');
    expect(touches).toBe(touched);
    expect(stored()).toEqual(before);
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    expectAudited('mfa', /^first security key: A trusted device is required/);
  });

  it('from a trusted device (auto-enrolled in the same login): the first key is registered inside the sign-in', async () => {
    const home = await mkdtemp(join(lab.work, 'trusted-'));
    const touched = touches;
    const result = await ssoCliLogin(lab, {
      home,
      user: 'alice',
      env: { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG, KEYPORT_LAB_SECURITY_KEY: key.socketPath },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('you have none registered yet: tap a new one to register it');
    expect(touches - touched).toBe(1);
    const profiles = new ProfileStore(home);
    const profile = await profiles.getProfile();
    expect(profile?.device).toMatchObject({ assetTag: ASSET_TAG });
    origin = webauthnOrigin((await profiles.getTrustedCluster(parseClusterAddress(profile!.address)))!);
    expect(stored().keys).toEqual([{ user: 'alice@keyport.lab', name: 'security-key' }]);
    const added = lab.lastAudit('mfa.add');
    expect(added).toMatchObject({ success: 1, actor: 'alice@keyport.lab' });
    expect(added.fields).toMatchObject({ first_device: true, connector: 'lab', idp_subject: 'alice' });
  });

  it("with a device that is not trusted for them (alice's, offered by bob): the first key is refused at redemption, nothing stored", async () => {
    const device = await TrustedDevice.open({ env: { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG } });
    try {
      const started = await startSso(lab.api, 'lab', undefined, {
        credentialId: (await device.credentialId())!,
      });
      const code = await codeFor(started, 'bob');
      const challenge = await ssoChallenge(lab.api, started, code);
      expect(challenge.authenticate).toBeUndefined();
      const registration = await withProcessKey(() =>
        registerKey(challenge.register!.webauthnCreationOptionsJson, { origin, prompts: keyPrompts }),
      );
      const answer = await device.answer(started.started.deviceChallenge!);
      const before = stored();
      await expect(
        redeemSso(lab.api, started, code, undefined, answer, {
          newDevice: {
            challengeId: challenge.register!.challengeId,
            deviceName: '',
            response: { $case: 'webauthnJson', value: registration },
          },
        }),
      ).rejects.toMatchObject({ code: 'DEVICE_TRUST_REQUIRED' });
      expect(stored()).toEqual(before);
      const refused = lab.lastAudit('sso.login');
      expect(refused.message).toMatch(/^first security key: A trusted device is required/);
      expect(refused.fields).toMatchObject({ step: 'redeem', connector: 'lab', idp_subject: 'bob' });
      expect(lab.lastAudit('mfa.add')).toMatchObject({ success: 0, actor: 'bob@keyport.lab' });
    } finally {
      await device.close();
    }
  });
});

describe('require_local_mfa: a person with a key', () => {
  it('signs in with one touch of it (from any device); the session is MFA-verified', async () => {
    const home = await mkdtemp(join(lab.work, 'with-key-'));
    const touched = touches;
    const result = await ssoCliLogin(lab, {
      home,
      user: 'alice',
      env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(touches - touched).toBe(1);
    expect(lab.lastAudit('cert.issued').fields).toMatchObject({ mfa_verified: true, connector: 'lab' });
  });

  it('an attacker who controls the IdP but lacks the key: no certificate without the key, whatever they mint', async () => {
    // The IdP signs the attacker in as alice, with any groups they like.
    lab.idp.setClaims('alice', { groups: ['admins', 'team-ops'] });
    try {
      const attacker = await startSso(lab.api, 'lab');
      const code = await codeFor(attacker);
      const before = stored();
      // No answer at all.
      await expect(redeemSso(lab.api, attacker, code)).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
      expect(stored()).toEqual(before);
      expectAudited('redeem', /^security key: The connector "lab" requires your security key/);

      // A registration instead of alice's key: the challenge offered is her keys', never a first key's.
      const next = await startSso(lab.api, 'lab');
      const nextCode = await codeFor(next);
      const challenge = await ssoChallenge(lab.api, next, nextCode);
      expect(challenge.register).toBeUndefined();
      expect(challenge.authenticate?.webauthnRequestOptionsJson).toContain('allowCredentials');
      await expect(
        redeemSso(lab.api, next, nextCode, undefined, undefined, {
          newDevice: {
            challengeId: challenge.authenticate!.challengeId,
            deviceName: 'attacker-key',
            response: { $case: 'webauthnJson', value: '{}' },
          },
        }),
      ).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
      expect(stored()).toEqual(before);
      expectAudited('redeem', /^security key: This challenge was issued for another purpose/);
    } finally {
      lab.idp.setClaims('alice', { groups: ['admins', 'team-platform'] });
    }
  });

  it("alice's answer is good for her own sign-in only: not for another request, nor twice", async () => {
    const hers = await startSso(lab.api, 'lab');
    const herCode = await codeFor(hers);
    const herChallenge = (await ssoChallenge(lab.api, hers, herCode)).authenticate!;
    const herAnswer = await aliceKey(herChallenge);

    const attacker = await startSso(lab.api, 'lab');
    const code = await codeFor(attacker);
    await ssoChallenge(lab.api, attacker, code);
    const before = stored();
    // Her answer, with her challenge id, on the attacker's request: bound to her request.
    await expect(
      redeemSso(lab.api, attacker, code, undefined, undefined, { mfaResponse: herAnswer }),
    ).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringContaining('another sign-in') });
    expect(stored()).toEqual(before);
    expectAudited('redeem', /^security key: This security-key challenge was issued for another sign-in/);
    // The challenge was spent by that attempt: her own redemption with it is refused too (single use).
    await expect(
      redeemSso(lab.api, hers, herCode, undefined, undefined, { mfaResponse: herAnswer }),
    ).rejects.toMatchObject({ code: 'EXPIRED' });
    expect(stored()).toEqual(before);
  });

  it('CreateSSOChallenge needs the request key: a client with only the code is refused, and the code stays good', async () => {
    const started = await startSso(lab.api, 'lab');
    const code = await codeFor(started);
    await expect(ssoChallenge(lab.api, started, code, newSessionKey().privateKey)).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
    });
    expectAudited('mfa', /^security-key check asked without the request key$/);
    const challenge = (await ssoChallenge(lab.api, started, code)).authenticate!;
    const login = await redeemSso(lab.api, started, code, undefined, undefined, {
      mfaResponse: await aliceKey(challenge),
    });
    expect(login).toMatchObject({ user: 'alice@keyport.lab', mfaVerified: true });
  });
});
