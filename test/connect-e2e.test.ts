// Keyport Connect end to end: the built renderer in Debian's Chromium (driven by playwright-core),
// through the browser host and the real backend, against a real keyport-auth, two lab security keys that
// wait for the test to touch them, and the keychain on a private gnome-keyring. Every step saves a
// screenshot under test-results/connect-e2e/ and every screen is checked with axe-core.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { ProfileStore } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { nextTotpCode, repoRoot, runKeyport, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { connectClusterConfig, signUpWithLabKey } from '../lab/connect';
import type { KeyPerson } from '../lab/connect';
import { openAppInChromium } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { startLabKeyring } from '../lab/keyring';
import type { LabKeyring } from '../lab/keyring';
import { startSoftKey, touchingWhile as touching } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';

const PIN = '1234';
const shots = join(repoRoot, 'test-results', 'connect-e2e');

let work: string;
let cluster: LabCluster;
let keyA: SoftKey;
let keyB: SoftKey;
let keyring: LabKeyring;
let backend: Backend;
let app: AppInChromium;
let page: Page;
/** Console warnings and errors, and failed requests, of the first load. */
const firstLoadNoise: string[] = [];
let alice: KeyPerson;
let home: string;

/** Resolves when `key` next waits for a touch. */
function waitsForTouch(key: SoftKey): Promise<void> {
  return new Promise((resolve) => key.events.once('up-needed', () => resolve()));
}

const screenshot = screenshotter(() => page, shots);

/** axe-core on what is on screen now: no serious or critical finding. */
async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

const dialog = (name: string) => page.getByRole('dialog', { name });
const button = (name: string) => page.getByRole('button', { name, exact: true });

/** Presses Tab until the focused element has this text or label: proves it is reachable by keyboard. */
async function tabTo(name: string) {
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    // Evaluated in the page (a string: this file is type-checked without the DOM library).
    const focused = await page.evaluate<string>(`(() => {
      const active = document.activeElement;
      const label = active && active.id ? document.querySelector('label[for="' + active.id + '"]') : null;
      return ((active && active.getAttribute('aria-label')) || (label && label.textContent) ||
        (active && active.textContent) || '').trim();
    })()`);
    if (focused === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-e2e-'));
  home = join(work, 'home');
  cluster = await startLabCluster({ clusterName: 'e2e', configYaml: connectClusterConfig() });
  keyA = await startSoftKey({
    socketPath: join(work, 'a.sock'),
    statePath: join(work, 'a.json'),
    touch: 'manual',
    pin: PIN,
  });
  keyB = await startSoftKey({
    socketPath: join(work, 'b.sock'),
    statePath: join(work, 'b.json'),
    touch: 'manual',
  });
  alice = await touching(keyA, () =>
    signUpWithLabKey(cluster, {
      user: 'alice',
      roles: ['access', 'editor'],
      logins: ['alice', 'root'],
      password: 'alice-password-123',
      keySocket: keyA.socketPath,
      pin: PIN,
      addOtp: true,
    }),
  );
  keyring = await startLabKeyring();
  process.env.DBUS_SESSION_BUS_ADDRESS = keyring.env.DBUS_SESSION_BUS_ADDRESS;
  process.env[LAB_SECURITY_KEY_ENV] = `${keyA.socketPath}:${keyB.socketPath}`;
  backend = createBackend({ profiles: new ProfileStore(home), keystoreKind: 'keychain' });
  await backend.ready;
  app = await openAppInChromium(backend, { width: 1100, height: 760 }, (page) => {
    // What the first load says in the console or fails to fetch: nothing, on a clean start.
    page.on('console', (message) => {
      if (['warning', 'error'].includes(message.type()))
        firstLoadNoise.push(`${message.type()}: ${message.text()}`);
    });
    page.on('response', (response) => {
      if (response.status() >= 400) firstLoadNoise.push(`${response.status()} ${response.url()}`);
    });
  });
  page = app.page;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await backend?.close();
  await keyring?.stop();
  await keyA?.stop();
  await keyB?.stop();
  await cluster?.stop();
  delete process.env[LAB_SECURITY_KEY_ENV];
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect, end to end', () => {
  it('adds a cluster by trusting its CA pin on first use', async () => {
    await expect
      .poll(() => page.getByText('No clusters yet. Add one by its address.').isVisible())
      .toBe(true);
    // No console warning (an unknown Permissions-Policy feature) and no 404 (a favicon) on the first load.
    expect(firstLoadNoise).toEqual([]);
    page.removeAllListeners('console');
    page.removeAllListeners('response');
    await expectAccessible('the empty clusters screen');
    await screenshot('no-clusters');
    // A pasted pin that is not the cluster's: refused loudly, nothing trusted.
    await page.getByLabel('Cluster address').fill(cluster.address);
    await page.getByLabel('CA pin (optional)').fill(`sha256:${'0'.repeat(64)}`);
    await button('Add cluster').click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/CA/);
    expect(await new ProfileStore(home).listTrustedClusters()).toEqual([]);
    await expectAccessible('a CA pin mismatch');
    await screenshot('ca-pin-mismatch');
    await page.getByLabel('CA pin (optional)').fill('');
    await button('Add cluster').click();
    const trust = dialog('Trust this cluster?');
    await trust.waitFor();
    await expect.poll(() => trust.getByText(cluster.caPin).isVisible()).toBe(true);
    await expectAccessible('the trust dialog');
    await screenshot('trust-ca-pin');
    await trust.getByRole('button', { name: 'Trust', exact: true }).click();
    const list = page.getByRole('list', { name: 'Trusted clusters' });
    await expect.poll(() => list.getByText(cluster.address).isVisible()).toBe(true);
    const trusted = await new ProfileStore(home).listTrustedClusters();
    expect(trusted.map((c) => [c.address, c.caPin])).toEqual([[cluster.address, cluster.caPin]]);
    await expectAccessible('the cluster list');
    await screenshot('cluster-added');
    await button('Sign in to e2e').click();
    await page.getByRole('heading', { name: 'Sign in to e2e' }).waitFor();
    await expectAccessible('the login screen');
    await screenshot('login-screen');
    await page.emulateMedia({ colorScheme: 'dark' });
    await expectAccessible('the login screen in dark mode');
    await screenshot('login-screen-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('refuses a wrong password with a message that says what to do', async () => {
    await page.getByLabel('User', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await page.getByRole('radio', { name: 'Security key' }).check();
    await button('Sign in').click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/user name or password/i);
    expect(await dialog('Security key').count()).toBe(0);
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    await expectAccessible('a login error');
    await screenshot('wrong-password');
  });

  it('signs in with password + security key: the tap prompt shows only while the key waits', async () => {
    await page.getByLabel('Password', { exact: true }).fill(alice.password);
    const before = await button('Sign in').boundingBox();
    // When the key started waiting, and when the backend raised the tap prompt.
    let keyWaitingAt = 0;
    let promptAt = 0;
    const waiting = waitsForTouch(keyA).then(() => (keyWaitingAt = performance.now()));
    const stopWatching = backend.on('onPrompt', (prompt) => {
      if (prompt.kind === 'tapKey' && !promptAt) promptAt = performance.now();
    });
    await button('Sign in').click();
    await waiting;
    const tap = dialog('Security key');
    await tap.waitFor();
    stopWatching();
    // The prompt comes from the key's KEEPALIVE "user presence needed", never before the key waits.
    expect(promptAt).toBeGreaterThanOrEqual(keyWaitingAt);
    await expect.poll(() => tap.getByText('Tap any security key').isVisible()).toBe(true);
    await expectAccessible('the tap prompt');
    // Waiting moves nothing: the button keeps its place and size.
    expect(await button('Sign in').boundingBox()).toEqual(before);
    await screenshot('tap-prompt');
    expect(keyA.touch('approve')).toBe(true);
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    // …and it closes once the key has been touched.
    expect(await tap.count()).toBe(0);
    await expect.poll(() => page.getByText('Signed in as alice').isVisible()).toBe(true);
    const profile = await new ProfileStore(home).getProfile();
    expect(profile).toMatchObject({ user: 'alice', keystore: 'keychain', mfaVerified: true });
    await expect.poll(() => page.getByText(/\d+ h \d+ min left/).isVisible()).toBe(true);
    await expectAccessible('the account screen');
    await screenshot('account');
  });

  it('signs out', async () => {
    await button('Sign out').click();
    await page.getByRole('heading', { name: 'Sign in to e2e' }).waitFor();
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    await expectAccessible('the login screen after signing out');
    await screenshot('signed-out');
  });

  it('signs in with password + one-time code', async () => {
    await page.getByLabel('User', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill(alice.password);
    await page.getByRole('radio', { name: 'One-time code' }).check();
    await button('Sign in').click();
    const otp = dialog('One-time code');
    await otp.waitFor();
    await expectAccessible('the OTP prompt');
    await screenshot('otp-prompt');
    await otp.getByLabel('Code').fill(nextTotpCode(alice.totpSecret!));
    await otp.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Account' }).waitFor();
    expect(await new ProfileStore(home).getProfile()).toMatchObject({ user: 'alice' });
    await screenshot('account-after-otp');
  });

  it('adds a second key: the existing key, then the new one, then its name', async () => {
    const devices = page.getByRole('list', { name: 'MFA devices' });
    await expect.poll(() => devices.getByText(alice.keyName).isVisible()).toBe(true);
    const existing = waitsForTouch(keyA);
    await button('Add security key').click();
    await existing;
    await dialog('Security key').waitFor();
    await screenshot('add-key-existing');
    const fresh = waitsForTouch(keyB);
    keyA.touch('approve');
    await fresh;
    await expect
      .poll(() => dialog('Security key').getByText('Tap your new security key').isVisible())
      .toBe(true);
    await expectAccessible('the new-key tap prompt');
    await screenshot('add-key-new');
    keyB.touch('approve');
    const naming = dialog('Name the new key');
    await naming.waitFor();
    await expectAccessible('the name prompt');
    await naming.getByLabel('Key name').fill('backup key');
    await screenshot('add-key-name');
    await naming.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByText('Security key "backup key" added.').isVisible()).toBe(true);
    await expect.poll(() => devices.getByText('backup key').isVisible()).toBe(true);
    await screenshot('key-added');
  });

  it('cancels a tap: the prompt closes, the key sees CANCEL and nothing changes', async () => {
    await button('Sign out').click();
    await page.getByRole('heading', { name: 'Sign in to e2e' }).waitFor();
    await page.getByLabel('User', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill(alice.password);
    await page.getByRole('radio', { name: 'Security key' }).check();
    const waiting = waitsForTouch(keyA);
    await button('Sign in').click();
    await waiting;
    const cancelled = new Promise<void>((resolve) => keyA.events.once('cancelled', () => resolve()));
    await dialog('Security key').getByRole('button', { name: 'Cancel' }).click();
    await cancelled;
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/cancelled/i);
    expect(await dialog('Security key').count()).toBe(0);
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    await screenshot('tap-cancelled');
  });

  it('signs in without a password, with the key’s PIN', async () => {
    const waiting = waitsForTouch(keyA);
    await button('Sign in without a password').click();
    await waiting;
    await touching(keyA, async () => {
      keyA.touch('approve');
      const pin = dialog('Security key PIN');
      await pin.waitFor();
      await expectAccessible('the PIN prompt');
      await screenshot('pin-prompt');
      await pin.getByLabel('PIN', { exact: true }).fill(PIN);
      await pin.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('heading', { name: 'Account' }).waitFor();
    });
    expect(await new ProfileStore(home).getProfile()).toMatchObject({ user: 'alice', mfaVerified: true });
    await expectAccessible('the account after a passwordless login');
    await screenshot('passwordless-account');
  });

  it('removes a key after confirming and proving an existing one', async () => {
    const devices = page.getByRole('list', { name: 'MFA devices' });
    await expect.poll(() => devices.getByText('backup key').isVisible()).toBe(true);
    await button('Remove backup key').click();
    const confirm = dialog('Remove backup key?');
    await confirm.waitFor();
    await expectAccessible('the remove confirmation');
    await screenshot('remove-confirm');
    await touching(keyA, async () => {
      await confirm.getByRole('button', { name: 'Remove', exact: true }).click();
      await expect.poll(() => devices.getByText('backup key').count()).toBe(0);
    });
    await expect.poll(() => devices.getByText(alice.keyName).isVisible()).toBe(true);
    await screenshot('key-removed');
  });

  it('shows a logout made by the keyport CLI', async () => {
    expect(await new ProfileStore(home).getProfile()).toBeDefined();
    const logout = await runKeyport(['logout'], { home });
    expect(logout.code, logout.stderr).toBe(0);
    // How soon is measured in bench/profile-watch.bench.ts; here the screen itself is waited for.
    await page.getByRole('heading', { name: 'Sign in to e2e' }).waitFor({ timeout: 20_000 });
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    await screenshot('cli-logout');
  });

  it('signs in without a password using the keyboard only', async () => {
    await tabTo('Sign in without a password');
    await touching(keyA, async () => {
      await page.keyboard.press('Enter');
      const pin = dialog('Security key PIN');
      await pin.waitFor();
      // The dialog puts the focus in its PIN field.
      await page.keyboard.type(PIN);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Account' }).waitFor();
    });
    await tabTo('Sign out');
    // Focus is visible: the focused control draws an outline (or a focus ring) of its own.
    const ring = await page.evaluate<string>(
      `(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.boxShadow; })()`,
    );
    expect(ring).not.toMatch(/^none 0px none$/);
    expect(ring.startsWith('none') && ring.endsWith('none')).toBe(false);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Sign in to e2e' }).waitFor();
    await screenshot('keyboard-only');
  });
});
