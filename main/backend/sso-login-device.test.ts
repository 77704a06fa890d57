// Keyport Connect's SSO login with device trust and require_local_mfa, through the handler table, against a
// real keyport-auth (WebAuthn only; device trust `required` with auto_enroll), the lab IdP, swtpm in the
// backend's env (KEYPORT_TPM_TCTI) and a lab soft key: connector "plain" is the IdP's login alone, connector
// "lab" has require_local_mfa. The device reaches the session (auto-enrolled at the first login with the
// TPM), a login without a TPM is untrusted, the app asks for the touch through its prompt broker, and a person
// with no key on an untrusted device is refused with the typed error, KEYPORT_HOME byte for byte as it was.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { connectAsAdmin, openClusterDb, runAdmin } from '../../lab/cluster';
import { folderSnapshot } from '../../lab/folder-snapshot';
import { LabBrowser } from '../../lab/oidc/browser';
import { labConnectorYaml, startSsoLab } from '../../lab/oidc/sso-lab';
import type { SsoLab } from '../../lab/oidc/sso-lab';
import { followCallback } from '../../lab/oidc/sso-login';
import { startSoftKey } from '../../lab/security-key/soft-key';
import type { SoftKey } from '../../lab/security-key/soft-key';
import { startLabTpm } from '../../lab/tpm';
import type { LabTpm } from '../../lab/tpm';
import type { Prompt } from '../../preload/contract';
import { createBackend } from './backend';
import type { Backend } from './backend';

// An SSO user belongs to one connector: bob signs in through "plain", alice through "lab", each with a TPM
// of their own (a device enrolled to one person is not trusted for another).
const BOB_TAG = 'KP-APP-SSO-DT-BOB';
const ALICE_TAG = 'KP-APP-SSO-DT-ALICE';
const BOB = 'bob@keyport.lab';
const ALICE = 'alice@keyport.lab';

let lab: SsoLab;
let bobTpm: LabTpm;
let aliceTpm: LabTpm;
let key: SoftKey;
let touches = 0;
/** The app on a machine without a TPM (bob's, then alice's), and on each person's machine with swtpm. */
let untrustedHome: string;
let bobHome: string;
let aliceHome: string;
const backends: Backend[] = [];

/** A backend over `home`, with `env` (the TPM's, or nothing); the lab key is plugged in for this process. */
function app(home: string, env: NodeJS.ProcessEnv) {
  /** The person's tab once the browser is back at the app's loopback page. */
  let tab: Promise<{ status: number; text: string }> | undefined;
  const browserTab = () => tab;
  let user = 'alice';
  const backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: { ...lab.clock.env, ...env },
    watchProfiles: false,
    // The person's browser: the IdP's page, keyport-auth's callback, then the app's loopback page.
    openInBrowser: async (url) => {
      tab = (async () => {
        const { callbackUrl } = await new LabBrowser(lab.idp.caPem).signIn(
          url,
          { username: user, password: `${user}-lab-password` },
          lab.redirectUri,
        );
        if (callbackUrl === undefined) throw new Error('the IdP refused');
        const callback = await followCallback(lab.cluster, callbackUrl);
        if (callback.location === undefined) throw new Error(`no redirect: ${callback.status}`);
        const response = await fetch(callback.location);
        return { status: response.status, text: await response.text() };
      })();
    },
  });
  backends.push(backend);
  const prompts: Prompt[] = [];
  backend.on('onPrompt', (prompt) => {
    prompts.push(prompt);
    // The cluster is trusted on first use when its pin is the one the admin gave (else the login fails).
    if (prompt.kind === 'trustCaPin') {
      const trust = prompt.caPin === lab.cluster.caPin;
      void backend.handlers['prompts.answer']({ id: prompt.id, value: { kind: 'trustCaPin', trust } });
    }
  });
  return {
    backend,
    prompts,
    /** auth.loginSso through `connector` as `person` at the IdP; the prompts it showed; the browser tab. */
    async login(connector: 'plain' | 'lab', person = 'alice') {
      user = person;
      tab = undefined;
      prompts.length = 0;
      const result = await backend.handlers['auth.loginSso']({ address: lab.cluster.address, connector });
      return { result, shown: [...prompts], tab: await browserTab() };
    },
  };
}

/** What a refused login must leave as it was in the cluster: security keys, trusted devices, certificates. */
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

async function registeredDevice(assetTag: string) {
  const admin = await connectAsAdmin(lab.cluster);
  try {
    return (await admin.devices.listDevices({})).devices.find((device) => device.assetTag === assetTag);
  } finally {
    admin.close();
  }
}

beforeAll(async () => {
  bobTpm = await startLabTpm();
  aliceTpm = await startLabTpm();
  lab = await startSsoLab({
    clusterName: 'sso-app-dt',
    publicAddr: 'localhost:0',
    authentication: [
      '    type: local',
      '    second_factors: [webauthn]',
      '    webauthn:',
      '      rp_id: localhost',
      '    device_trust:',
      '      mode: required',
      '      auto_enroll: true',
    ],
    connectorExtra: ['  require_local_mfa: true'],
  });
  await lab.create(labConnectorYaml(lab, 'plain'));
  // The client core reads the lab clock and the lab key from the process's environment.
  Object.assign(process.env, lab.clock.env);
  key = await startSoftKey({
    socketPath: join(lab.work, 'key.sock'),
    statePath: join(lab.work, 'key.json'),
    touch: 'auto:100',
  });
  key.events.on('presence', (event: { outcome: string }) => {
    if (event.outcome === 'approve') touches += 1;
  });
  process.env.KEYPORT_LAB_SECURITY_KEY = key.socketPath;
  for (const tag of [BOB_TAG, ALICE_TAG]) {
    const added = await runAdmin(lab.cluster, ['devices', 'add', '--os', 'linux', '--asset-tag', tag]);
    expect(added.code, added.stderr).toBe(0);
  }
  untrustedHome = await mkdtemp(join(lab.work, 'untrusted-'));
  bobHome = await mkdtemp(join(lab.work, 'bob-'));
  aliceHome = await mkdtemp(join(lab.work, 'alice-'));
}, 120_000);

afterAll(async () => {
  for (const backend of backends) await backend.close();
  delete process.env.KEYPORT_LAB_SECURITY_KEY;
  for (const name of Object.keys(lab?.clock.env ?? {})) delete process.env[name];
  await key?.stop();
  await lab?.stop();
  await bobTpm?.stop();
  await aliceTpm?.stop();
});

describe('Keyport Connect: SSO login with device trust required (auto_enroll)', () => {
  it('without a TPM in its env: signed in, untrusted (no device in the profile or the session)', async () => {
    const { backend, login } = app(untrustedHome, {});
    const { result, tab } = await login('plain', 'bob');
    expect(result, JSON.stringify(result)).toMatchObject({
      ok: true,
      value: { user: BOB, mfaVerified: false, cluster: 'sso-app-dt' },
    });
    expect(tab?.text).toContain('Signed in to sso-app-dt. You can close this tab.');
    expect((await new ProfileStore(untrustedHome).getProfile())?.device).toBeUndefined();
    expect(await backend.handlers['device.status']({ cluster: lab.cluster.address })).toMatchObject({
      ok: true,
      value: { mode: 'required', trustedInSession: false },
    });
    // Nothing was enrolled by that login.
    expect(await registeredDevice(BOB_TAG)).toMatchObject({ owner: '' });
  });

  it("that untrusted session's first security key (mfa.add): refused with DEVICE_TRUST_REQUIRED, offered as a relogin through the connector; nothing stored", async () => {
    const { backend } = app(untrustedHome, {});
    const before = folderSnapshot(untrustedHome);
    const cluster = stored();
    // The app offers to sign in again (through the same connector) as it does for a local user; declined.
    const relogin = new Promise<Prompt>((resolve) => {
      backend.on('onPrompt', (prompt) => {
        if (prompt.kind !== 'relogin') return;
        resolve(prompt);
        void backend.handlers['prompts.cancel']({ id: prompt.id });
      });
    });
    const result = await backend.handlers['mfa.add']({ name: 'bob-key' });
    expect(result).toEqual({
      ok: false,
      error: { code: 'CANCELLED', message: 'Cancelled. Nothing was changed.', details: {} },
    });
    expect(await relogin).toMatchObject({
      kind: 'relogin',
      user: BOB,
      cause: 'deviceTrust',
      reason: [expect.stringContaining('A trusted device is required for your first MFA device')],
      sso: { connector: 'plain', display: 'Lab IdP' },
    });
    expect(folderSnapshot(untrustedHome)).toEqual(before);
    expect(stored()).toEqual(cluster);
    expect(backend.broker.current()).toBeUndefined();
    expect(lab.lastAudit('mfa.add')).toMatchObject({ success: 0, actor: BOB });
    expect(lab.lastAudit('mfa.add').fields).toMatchObject({ first_device: true, connector: 'plain' });
  });

  it('with swtpm in its env: the device auto-enrolls in the same login, and the session carries it', async () => {
    const { backend, login } = app(bobHome, { ...bobTpm.env, KEYPORT_DEVICE_ASSET_TAG: BOB_TAG });
    const { result } = await login('plain', 'bob');
    expect(result, JSON.stringify(result)).toMatchObject({
      ok: true,
      value: { user: BOB, mfaVerified: false },
    });
    const profile = await new ProfileStore(bobHome).getProfile();
    expect(profile?.device).toMatchObject({ assetTag: BOB_TAG });
    expect(await backend.handlers['device.status']({ cluster: lab.cluster.address })).toMatchObject({
      ok: true,
      value: { state: 'enrolled', mode: 'required', trustedInSession: true, assetTag: BOB_TAG },
    });
    expect(await registeredDevice(BOB_TAG)).toMatchObject({ owner: BOB });
    expect(lab.lastAudit('cert.issued').fields).toMatchObject({ connector: 'plain' });
    // Nothing of the TPM or the certificates reaches the renderer.
    expect(JSON.stringify(result)).not.toMatch(/BEGIN|CERTIFICATE|credentialId|ekPublic|akPublic/);
    expect(JSON.stringify(result)).not.toContain(profile!.device!.credentialId);
  });
});

describe('Keyport Connect: SSO login through a connector with require_local_mfa', () => {
  it('a person with no key, on an untrusted device: DEVICE_TRUST_REQUIRED before any touch; KEYPORT_HOME and the cluster unchanged', async () => {
    const { backend, login } = app(untrustedHome, {});
    const before = folderSnapshot(untrustedHome);
    const cluster = stored();
    const touched = touches;
    const { result, shown, tab } = await login('lab', 'alice');
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: 'DEVICE_TRUST_REQUIRED',
        message: expect.stringContaining('A trusted device is required for your first MFA device'),
      },
    });
    expect(tab?.text).toContain('Sign-in to sso-app-dt failed');
    expect(shown.filter((prompt) => prompt.kind === 'tapKey')).toEqual([]);
    expect(touches).toBe(touched);
    expect(folderSnapshot(untrustedHome)).toEqual(before);
    expect(stored()).toEqual(cluster);
    expect(backend.broker.current()).toBeUndefined();
    const refused = lab.lastAudit('sso.login');
    expect(refused).toMatchObject({ success: 0, actor: ALICE });
    expect(refused.fields).toMatchObject({ connector: 'lab', idp_subject: 'alice' });
  });

  it('from her trusted device: the first key is registered inside the sign-in (a tap prompt), with the device', async () => {
    const { login } = app(aliceHome, { ...aliceTpm.env, KEYPORT_DEVICE_ASSET_TAG: ALICE_TAG });
    const touched = touches;
    const { result, shown } = await login('lab', 'alice');
    // A key registered just now proves only itself: the session is not MFA-verified (auth/sso/redeem.ts).
    expect(result, JSON.stringify(result)).toMatchObject({
      ok: true,
      value: { user: ALICE, mfaVerified: false },
    });
    expect(shown).toContainEqual(
      expect.objectContaining({ kind: 'notice', message: expect.stringContaining('none registered yet') }),
    );
    expect(shown.some((prompt) => prompt.kind === 'tapKey')).toBe(true);
    expect(touches - touched).toBe(1);
    expect((await new ProfileStore(aliceHome).getProfile())?.device).toMatchObject({ assetTag: ALICE_TAG });
    expect(stored().keys).toEqual([{ user: ALICE, name: 'security-key' }]);
    expect(lab.lastAudit('mfa.add').fields).toMatchObject({ first_device: true, connector: 'lab' });
  });

  it('with her key, from the untrusted machine: one touch through the prompt broker, MFA-verified, no device', async () => {
    const { backend, login } = app(untrustedHome, {});
    const touched = touches;
    const { result, shown } = await login('lab', 'alice');
    expect(result, JSON.stringify(result)).toMatchObject({
      ok: true,
      value: { user: ALICE, mfaVerified: true },
    });
    expect(shown).toContainEqual(
      expect.objectContaining({
        kind: 'notice',
        message: expect.stringContaining('requires your security key'),
      }),
    );
    expect(shown.some((prompt) => prompt.kind === 'tapKey')).toBe(true);
    expect(touches - touched).toBe(1);
    expect((await new ProfileStore(untrustedHome).getProfile())?.device).toBeUndefined();
    expect(lab.lastAudit('cert.issued').fields).toMatchObject({ mfa_verified: true, connector: 'lab' });
    expect(backend.broker.current()).toBeUndefined();
  });
});
