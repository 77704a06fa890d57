// Keyport Connect's SSO login end to end: the built renderer in Debian's Chromium through the browser host and
// the real backend, a real keyport-auth (--web-listen, the IdP's CA in oidc_ca_file), the lab IdP, and the
// keychain on a private gnome-keyring. The "system browser" is a second Chromium (its own profile, trusting
// only the cluster's and the IdP's lab CAs) that the backend's injected opener drives: the IdP's real login
// page refuses a wrong password, takes the right one, and the browser goes through keyport-auth's callback
// to the app's loopback address. Also Cancel on the waiting prompt. Screenshots in test-results/connect-sso-e2e/.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { launchLabChromium, openAppInChromium, trustClusterCaFlag } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { repoRoot, runAdmin } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { folderSnapshot } from '../lab/folder-snapshot';
import { startLabKeyring } from '../lab/keyring';
import type { LabKeyring } from '../lab/keyring';
import { startIdpAndCluster } from '../lab/oidc/sso-lab';
import type { LabOidcProvider } from '../lab/oidc/provider';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';

const CLIENT_ID = 'keyport-connect-e2e';
const CLIENT_SECRET = 'keyport-connect-e2e-secret';
const shots = join(repoRoot, 'test-results', 'connect-sso-e2e');

let work: string;
let home: string;
let idp: LabOidcProvider;
let cluster: LabCluster;
let keyring: LabKeyring;
let backend: Backend;
let app: AppInChromium;
let page: Page;
/** The person's browser, where the backend opens the IdP's page. */
let systemBrowser: Browser;
let browserPage: Page;
const opened: string[] = [];

const screenshot = screenshotter(() => page, shots);
const browserShot = screenshotter(() => browserPage, shots);
const button = (name: string) => page.getByRole('button', { name, exact: true });
const dialog = (name: string) => page.getByRole('dialog', { name });

async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

/** Chromium's --ignore-certificate-errors-spki-list entry for a CA certificate: base64 SHA-256 of its SPKI. */
function spkiHash(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-sso-e2e-'));
  home = join(work, 'home');
  const started = await startIdpAndCluster(work, {
    clusterName: 'sso-e2e',
    authentication: ['    type: local', '    second_factor: "off"'],
    client: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
  });
  ({ idp, cluster } = started);
  const redirectUri = started.redirectUri;
  await writeFile(
    join(work, 'sso.yaml'),
    [
      'kind: role\nversion: v7\nmetadata:\n  name: member\nspec:\n  allow:\n    logins: [member]\n',
      'kind: role\nversion: v7\nmetadata:\n  name: team-platform\nspec:\n  allow:\n    logins: [platform]\n',
      [
        'kind: oidc',
        'version: v3',
        'metadata:',
        '  name: lab',
        'spec:',
        `  issuer_url: ${idp.issuer}`,
        `  client_id: ${CLIENT_ID}`,
        `  client_secret: ${CLIENT_SECRET}`,
        `  redirect_url: ${redirectUri}`,
        '  display: Lab IdP',
        '  scope: [email, profile, groups]',
        '  claims_to_roles:',
        '    - {claim: groups, value: admins, roles: [editor]}',
        '    - {claim: groups, value: "team-*", roles: [member]}',
        '    - {claim: groups, value: "^team-(.*)$", roles: ["team-$1"]}',
        '',
      ].join('\n'),
    ].join('---\n'),
  );
  const created = await runAdmin(cluster, ['create', '-f', join(work, 'sso.yaml')]);
  expect(created.code, created.stderr).toBe(0);

  keyring = await startLabKeyring();
  process.env.DBUS_SESSION_BUS_ADDRESS = keyring.env.DBUS_SESSION_BUS_ADDRESS;
  // The person's browser: trusts the cluster CA (keyport-auth's callback) and the IdP's lab CA, nothing more.
  systemBrowser = await launchLabChromium([`${trustClusterCaFlag(cluster.caPin)},${spkiHash(idp.caPem)}`]);
  browserPage = await (await systemBrowser.newContext({ viewport: { width: 900, height: 700 } })).newPage();
  browserPage.setDefaultTimeout(60_000);
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'keychain',
    openInBrowser: async (url) => {
      opened.push(url);
      await browserPage.goto(url);
    },
  });
  await backend.ready;
  app = await openAppInChromium(backend, { width: 1000, height: 760 });
  page = app.page;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await backend?.close();
  await systemBrowser?.close();
  await keyring?.stop();
  await cluster?.stop();
  await idp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect: Sign in with Lab IdP, end to end', () => {
  it('trusts the cluster on first use and offers "Sign in with Lab IdP" on its login screen', async () => {
    await expect
      .poll(() => page.getByText('No clusters yet. Add one by its address.').isVisible())
      .toBe(true);
    await page.getByLabel('Cluster address').fill(cluster.address);
    await button('Add cluster').click();
    const trust = dialog('Trust this cluster?');
    await trust.waitFor();
    await trust.getByRole('button', { name: 'Trust', exact: true }).click();
    await button('Sign in to sso-e2e').click();
    await page.getByRole('heading', { name: 'Sign in to sso-e2e' }).waitFor();
    const sso = page.getByRole('group', { name: 'Single sign-on' });
    await sso.getByRole('button', { name: 'Sign in with Lab IdP' }).waitFor();
    expect(await sso.getByRole('button').allTextContents()).toEqual(['Sign in with Lab IdP']);
    await expectAccessible('the login screen with an SSO connector');
    await screenshot('login-with-sso');
  });

  it('signs in at the IdP in the browser (a wrong password refused first) and shows the account with the mapped roles', async () => {
    await button('Sign in with Lab IdP').click();
    const waiting = dialog('Sign in with Lab IdP');
    await waiting.waitFor();
    await expect
      .poll(() => waiting.textContent())
      .toContain('Continue in your browser: sign in with Lab IdP on the page that opened.');
    await expectAccessible('the waiting prompt');
    await screenshot('waiting-for-browser');

    // The IdP's real login page, opened by the backend in the person's browser.
    expect(opened).toHaveLength(1);
    expect(opened[0]!.startsWith(`${idp.issuer}/auth?`)).toBe(true);
    await browserPage.getByRole('heading', { name: 'Keyport Lab IdP: sign in' }).waitFor();
    await browserPage.getByLabel('User name').fill('alice');
    await browserPage.getByLabel('Password').fill('not-alices-password');
    await browserPage.getByRole('button', { name: 'Sign in' }).click();
    await expect
      .poll(() => browserPage.getByRole('alert').textContent())
      .toBe('Wrong user name or password.');
    await browserShot('idp-wrong-password');
    expect(idp.logins()).toEqual([]);
    // Still waiting in the app, nothing saved.
    expect(await waiting.isVisible()).toBe(true);
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();

    await browserPage.getByLabel('User name').fill('alice');
    await browserPage.getByLabel('Password').fill('alice-lab-password');
    await browserPage.getByRole('button', { name: 'Sign in' }).click();
    // The IdP → keyport-auth's callback → the app's loopback address, which answers once it has signed in.
    await expect
      .poll(() => browserPage.locator('body').textContent())
      .toContain('Signed in to sso-e2e. You can close this tab.');
    const tab = new URL(browserPage.url());
    expect(tab.protocol).toBe('http:');
    expect(tab.hostname).toBe('127.0.0.1');
    await browserShot('browser-signed-in');

    await page.getByRole('heading', { name: 'Account' }).waitFor();
    expect(await dialog('Sign in with Lab IdP').count()).toBe(0);
    await expect.poll(() => page.getByText('Signed in as alice@keyport.lab').isVisible()).toBe(true);
    await expect.poll(() => page.getByText('editor, member, team-platform').isVisible()).toBe(true);
    const profile = await new ProfileStore(home).getProfile();
    expect(profile).toMatchObject({ user: 'alice@keyport.lab', keystore: 'keychain', mfaVerified: false });
    expect([...(profile?.roles ?? [])].sort()).toEqual(['editor', 'member', 'team-platform']);
    await expectAccessible('the account after an SSO login');
    await screenshot('account-after-sso');
  });

  it('Cancel on the waiting prompt ends the login: "Cancelled. Nothing was changed." and nothing saved', async () => {
    await button('Sign out').click();
    await page.getByRole('heading', { name: 'Sign in to sso-e2e' }).waitFor();
    const before = folderSnapshot(home);
    // A fresh browser session at the IdP, so its login page shows again.
    await browserPage.context().clearCookies();
    await button('Sign in with Lab IdP').click();
    const waiting = dialog('Sign in with Lab IdP');
    await waiting.waitFor();
    await browserPage.getByRole('heading', { name: 'Keyport Lab IdP: sign in' }).waitFor();
    await waiting.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('Cancelled. Nothing was changed.');
    expect(await waiting.count()).toBe(0);
    expect(await button('Sign in with Lab IdP').isEnabled()).toBe(true);
    await expectAccessible('a cancelled SSO login');
    await screenshot('sso-cancelled');
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    expect(folderSnapshot(home)).toEqual(before);

    // Signing in at the IdP afterwards leads nowhere: the loopback listener is gone.
    await browserPage.getByLabel('User name').fill('alice');
    await browserPage.getByLabel('Password').fill('alice-lab-password');
    await browserPage
      .getByRole('button', { name: 'Sign in' })
      .click()
      .catch(() => {});
    await expect.poll(() => browserPage.url()).toMatch(/^(chrome-error:|http:\/\/127\.0\.0\.1:)/);
    expect(await new ProfileStore(home).getProfile()).toBeUndefined();
    expect(folderSnapshot(home)).toEqual(before);
  });
});
