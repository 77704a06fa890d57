// Keyport Connect end to end with a hardware key (issue 10): the built app in Debian's Chromium through the
// browser host and the real backend, a real keyport-auth, and the lab's virtual PIV card on a real pcscd,
// touched by the test. The person signs in with a software key; an admin raises their role's
// require_session_mfa to hardware_key_touch; their next action in the app shows the seed's two lines in a
// "Sign in again" dialog, then "Tap your YubiKey"; they approve, the action completes and the Account screen
// shows PIV slot 9c and the policy. Before that, a touch refused gives a clear error and keeps the old
// profile. Every step saves a screenshot in test-results/connect-hardware-key-e2e/; every screen passes
// axe-core.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELOGIN_NOTICE } from '../client/ceremonies/hardware-key';
import { ProfileStore } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { hardwareKeyClusterYaml, repoRoot, startLabCluster } from '../lab/cluster';
import { folderSnapshot } from '../lab/folder-snapshot';
import {
  createHardwareKeyUsers,
  hardwareKeyUserPassword,
  raiseHardwareKeyPolicy,
} from '../lab/hardware-key-users';
import type { LabCluster } from '../lab/cluster';
import { openAppInChromium } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';

const USER = 'ivy';
const PASSWORD = hardwareKeyUserPassword(USER);
const shots = join(repoRoot, 'test-results', 'connect-hardware-key-e2e');

let work: string;
let home: string;
let card: LabPivCard;
let cluster: LabCluster;
let backend: Backend;
let app: AppInChromium;
let page: Page;

const screenshot = screenshotter(() => page, shots);
const dialog = (name: string) => page.getByRole('dialog', { name });
const button = (name: string) => page.getByRole('button', { name, exact: true });

async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

/** Every file in KEYPORT_HOME with its contents. */
const homeFiles = () => folderSnapshot(home);

/** The "Session key" fact on the Account screen. */
function sessionKeyFact() {
  return page.locator('dt', { hasText: 'Session key' }).locator('xpath=following-sibling::dd[1]');
}

/** Leaves the Account screen and opens it again: it lists the MFA devices and this device afresh. */
async function reopenAccount() {
  await button('Clusters').click();
  await page.getByRole('list', { name: 'Trusted clusters' }).waitFor();
  await button('Account').click();
}

/** The next action once the policy is raised (Account opened again) asks to sign in again, and says why. */
async function reloginAsked() {
  await reopenAccount();
  const relogin = dialog('Sign in again');
  await relogin.waitFor();
  await expect
    .poll(() => relogin.getByText('Unmet private key policy "hardware_key_touch".').isVisible())
    .toBe(true);
  return relogin;
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  card = await startLabPivCard({ touch: 'manual' });
  // libpcsclite reads it once per process: the backend in this process talks to this card's pcscd.
  process.env.PCSCLITE_CSOCK_NAME = card.socketPath;
  work = await mkdtemp(join(tmpdir(), 'kp-piv-e2e-'));
  home = join(work, 'home');
  cluster = await startLabCluster({
    clusterName: 'piv-e2e',
    configYaml: hardwareKeyClusterYaml(card.attestationRootPem),
  });
  await createHardwareKeyUsers(cluster, { [USER]: 'none' });
  backend = createBackend({ profiles: new ProfileStore(home), keystoreKind: 'file', env: {} });
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
  await card?.stop();
  delete process.env.PCSCLITE_CSOCK_NAME;
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect with a PIV card, end to end', () => {
  it('signs in with a software session key while no hardware key is required', async () => {
    // One trusted cluster and no session: the app opens on its login.
    await page.getByRole('heading', { name: 'Sign in to piv-e2e' }).waitFor();
    await page.getByLabel('User', { exact: true }).fill(USER);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await button('Sign in').click();
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    await expect
      .poll(() => sessionKeyFact().textContent())
      .toBe('In a file only you can read (the headless opt-in)');
    expect(await page.getByText('Key policy').count()).toBe(0);
    expect((await new ProfileStore(home).getProfile())?.hardwareKey).toBeUndefined();
    await screenshot('account-software-key');
    // An admin raises the role: the session's key no longer meets it.
    await raiseHardwareKeyPolicy(cluster, 'hardware_key_touch');
  });

  it('a touch refused: a clear error, and the old profile kept', async () => {
    const before = homeFiles();
    const relogin = await reloginAsked();
    await relogin.getByLabel('Password').fill(PASSWORD);
    await relogin.getByRole('button', { name: 'Sign in' }).click();
    const tap = dialog('Hardware key');
    await tap.waitFor();
    await expect.poll(() => tap.getByText('Tap your YubiKey').isVisible()).toBe(true);
    await screenshot('tap-your-yubikey-to-refuse');
    // The person does not touch (a YubiKey gives up after 15 s and says the same): refused now.
    await card.nextTouchRequest();
    await card.touch('deny');
    await card.setTouchMode('denied');
    try {
      // A PIN-never key whose touch was refused: no PIN is asked (none would help), the error says why.
      await expect
        .poll(() =>
          page
            .getByText(/Your YubiKey was not touched .* in time/)
            .first()
            .isVisible(),
        )
        .toBe(true);
      expect(await dialog('PIV PIN').count()).toBe(0);
    } finally {
      await card.setTouchMode('manual');
    }
    await expectAccessible('the touch refused');
    await screenshot('touch-refused');
    expect(await sessionKeyFact().textContent()).toBe('In a file only you can read (the headless opt-in)');
    expect(homeFiles()).toEqual(before);
  });

  it('the next action explains the relogin, asks for the touch, completes, and the Account screen shows slot 9c and the policy', async () => {
    const relogin = await reloginAsked();
    expect(await relogin.getByText(RELOGIN_NOTICE).isVisible()).toBe(true);
    await expectAccessible('the relogin dialog');
    await screenshot('relogin-explained');
    await relogin.getByLabel('Password').fill(PASSWORD);
    await relogin.getByRole('button', { name: 'Sign in' }).click();
    const tap = dialog('Hardware key');
    await tap.waitFor();
    await expect.poll(() => tap.getByText('Tap your YubiKey').isVisible()).toBe(true);
    await expectAccessible('the touch prompt');
    await screenshot('tap-your-yubikey');
    await card.nextTouchRequest();
    expect(await card.touch('approve')).toBe(true);
    // Later signatures reuse the cached touch for 15 s; on a loaded machine the screen's next calls may come
    // after that, and the person would touch again: the card does it for them from here on.
    await card.setTouchMode('auto');
    // The action completes: the dialogs close, the devices list shows, the Account screen names the card.
    await expect
      .poll(() => sessionKeyFact().textContent())
      .toBe(`On your YubiKey, PIV slot 9c (serial ${card.serial})`);
    await expect.poll(() => tap.count()).toBe(0);
    const policy = page.locator('dt', { hasText: 'Key policy' }).locator('xpath=following-sibling::dd[1]');
    expect(await policy.textContent()).toBe('hardware_key_touch (touch cached, PIN never)');
    await expect.poll(() => page.getByRole('alert').allTextContents()).toEqual([]);
    expect(await new ProfileStore(home).getProfile()).toMatchObject({
      user: USER,
      hardwareKey: { slot: '9c', policy: 'hardware_key_touch' },
    });
    for (const [path, content] of Object.entries(homeFiles())) {
      expect(content, `${path} holds a private key`).not.toMatch(/PRIVATE KEY|"d":/);
    }
    await expectAccessible('the account with a hardware key');
    await screenshot('account-hardware-key');
  });
});
