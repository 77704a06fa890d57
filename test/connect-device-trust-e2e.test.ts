// Device trust in Keyport Connect, end to end: the built renderer in Debian's Chromium (playwright-core)
// through the browser host and the real backend, a real keyport-auth with device_trust mode optional, and
// a lab swtpm as this machine's TPM (the app's env names it, and the asset tag). An admin registers the
// device and makes a token; the person signs in, sees "registered", pastes the token, enrolls, signs in
// again and sees "trusted in this session"; the saved profile's certificates carry the device. Every
// step saves a screenshot under test-results/connect-device-trust-e2e/ and is checked with axe-core.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { ProfileStore } from '../client/profiles';
import { createBackend, TPM_WORKING } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { openAppInChromium } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { connectAsAdmin, repoRoot, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';
import type { Prompt } from '../preload/contract';

const ASSET_TAG = 'KP-E2E-LAPTOP-7';
const shots = join(repoRoot, 'test-results', 'connect-device-trust-e2e');

let work: string;
let home: string;
let tpm: LabTpm;
let clock: LabClock;
let cluster: LabCluster;
let person: SignedUpUser;
let token: string;
let backend: Backend;
let app: AppInChromium;
let page: Page;
const prompts: Prompt[] = [];

const screenshot = screenshotter(() => page, shots);

/** axe-core on what is on screen now: no serious or critical finding. */
async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

const button = (name: string) => page.getByRole('button', { name, exact: true });
const thisDevice = () => page.getByRole('region', { name: 'This device' });

/** The login form, filled and sent; the OTP prompt answered with the cluster's next step's code. */
async function signIn() {
  await page.getByLabel('Password', { exact: true }).fill(person.password);
  await button('Sign in').click();
  const otp = page.getByRole('dialog', { name: 'One-time code' });
  await otp.waitFor();
  await otp.getByLabel('Code').fill(totpCode(person.totpSecret, clock.now() + 30_000));
  await otp.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Account' }).waitFor();
  // The next login gets a fresh step: a code is never accepted twice.
  clock.advance(60_000);
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-dt-e2e-'));
  home = join(work, 'home');
  tpm = await startLabTpm();
  clock = createLabClock();
  cluster = await startLabCluster({
    clusterName: 'dt-e2e',
    configYaml:
      'auth_service:\n  authentication:\n    type: local\n    second_factor: otp\n    device_trust:\n      mode: optional\n',
    env: clock.env,
  });
  // Signed up elsewhere (its own home): the app starts with no trusted cluster.
  person = await signUpUserInProcess(cluster, join(work, 'setup'), 'dana', ['access']);
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
  });
  await backend.ready;
  backend.on('onPrompt', (prompt) => void prompts.push(prompt));
  app = await openAppInChromium(backend, { width: 1100, height: 900 });
  page = app.page;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await backend?.close();
  await cluster?.stop();
  await tpm?.stop();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect, device trust end to end', () => {
  it('signs in and shows this device as registered, by the asset tag the admin registered', async () => {
    await page.getByLabel('Cluster address').fill(cluster.address);
    await button('Add cluster').click();
    const trust = page.getByRole('dialog', { name: 'Trust this cluster?' });
    await trust.waitFor();
    await trust.getByRole('button', { name: 'Trust', exact: true }).click();
    await button('Sign in to dt-e2e').click();
    await page.getByLabel('User', { exact: true }).fill(person.user);
    await signIn();
    const device = thisDevice();
    await expect.poll(() => device.getByText('Registered, not enrolled').isVisible()).toBe(true);
    await expect.poll(() => device.getByText(ASSET_TAG, { exact: true }).isVisible()).toBe(true);
    expect((await new ProfileStore(home).getProfile())?.device).toBeUndefined();
    await expectAccessible('this device, registered');
    await screenshot('registered');
  });

  it('enrolls with the pasted token: a progress prompt while the TPM works, then "sign in again"', async () => {
    const device = thisDevice();
    const field = device.getByLabel('Enrollment token');
    await field.fill(token);
    await device.getByRole('button', { name: 'Enroll with token' }).click();
    await expect.poll(() => device.getByRole('status').textContent()).toContain('is enrolled');
    // The token left with the call: the form goes once the status reloads, and nothing on the page holds it.
    await expect.poll(() => field.count()).toBe(0);
    expect(await page.content()).not.toContain(token);
    expect(prompts.filter((p) => p.kind === 'progress')).toEqual([
      { kind: 'progress', message: TPM_WORKING, id: expect.any(String) },
    ]);
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
    await expect.poll(() => device.getByText('Enrolled', { exact: true }).isVisible()).toBe(true);
    await expect
      .poll(() =>
        device.getByText('This device is enrolled. Sign in again to get a trusted session.').isVisible(),
      )
      .toBe(true);
    await expectAccessible('this device, enrolled');
    await screenshot('enrolled');
  });

  it('signs in again and shows "trusted in this session"; the saved certificate carries the device', async () => {
    await thisDevice().getByRole('button', { name: 'Sign in again' }).click();
    await page.getByRole('heading', { name: 'Sign in to dt-e2e' }).waitFor();
    await signIn();
    const device = thisDevice();
    await expect.poll(() => device.getByText('Trusted in this session').isVisible()).toBe(true);
    await expect.poll(() => device.getByText('dana', { exact: true }).isVisible()).toBe(true);
    const profile = await new ProfileStore(home).getProfile();
    expect(profile).toMatchObject({ user: 'dana', device: { assetTag: ASSET_TAG } });
    expect(profile?.device?.credentialId).toBeTruthy();
    // The credential id and the device id stay in main: the page shows neither.
    const content = await page.content();
    expect(content).not.toContain(profile!.device!.credentialId);
    expect(content).not.toContain(profile!.device!.deviceId);
    await expectAccessible('this device, trusted in this session');
    await screenshot('trusted');
  });
});
