// Keyport Connect's relogin end to end (issue 13): the built app in Debian's Chromium through the browser
// host and the real backend, a real keyport-auth on a lab clock the test moves (no wall-clock race), a lab
// security key the test touches and the lab PIV card on a real pcscd. The person's role allows 1-minute
// sessions (`max_session_ttl: 1m`). They sign in; the clock moves: the banner says the session ends soon,
// then that it ended; opening Servers after the expiry shows the relogin prompt (not an error), which
// completes after the key's touch. Once the expiry has been shown, the admin lengthens the role's sessions
// to an hour, so the steps that follow never race the wall clock on a loaded machine: the banner's "Sign in
// again" renews an ended session over the Clusters screen, whose half-typed form keeps its value; then the
// admin raises the role to `require_session_mfa: hardware_key`, and the next action asks to sign in again
// with the card. Every step saves a screenshot in test-results/connect-relogin-e2e/; every prompt and banner
// passes axe-core.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELOGIN_NOTICE } from '../client/ceremonies/hardware-key';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { ProfileStore } from '../client/profiles';
import type { Profile } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { clockTime } from '../main/backend/relogin';
import { LAB_CLOCK_ENV } from '../proto/clock';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { attestationRootsYaml, connectAsAdmin, repoRoot, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { connectClusterConfig, signUpWithLabKey } from '../lab/connect';
import type { KeyPerson } from '../lab/connect';
import { openAppInChromium } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';
import { startSoftKey, touchingWhile } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

const USER = 'nora';
const PIN = '1234';
const ROLE = 'short-sessions';
const shots = join(repoRoot, 'test-results', 'connect-relogin-e2e');

let clock: LabClock;
let work: string;
let home: string;
let cluster: LabCluster;
let key: SoftKey;
let card: LabPivCard;
let person: KeyPerson;
let backend: Backend;
let app: AppInChromium;
let page: Page;

const screenshot = screenshotter(() => page, shots);
const dialog = (name: string) => page.getByRole('dialog', { name });
const button = (name: string) => page.getByRole('button', { name, exact: true });
const banner = () => page.getByRole('region', { name: 'Session' });

async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

/** The role every session of the person is capped by; the admin edits it as the test goes. */
async function setRole(options: Record<string, string>): Promise<void> {
  const admin = await connectAsAdmin(cluster);
  try {
    const role = {
      kind: 'role',
      version: 'v7',
      metadata: { name: ROLE },
      spec: { options, allow: { logins: [USER] } },
    };
    await admin.admin.createResources({ documentsJson: [JSON.stringify(role)], force: true });
  } finally {
    admin.close();
  }
}

async function currentProfile(): Promise<Profile> {
  const profile = await new ProfileStore(home).getProfile();
  if (!profile) throw new Error('not signed in');
  return profile;
}

/** Moves the cluster's (and the app's) time to `msBefore` the session's expiry, or past it when negative. */
async function moveClockTo(msBefore: number): Promise<Profile> {
  const profile = await currentProfile();
  clock.advance(Math.max(0, profile.expiresMs - msBefore - clock.now()));
  return profile;
}

/** Resolves when the security key next waits for a touch. */
function keyWaits(): Promise<void> {
  return new Promise((resolve) => key.events.once('up-needed', () => resolve()));
}

/** The relogin prompt's password, "Sign in", the security key's tap prompt, and the touch. */
async function signInAgainWithKey(relogin: ReturnType<typeof dialog>, what: string) {
  await relogin.getByLabel('Password', { exact: true }).fill(person.password);
  const waiting = keyWaits();
  await relogin.getByRole('button', { name: 'Sign in', exact: true }).click();
  await waiting;
  const tap = dialog('Security key');
  await tap.waitFor();
  await expectAccessible(`the tap prompt of ${what}`);
  await screenshot(`${what}-tap-key`);
  expect(key.touch('approve')).toBe(true);
}

beforeAll(async () => {
  // This run's screenshots only: their numbers follow the steps.
  await rm(shots, { recursive: true, force: true });
  await mkdir(shots, { recursive: true });
  clock = createLabClock();
  // The app runs on the cluster's clock too: a card session's proof of possession carries its time.
  Object.assign(process.env, clock.env);
  work = await mkdtemp(join(tmpdir(), 'kp-relogin-e2e-'));
  home = join(work, 'home');
  card = await startLabPivCard({ touch: 'auto', env: clock.env });
  // libpcsclite reads it once per process: the backend in this process talks to this card's pcscd.
  process.env.PCSCLITE_CSOCK_NAME = card.socketPath;
  cluster = await startLabCluster({
    clusterName: 'relogin-e2e',
    configYaml: connectClusterConfig() + attestationRootsYaml(card.attestationRootPem),
    env: clock.env,
  });
  key = await startSoftKey({
    socketPath: join(work, 'key.sock'),
    statePath: join(work, 'key.json'),
    touch: 'manual',
    pin: PIN,
  });
  await setRole({ max_session_ttl: '1m' });
  person = await touchingWhile(key, () =>
    signUpWithLabKey(cluster, {
      user: USER,
      roles: ['access', ROLE],
      logins: [USER],
      password: `${USER}-password-123`,
      keySocket: key.socketPath,
      pin: PIN,
    }),
  );
  process.env[LAB_SECURITY_KEY_ENV] = key.socketPath;
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: { [LAB_SECURITY_KEY_ENV]: key.socketPath, ...clock.env },
    clock: clock.now,
    // "Ends soon" 30 s before the end of a 1-minute session; the clock read often, as the test moves it.
    sessionNotices: { warnBeforeMs: 30_000, tickMs: 250 },
  });
  await backend.ready;
  // The cluster is trusted by its pin (the TOFU dialog has its own e2e test).
  expect(
    await backend.handlers['clusters.add']({ address: cluster.address, caPin: cluster.caPin }),
  ).toMatchObject({ ok: true });
  app = await openAppInChromium(backend, { width: 1100, height: 760 });
  page = app.page;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await backend?.close();
  await cluster?.stop();
  await key?.stop();
  await card?.stop();
  clock?.dispose();
  delete process.env[LAB_CLOCK_ENV];
  delete process.env.PCSCLITE_CSOCK_NAME;
  delete process.env[LAB_SECURITY_KEY_ENV];
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect relogin, end to end', () => {
  it('signs in to a 1-minute session; as the clock moves, the banner says it ends soon, then that it ended', async () => {
    await page.getByRole('heading', { name: 'Sign in to relogin-e2e' }).waitFor();
    await page.getByLabel('User', { exact: true }).fill(USER);
    await page.getByLabel('Password', { exact: true }).fill(person.password);
    await page.getByRole('radio', { name: 'Security key' }).check();
    const waiting = keyWaits();
    await button('Sign in').click();
    await waiting;
    expect(key.touch('approve')).toBe(true);
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    const first = await currentProfile();
    // The role caps the session at a minute (on the cluster's clock).
    expect(first.expiresMs - first.validAfterMs).toBeLessThanOrEqual(2 * 60_000);
    await screenshot('signed-in');

    await moveClockTo(20_000);
    await expect
      .poll(() => banner().textContent())
      .toBe('Session ends in less than a minute — Sign in again');
    await expectAccessible('the "ends soon" banner');
    await screenshot('banner-ends-soon');

    const ended = await moveClockTo(-5_000);
    await expect
      .poll(() => banner().textContent())
      .toBe(`Your session ended at ${clockTime(ended.expiresMs)} — Sign in again`);
    await expectAccessible('the "ended" banner');
    await screenshot('banner-ended');
    // A window loaded after the notice (a reload here) shows it too. It opens on the Account screen, whose
    // calls after the expiry ask to sign in again: the person cancels, and the banner stays.
    await page.reload();
    await expect
      .poll(() => banner().textContent())
      .toBe(`Your session ended at ${clockTime(ended.expiresMs)} — Sign in again`);
    const relogin = dialog('Sign in again');
    await relogin.waitFor();
    await relogin.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => relogin.count()).toBe(0);
    await expect
      .poll(() => banner().textContent())
      .toBe(`Your session ended at ${clockTime(ended.expiresMs)} — Sign in again`);
    expect(await currentProfile()).toEqual(ended);
  });

  it('opening Servers after the expiry shows the relogin prompt, not an error, and completes after the touch', async () => {
    const ended = await currentProfile();
    await button('Servers').click();
    const relogin = dialog('Sign in again');
    await relogin.waitFor();
    await expect
      .poll(() => relogin.getByText(`Your session ended at ${clockTime(ended.expiresMs)}.`).isVisible())
      .toBe(true);
    // The cluster and user it signs in as, read only; the login screen's factors.
    expect(await relogin.locator('dd').allTextContents()).toEqual([cluster.address, USER]);
    expect(await relogin.getByRole('radio', { name: 'Security key' }).isChecked()).toBe(true);
    expect(await relogin.getByRole('button', { name: 'Sign in without a password' }).count()).toBe(1);
    expect(await page.getByRole('alert').count()).toBe(0);
    await expectAccessible('the relogin prompt for an ended session');
    await screenshot('relogin-session-ended');

    await signInAgainWithKey(relogin, 'relogin-session-ended');
    // The refused call ran again: the Servers screen, with no error, and the banner gone.
    await page.getByRole('heading', { name: 'Servers on relogin-e2e' }).waitFor();
    await expect.poll(() => relogin.count()).toBe(0);
    await expect.poll(() => banner().count()).toBe(0);
    expect(await page.getByRole('alert').count()).toBe(0);
    const renewed = await currentProfile();
    expect(renewed.expiresMs).toBeGreaterThan(ended.expiresMs);
    await expectAccessible('the servers after the relogin');
    await screenshot('servers-after-relogin');
  });

  it('"Sign in again" in the banner renews an ended session without a password over the current screen, and a typed form keeps its value', async () => {
    // From here the admin gives an hour: what follows must not race the wall clock.
    await setRole({ max_session_ttl: '1h' });
    await button('Clusters').click();
    const address = page.getByLabel('Cluster address');
    await address.fill('later.example.com:30');
    const ended = await moveClockTo(-5_000);
    await expect
      .poll(() => banner().textContent())
      .toBe(`Your session ended at ${clockTime(ended.expiresMs)} — Sign in again`);
    await banner().getByRole('button', { name: 'Sign in again' }).click();
    const relogin = dialog('Sign in again');
    await relogin.waitFor();
    await expect
      .poll(() => relogin.getByText(`Your session ended at ${clockTime(ended.expiresMs)}.`).isVisible())
      .toBe(true);
    await screenshot('banner-relogin');
    // The login screen's other factor this time: passwordless, the key's touch and PIN.
    await touchingWhile(key, async () => {
      await relogin.getByRole('button', { name: 'Sign in without a password' }).click();
      const pin = dialog('Security key PIN');
      await pin.waitFor();
      await expectAccessible('the PIN prompt of the banner relogin');
      await screenshot('banner-relogin-pin');
      await pin.getByLabel('PIN', { exact: true }).fill(PIN);
      await pin.getByRole('button', { name: 'Continue' }).click();
      await expect.poll(() => banner().count()).toBe(0);
    });
    await expect.poll(() => banner().count()).toBe(0);
    await expect.poll(() => relogin.count()).toBe(0);
    // Still the Clusters screen, the address half typed as it was.
    expect(await page.getByRole('heading', { name: 'Clusters', exact: true }).isVisible()).toBe(true);
    expect(await address.inputValue()).toBe('later.example.com:30');
    const renewed = await currentProfile();
    expect(renewed.expiresMs - renewed.validAfterMs).toBeGreaterThan(30 * 60_000);
    await expectAccessible('the clusters after the banner relogin');
    await screenshot('clusters-form-kept');
  });

  it('a policy raised to a hardware key mid-session leads to a relogin with the card', async () => {
    await setRole({ max_session_ttl: '1h', require_session_mfa: 'hardware_key' });
    expect((await currentProfile()).hardwareKey).toBeUndefined();
    await button('Account').click();
    const relogin = dialog('Sign in again');
    await relogin.waitFor();
    await expect
      .poll(() => relogin.getByText('This cluster now requires a hardware key.').isVisible())
      .toBe(true);
    expect(await relogin.getByText('Unmet private key policy "hardware_key".').isVisible()).toBe(true);
    expect(await relogin.getByText(RELOGIN_NOTICE).isVisible()).toBe(true);
    await expectAccessible('the relogin prompt for a hardware key');
    await screenshot('relogin-hardware-key');

    await signInAgainWithKey(relogin, 'relogin-hardware-key');
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    const fact = page.locator('dt', { hasText: 'Session key' }).locator('xpath=following-sibling::dd[1]');
    await expect.poll(() => fact.textContent()).toMatch(/^On your YubiKey, PIV slot 9[a-e] /);
    await expect.poll(() => relogin.count()).toBe(0);
    await expect.poll(() => page.getByRole('alert').allTextContents()).toEqual([]);
    expect(await currentProfile()).toMatchObject({
      user: USER,
      hardwareKey: { policy: 'hardware_key', serial: card.serial },
    });
    await expectAccessible('the account with the card');
    await screenshot('account-hardware-key');
  });
});
