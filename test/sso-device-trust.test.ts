// Device trust on SSO logins, exactly as on local ones, against the lab IdP, a real keyport-auth and a real
// swtpm: the device's quote rides on the redemption of the one-time code (StartSSOLogin offers the device and
// gets its challenge; RedeemSSOLogin carries the answer). Auto-enrollment, an enrolled device, the CLI's
// `keyport login --auth=lab`, and the refusals: a quote made for another request, a replayed one.
import { X509Certificate } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustedDevice } from '../client/device-trust/device';
import { ProfileStore } from '../client/profiles';
import type { DeviceLoginHello } from '../proto/gen/keyport/v1/device';
import { openClusterDb, runAdmin } from '../lab/cluster';
import { startSsoLab, ssoCliLogin } from '../lab/oidc/sso-lab';
import type { SsoLab } from '../lab/oidc/sso-lab';
import { codeAfterIdp, redeemSso, startSso } from '../lab/oidc/sso-login';
import type { StartedSso } from '../lab/oidc/sso-login';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';

const ASSET_TAG = 'SSO-DT-1';
let lab: SsoLab;
let tpm: LabTpm;
let device: TrustedDevice | undefined;

/** Through the IdP's login and the callback: the one-time code. */
const codeFor = (started: StartedSso, user = 'alice') => codeAfterIdp(lab, started, user);

/** What a refused redemption must leave as it was: the devices, the certificates issued. */
function stored() {
  const db = openClusterDb(lab.cluster);
  try {
    return {
      devices: db.prepare('SELECT * FROM trusted_devices ORDER BY id').all(),
      certificates: db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'cert.issued'").get(),
    };
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  tpm = await startLabTpm();
  device = await TrustedDevice.open({ env: { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG } });
  lab = await startSsoLab({
    clusterName: 'sso-dt',
    authentication: [
      '    type: local',
      '    second_factor: "off"',
      '    device_trust:',
      '      mode: optional',
      '      auto_enroll: true',
    ],
  });
  const added = await runAdmin(lab.cluster, ['devices', 'add', '--os', 'linux', '--asset-tag', ASSET_TAG]);
  expect(added.code, added.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await device?.close();
  device = undefined;
  await lab?.stop();
  await tpm?.stop();
});

describe('device trust on the redemption of an SSO login', () => {
  let credentialId = '';

  it('auto-enrolls a registered device in the SSO login; the certificates carry it (one more signature, no more calls)', async () => {
    const hello: DeviceLoginHello = { credentialId: '', enroll: await device!.enrollmentData() };
    const started = await startSso(lab.api, 'lab', undefined, hello);
    const challenge = started.started.deviceChallenge;
    expect(challenge?.nonce.length).toBe(32);
    // Auto-enrollment: a credential sealed to this TPM's EK, to activate.
    expect(challenge?.credentialBlob.length).toBeGreaterThan(0);
    const code = await codeFor(started);
    const login = await redeemSso(lab.api, started, code, undefined, await device!.answer(challenge!));
    expect(login.device).toMatchObject({ assetTag: ASSET_TAG });
    credentialId = login.device!.credentialId;
    expect(credentialId).toBe(await device!.credentialId());
    const certificate = new X509Certificate(login.tlsCertificate);
    expect(certificate.raw.toString('latin1')).toContain(`"keyport-device-asset-tag":"${ASSET_TAG}"`);
    const db = openClusterDb(lab.cluster);
    expect(
      db.prepare('SELECT enroll_status, owner FROM trusted_devices WHERE asset_tag = ?').get(ASSET_TAG),
    ).toEqual({
      enroll_status: 'enrolled',
      owner: 'alice@keyport.lab',
    });
    db.close();
    expect(lab.lastAudit('device.enroll')).toMatchObject({ actor: 'alice@keyport.lab', success: 1 });
    expect(lab.lastAudit('device.enroll').fields).toMatchObject({ auto: true });
    expect(lab.lastAudit('cert.issued').fields).toMatchObject({
      connector: 'lab',
      idp_subject: 'alice',
      device_id: login.device!.deviceId,
    });
  });

  it('an enrolled device: a quote of the request nonce alone (no activation) and the device in the certificates', async () => {
    const started = await startSso(lab.api, 'lab', undefined, { credentialId });
    const challenge = started.started.deviceChallenge!;
    expect(challenge.credentialBlob.length).toBe(0);
    const login = await redeemSso(
      lab.api,
      started,
      await codeFor(started),
      undefined,
      await device!.answer(challenge),
    );
    expect(login.device).toMatchObject({ assetTag: ASSET_TAG, credentialId });
    expect(lab.lastAudit('device.authenticate')).toMatchObject({ success: 1, actor: 'alice@keyport.lab' });
  });

  it("refuses a quote made for another request's challenge: ACCESS_DENIED, no certificate, audited with connector and subject", async () => {
    const first = await startSso(lab.api, 'lab', undefined, { credentialId });
    const second = await startSso(lab.api, 'lab', undefined, { credentialId });
    const firstAnswer = await device!.answer(first.started.deviceChallenge!);
    const code = await codeFor(second);
    const before = stored();
    await expect(redeemSso(lab.api, second, code, undefined, firstAnswer)).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringContaining('Device authentication failed'),
    });
    expect(stored()).toEqual(before);
    const refused = lab.lastAudit('sso.login');
    expect(refused).toMatchObject({ success: 0, actor: 'alice@keyport.lab' });
    expect(refused.message).toMatch(/^device: Device authentication failed/);
    expect(refused.fields).toMatchObject({ step: 'redeem', connector: 'lab', idp_subject: 'alice' });
    expect(lab.lastAudit('device.authenticate')).toMatchObject({ success: 0 });
  });

  it('refuses a replayed quote: the answer of a redeemed login does not sign in another', async () => {
    const used = await startSso(lab.api, 'lab', undefined, { credentialId });
    const answer = await device!.answer(used.started.deviceChallenge!);
    await redeemSso(lab.api, used, await codeFor(used), undefined, answer);
    const next = await startSso(lab.api, 'lab', undefined, { credentialId });
    const code = await codeFor(next);
    const before = stored();
    await expect(redeemSso(lab.api, next, code, undefined, answer)).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
    });
    expect(stored()).toEqual(before);
    expect(lab.lastAudit('sso.login').fields).toMatchObject({ step: 'redeem', idp_subject: 'alice' });
  });

  it("another person's enrolled device leaves the login untrusted (bob signs in with alice's device)", async () => {
    const started = await startSso(lab.api, 'lab', undefined, { credentialId });
    const login = await redeemSso(
      lab.api,
      started,
      await codeFor(started, 'bob'),
      undefined,
      await device!.answer(started.started.deviceChallenge!),
    );
    expect(login.user).toBe('bob@keyport.lab');
    expect(login.device).toBeUndefined();
    expect(lab.lastAudit('device.authenticate').message).toContain('enrolled by another user');
  });

  it('without a TPM (or one that does not answer) the login proceeds with no device identity', async () => {
    const none = await startSso(lab.api, 'lab');
    expect(none.started.deviceChallenge).toBeUndefined();
    expect((await redeemSso(lab.api, none, await codeFor(none))).device).toBeUndefined();
    const silent = await startSso(lab.api, 'lab', undefined, { credentialId });
    expect((await redeemSso(lab.api, silent, await codeFor(silent))).device).toBeUndefined();
    expect(lab.lastAudit('device.authenticate')).toMatchObject({
      success: 0,
      message: 'the client sent no quote',
    });
  });

  it('keyport login --auth=lab on this device: the profile holds a device-trusted session', async () => {
    // swtpm serves one connection at a time: the CLI's TPM helper gets it.
    await device?.close();
    device = undefined;
    const home = await mkdtemp(join(lab.work, 'home-'));
    const result = await ssoCliLogin(lab, {
      home,
      user: 'alice',
      env: { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.tab?.text).toContain('Signed in to sso-dt. You can close this tab.');
    const profile = await new ProfileStore(home).getProfile(lab.cluster.address);
    expect(profile?.device).toMatchObject({ assetTag: ASSET_TAG, credentialId });
    expect(lab.lastAudit('cert.issued').fields).toMatchObject({
      connector: 'lab',
      device_id: profile!.device!.deviceId,
    });
  });
});
