// SSO users register security keys with Keyport (`keyport mfa add` after an SSO login), so per-session MFA
// and MFA for admin actions work for them: a real keyport-auth where WebAuthn is the only second factor and
// device trust is required (the seed's recommended cluster), the lab IdP, swtpm and the lab's soft keys.
// An SSO user has no MFA device at first: their first key needs no existing-device check, but a session on a
// trusted device; later keys need an existing one, as for local users.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerChallenge, registerKey } from '../client/ceremonies/mfa';
import { parseClusterAddress } from '../client/cluster-trust';
import { ProfileStore } from '../client/profiles';
import { connectAsProfile, webauthnOrigin } from '../client/session';
import type { ClusterApi } from '../client/api';
import { openKeys } from '../client/webauthn';
import { ChallengeScope, MFADeviceType } from '../proto/gen/keyport/v1/mfa';
import { openClusterDb, runAdmin, runKeyport } from '../lab/cluster';
import type { CliResult } from '../lab/cluster';
import { labSoftKey, startSsoLab, ssoCliLogin, WEBAUTHN_DEVICE_TRUST_REQUIRED } from '../lab/oidc/sso-lab';
import type { SsoLab } from '../lab/oidc/sso-lab';
import type { SoftKey } from '../lab/security-key/soft-key';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const ASSET_TAG = 'SSO-MFA-1';
let lab: SsoLab;
let tpm: LabTpm;
let key: SoftKey;
let spare: SoftKey;
let touches = 0;
let untrustedHome: string;
let trustedHome: string;

const securityKeyPrompts = { tap: () => {}, pin: async () => '', newPin: async () => '', notice: () => {} };

function keyport(home: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runKeyport(args, {
    home,
    env: { ...lab.clock.env, KEYPORT_LAB_SECURITY_KEY: key.socketPath, ...env },
    timeoutMs: 60_000,
  });
}

function mfaDevices(): unknown[] {
  const db = openClusterDb(lab.cluster);
  try {
    return db
      .prepare("SELECT name, type FROM mfa_devices WHERE user = 'alice@keyport.lab' ORDER BY name")
      .all();
  } finally {
    db.close();
  }
}

async function profileApi(home: string): Promise<{ api: ClusterApi; origin: string }> {
  const profiles = new ProfileStore(home);
  const profile = (await profiles.getProfile())!;
  const trusted = (await profiles.getTrustedCluster(parseClusterAddress(profile.address)))!;
  return { api: await connectAsProfile(profiles, profile), origin: webauthnOrigin(trusted) };
}

const roleYaml = (name: string) =>
  `kind: role\nversion: v7\nmetadata:\n  name: ${name}\nspec:\n  allow:\n    logins: [${name}]\n`;

beforeAll(async () => {
  tpm = await startLabTpm();
  lab = await startSsoLab({
    clusterName: 'sso-mfa',
    publicAddr: 'localhost:0',
    authentication: WEBAUTHN_DEVICE_TRUST_REQUIRED,
  });
  // The lab clock for this process's client too (a proof of possession's time is the service's).
  Object.assign(process.env, lab.clock.env);
  key = await labSoftKey(lab, 'key');
  spare = await labSoftKey(lab, 'spare');
  key.events.on('presence', (event: { outcome: string }) => {
    if (event.outcome === 'approve') touches += 1;
  });
  const added = await runAdmin(lab.cluster, ['devices', 'add', '--os', 'linux', '--asset-tag', ASSET_TAG]);
  expect(added.code, added.stderr).toBe(0);
  untrustedHome = await mkdtemp(join(lab.work, 'untrusted-'));
  trustedHome = await mkdtemp(join(lab.work, 'trusted-'));
}, 120_000);

afterAll(async () => {
  for (const name of Object.keys(lab?.clock.env ?? {})) delete process.env[name];
  await key?.stop();
  await spare?.stop();
  await lab?.stop();
  await tpm?.stop();
});

describe('an SSO user and their security keys (device trust required)', () => {
  it('signed in from an untrusted device: the login succeeds with no device; a first key is refused (DEVICE_TRUST_REQUIRED), audited with connector and subject', async () => {
    const login = await ssoCliLogin(lab, { home: untrustedHome, user: 'alice' });
    expect(login.code, login.stderr).toBe(0);
    expect((await new ProfileStore(untrustedHome).getProfile())?.device).toBeUndefined();
    const before = touches;
    const added = await keyport(untrustedHome, ['mfa', 'add', '--name', 'alice-key']);
    expect(added.code).not.toBe(0);
    expect(added.stderr).toContain('A trusted device is required for your first MFA device');
    expect(touches).toBe(before);
    expect(mfaDevices()).toEqual([]);
    const refused = lab.lastAudit('mfa.add');
    expect(refused).toMatchObject({ actor: 'alice@keyport.lab', success: 0 });
    expect(refused.fields).toMatchObject({ connector: 'lab', idp_subject: 'alice', first_device: true });
  });

  it('signed in on a trusted device (auto-enrolled by the SSO login): the first key needs no existing-device check', async () => {
    const login = await ssoCliLogin(lab, {
      home: trustedHome,
      user: 'alice',
      env: { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    });
    expect(login.code, login.stderr).toBe(0);
    expect((await new ProfileStore(trustedHome).getProfile())?.device).toMatchObject({ assetTag: ASSET_TAG });

    // A registration started now, while alice has no device (so without an MFA check), is void once she has one.
    const { api } = await profileApi(trustedHome);
    const nothingToProve = await api.user.createAuthenticateChallenge({
      scope: ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES,
      adminActions: [],
    });
    // alice has no device to prove: the server says so (a cluster that requires MFA at login notwithstanding).
    expect(nothingToProve.mfaRequired).toBe(false);
    const stale = await api.user.createRegisterChallenge({
      existingMfaResponse: { challengeId: nothingToProve.challengeId, response: undefined },
      deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
      passwordless: false,
    });

    const before = touches;
    const added = await keyport(trustedHome, ['mfa', 'add', '--name', 'alice-key']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain('MFA device "alice-key" added.');
    // One touch: the new key's registration; no existing device was asked.
    expect(touches - before).toBe(1);
    expect(mfaDevices()).toEqual([{ name: 'alice-key', type: 'webauthn' }]);
    expect(lab.lastAudit('mfa.add')).toMatchObject({ success: 1, actor: 'alice@keyport.lab' });

    const { origin } = await profileApi(trustedHome);
    const registration = await withProcessKey(spare, () =>
      registerKey(stale.webauthnCreationOptionsJson, { origin, prompts: prompts() }),
    );
    await expect(
      api.user.addMfaDevice({
        newDevice: {
          challengeId: stale.challengeId,
          deviceName: 'attacker-key',
          response: { $case: 'webauthnJson', value: registration },
        },
      }),
    ).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
    expect(mfaDevices()).toEqual([{ name: 'alice-key', type: 'webauthn' }]);
    expect(lab.lastAudit('mfa.add').fields).toMatchObject({ device: 'attacker-key', connector: 'lab' });
    api.close();
  });

  it('a later key needs an existing one (MANAGE_DEVICES), as for local users', async () => {
    const { api, origin } = await profileApi(trustedHome);
    try {
      await expect(
        api.user.createRegisterChallenge({
          existingMfaResponse: undefined,
          deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
          passwordless: false,
        }),
      ).rejects.toMatchObject({ code: 'MFA_REQUIRED' });
      const challenge = await api.user.createAuthenticateChallenge({
        scope: ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES,
        adminActions: [],
      });
      expect(challenge.mfaRequired).toBe(true);
      const existing = await answerChallenge(challenge, {
        origin,
        preference: 'key',
        keys: openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } }),
        prompts: prompts(),
      });
      const register = await api.user.createRegisterChallenge({
        existingMfaResponse: existing,
        deviceType: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
        passwordless: false,
      });
      const registration = await withProcessKey(spare, () =>
        registerKey(register.webauthnCreationOptionsJson, { origin, prompts: prompts() }),
      );
      await api.user.addMfaDevice({
        newDevice: {
          challengeId: register.challengeId,
          deviceName: 'alice-spare',
          response: { $case: 'webauthnJson', value: registration },
        },
      });
      expect(mfaDevices()).toEqual([
        { name: 'alice-key', type: 'webauthn' },
        { name: 'alice-spare', type: 'webauthn' },
      ]);
    } finally {
      api.close();
    }
  });

  it('MFA for admin actions works for the SSO admin with their key (a touch)', async () => {
    const before = touches;
    const path = join(lab.work, 'sso-admin-role.yaml');
    await writeFile(path, roleYaml('sso-made'));
    const created = await keyport(trustedHome, ['admin', 'create', '-f', path]);
    expect(created.code, created.stderr).toBe(0);
    expect(touches - before).toBeGreaterThanOrEqual(1);
    expect(lab.lastAudit('resource.create')).toMatchObject({ actor: 'alice@keyport.lab', success: 1 });
  });
});

function prompts() {
  return { otpCode: () => Promise.reject(new Error('no OTP here')), securityKey: securityKeyPrompts };
}

/** Runs `work` with only `softKey` plugged in for this process (registerKey opens the keys itself). */
async function withProcessKey<T>(softKey: SoftKey, work: () => Promise<T>): Promise<T> {
  const previous = process.env.KEYPORT_LAB_SECURITY_KEY;
  process.env.KEYPORT_LAB_SECURITY_KEY = softKey.socketPath;
  try {
    return await work();
  } finally {
    if (previous === undefined) delete process.env.KEYPORT_LAB_SECURITY_KEY;
    else process.env.KEYPORT_LAB_SECURITY_KEY = previous;
  }
}
