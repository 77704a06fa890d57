// device.status and device.enroll through the handler table, against a real keyport-auth with device
// trust on and a real swtpm: arguments checked first, the TPM's work shown as a progress prompt that
// closes, the refusals typed, and no token, TPM material or credential id in any result or event.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { connectAsAdmin, nextTotpCode, signUpUserInProcess, startLabCluster } from '../../lab/cluster';
import type { LabCluster, SignedUpUser } from '../../lab/cluster';
import { startLabTpm } from '../../lab/tpm';
import type { LabTpm } from '../../lab/tpm';
import type { Prompt, PromptClosed } from '../../preload/contract';
import { createBackend, TPM_WORKING } from './backend';
import type { Backend } from './backend';

const ASSET_TAG = 'KP-BACKEND-DT-1';
const DEVICE_TRUST_CONFIG =
  'auth_service:\n  authentication:\n    type: local\n    second_factor: otp\n    device_trust:\n      mode: optional\n';

let tpm: LabTpm;
let clock: LabClock;
let cluster: LabCluster;
let home: string;
let person: SignedUpUser;
let backend: Backend;
let token: string;
const shown: Prompt[] = [];
const closed: PromptClosed[] = [];
const everything: unknown[] = [];

/** auth.login with the password and the code of the cluster's next step; then the clock moves on a minute. */
async function signIn() {
  const stop = backend.on('onPrompt', (prompt) => {
    if (prompt.kind !== 'otpCode') return;
    void backend.handlers['prompts.answer']({
      id: prompt.id,
      value: { kind: 'otpCode', code: nextTotpCode(person.totpSecret, clock.now()) },
    });
  });
  try {
    const result = await backend.handlers['auth.login']({
      address: cluster.address,
      user: person.user,
      password: person.password,
      secondFactor: 'otp',
    });
    clock.advance(60_000);
    everything.push(result);
    return result;
  } finally {
    stop();
  }
}

async function call<M extends 'device.status' | 'device.enroll'>(method: M, argument?: unknown) {
  const result = await backend.handlers[method](argument);
  everything.push(result);
  return result;
}

beforeAll(async () => {
  tpm = await startLabTpm();
  clock = createLabClock();
  cluster = await startLabCluster({
    clusterName: 'dt-backend',
    configYaml: DEVICE_TRUST_CONFIG,
    env: clock.env,
  });
  home = await mkdtemp(join(tmpdir(), 'keyport-backend-dt-'));
  person = await signUpUserInProcess(cluster, home, 'dana', ['access']);
  const admin = await connectAsAdmin(cluster);
  try {
    await admin.devices.addDevice({ osType: 'linux', assetTag: ASSET_TAG });
    token = (await admin.devices.createDeviceEnrollToken({ device: ASSET_TAG, ttlSeconds: 0 })).token;
  } finally {
    admin.close();
  }
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: { ...process.env, ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    watchProfiles: false,
  });
  backend.on('onPrompt', (prompt) => void (shown.push(prompt), everything.push(prompt)));
  backend.on('onPromptClosed', (event) => void (closed.push(event), everything.push(event)));
  backend.on('onProfileChanged', (event) => void everything.push(event));
}, 120_000);

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
  await tpm?.stop();
  clock?.dispose();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('device trust through the backend', () => {
  it('asks for a signed-in session first', async () => {
    expect(await call('device.status', { cluster: cluster.address })).toMatchObject({
      ok: false,
      error: { code: 'UNAUTHENTICATED' },
    });
  });

  it('shows this device as registered, with its asset tag and the cluster mode', async () => {
    expect(await signIn()).toMatchObject({ ok: true, value: { user: 'dana' } });
    expect(await call('device.status', { cluster: cluster.address })).toEqual({
      ok: true,
      value: {
        state: 'registered',
        assetTag: ASSET_TAG,
        osType: 'linux',
        mode: 'optional',
        trustedInSession: false,
        selfEnrollmentAllowed: false,
        registered: { assetTag: ASSET_TAG, osType: 'linux', owner: '', enrolled: false, enrolledMs: 0 },
      },
    });
  });

  it('refuses a token of the wrong shape before anything runs, and a wrong token with ACCESS_DENIED', async () => {
    const promptsBefore = shown.length;
    for (const bad of ['with spaces in it', 'a'.repeat(300), 'token=abc', '']) {
      expect(await call('device.enroll', { cluster: cluster.address, token: bad })).toMatchObject({
        ok: false,
        error: { code: 'INVALID_ARGUMENT', details: { fieldPath: 'token' } },
      });
    }
    // Nothing ran: the TPM was never asked, so no progress prompt showed.
    expect(shown.length).toBe(promptsBefore);
    const wrong = await call('device.enroll', { cluster: cluster.address, token: 'A'.repeat(43) });
    expect(wrong).toMatchObject({
      ok: false,
      error: { code: 'ACCESS_DENIED', details: { fieldPath: 'token' } },
    });
    // Self-enrollment needs a device admin's role, which "access" is not.
    expect(await call('device.enroll', { cluster: cluster.address })).toMatchObject({
      ok: false,
      error: { code: 'ACCESS_DENIED' },
    });
    // Every progress prompt those attempts showed is closed again.
    const progress = shown.filter((p) => p.kind === 'progress');
    for (const prompt of progress) expect(closed.map((c) => c.id)).toContain(prompt.id);
    expect(await call('device.status', { cluster: cluster.address })).toMatchObject({
      ok: true,
      value: { state: 'registered' },
    });
  });

  it('enrolls with the token, showing a progress prompt while the TPM works and closing it', async () => {
    const from = shown.length;
    const enrolled = await call('device.enroll', { cluster: cluster.address, token });
    expect(enrolled).toMatchObject({
      ok: true,
      value: { assetTag: ASSET_TAG, osType: 'linux', owner: 'dana', enrolled: true },
    });
    const progress = shown.slice(from);
    expect(progress).toEqual([{ kind: 'progress', message: TPM_WORKING, id: expect.any(String) }]);
    expect(closed).toContainEqual({ id: progress[0]!.id, reason: 'finished' });
    expect(backend.broker.current()).toBeUndefined();
    // The token is spent.
    expect(await call('device.enroll', { cluster: cluster.address, token })).toMatchObject({
      ok: false,
      error: { code: 'ACCESS_DENIED', details: { fieldPath: 'token' } },
    });
    expect(await call('device.status', { cluster: cluster.address })).toMatchObject({
      ok: true,
      value: { state: 'enrolled', trustedInSession: false, registered: { owner: 'dana', enrolled: true } },
    });
  });

  it('a new login carries the device; results and events hold no token, TPM material or credential id', async () => {
    expect(await signIn()).toMatchObject({ ok: true });
    const status = await call('device.status', {});
    expect(status).toMatchObject({ ok: true, value: { state: 'enrolled', trustedInSession: true } });
    const stored = await new ProfileStore(home).getProfile();
    expect(stored?.device).toMatchObject({ assetTag: ASSET_TAG });
    const admin = await connectAsAdmin(cluster);
    const { devices } = await admin.devices.listDevices({});
    admin.close();
    const device = devices.find((d) => d.assetTag === ASSET_TAG)!;
    const text = JSON.stringify(everything);
    for (const secret of [
      token,
      stored!.device!.credentialId,
      stored!.device!.deviceId,
      device.ekFingerprint,
      device.ekFingerprint.replace(/^sha256:/, ''),
      'credentialId',
      'ekFingerprint',
      'akPublic',
      'ekPublic',
      'ekCertificate',
      'BEGIN CERTIFICATE',
      stored!.keyId,
      person.password,
      person.totpSecret,
    ]) {
      expect(text).not.toContain(secret);
    }
  });
});
