// Issue 12's "What must be shown", in one run: Playwright drives the web UI in Chromium (the cluster CA's pin
// in --ignore-certificate-errors-spki-list, the virtual authenticator holding alice's lab-key credential);
// she signs in and sees the session untrusted; "Verify this browser" gives a keyport:// link that the real
// xdg-open hands (through the private XDG folders' desktop entry and `keyport-connect open-url`) to the
// running Keyport Connect backend (browser host, its window in another Chromium); the app shows the
// authorize screen with the same code; Authorize approves with a real swtpm as the device's TPM; the
// confirm URL opens in the web UI's browser context, and the web page shows the session trusted.
// Screenshots of each step (test-results/web-device-approval-e2e/), axe on every screen.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { launchLabChromium, openAppInChromium, trustClusterCaFlag } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { connectAsAdmin, nextTotpCode, repoRoot, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { connectClusterConfig, signUpWithLabKey } from '../lab/connect';
import type { KeyPerson } from '../lab/connect';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';
import { virtualKeyFromLabKey } from '../lab/web';
import { checkoutLinkHandler, installLinkHandler } from '../lab/xdg';
import type { PrivateXdg } from '../lab/xdg';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { listenForLinks } from '../main/backend/link-socket';
import type { LinkSocket } from '../main/backend/link-socket';

const PIN = '1234';
const ASSET_TAG = 'E2E-LAPTOP-1';
const shots = join(repoRoot, 'test-results', 'web-device-approval-e2e');

let work: string;
let cluster: LabCluster;
let key: SoftKey;
let tpm: LabTpm;
let alice: KeyPerson;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let backend: Backend;
let links: LinkSocket;
let app: AppInChromium;
let xdg: PrivateXdg;
let enrollToken: string;
const opened: string[] = [];

// One numbered series across both windows, in the order of the steps.
let shown: 'web' | 'app' = 'web';
const shot = screenshotter(() => (shown === 'web' ? page : app.page), shots);
const webShot = (name: string) => ((shown = 'web'), shot(name));
const appShot = (name: string) => ((shown = 'app'), shot(name));

function xdgOpen(url: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'xdg-open',
      [url],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...xdg.env, DISPLAY: ':77' }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          output: stdout + stderr,
        }),
    );
  });
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-approve-e2e-'));
  tpm = await startLabTpm();
  cluster = await startLabCluster({
    clusterName: 'approve-e2e',
    configYaml: connectClusterConfig(),
    extraArgs: ['--web-listen', '127.0.0.1:0'],
  });
  const statePath = join(work, 'key.json');
  key = await startSoftKey({ socketPath: join(work, 'key.sock'), statePath, touch: 'auto', pin: PIN });
  const home = join(work, 'connect-home');
  alice = await signUpWithLabKey(cluster, {
    user: 'alice',
    roles: ['access'],
    logins: ['alice'],
    password: 'alice-password-123',
    keySocket: key.socketPath,
    pin: PIN,
    addOtp: true,
  });
  const admin = await connectAsAdmin(cluster);
  try {
    const cap = JSON.parse((await admin.admin.getResource({ kind: 'cap', name: '' })).json) as {
      spec: Record<string, unknown>;
    };
    await admin.admin.createResources({
      documentsJson: [JSON.stringify({ ...cap, spec: { ...cap.spec, device_trust: { mode: 'required' } } })],
      force: true,
    });
    await admin.devices.addDevice({ osType: 'linux', assetTag: ASSET_TAG });
    enrollToken = (await admin.devices.createDeviceEnrollToken({ device: ASSET_TAG, ttlSeconds: 0 })).token;
  } finally {
    admin.close();
  }
  // The web UI's browser: the lab key's credentials in its virtual authenticator.
  browser = await launchLabChromium([trustClusterCaFlag(cluster.caPin)]);
  context = await browser.newContext({ viewport: { width: 1024, height: 720 } });
  page = await context.newPage();
  page.setDefaultTimeout(60_000);
  await virtualKeyFromLabKey(page, statePath);
  // Keyport Connect (browser host) for `home`, whose confirm URLs open in the web UI's browser context.
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: { ...process.env, ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    watchProfiles: false,
    openInBrowser: async (url) => {
      opened.push(url);
      await page.goto(url);
    },
  });
  links = await listenForLinks(home, (link) => backend.openDeepLink(link));
  xdg = await installLinkHandler(join(work, 'xdg'), checkoutLinkHandler(home));
  // The cluster trusted by its pin, signed in, with this device enrolled (as the app's screens do it).
  const trusted = await backend.handlers['clusters.add']({ address: cluster.address, caPin: cluster.caPin });
  expect(trusted.ok, JSON.stringify(trusted)).toBe(true);
  const stop = backend.on('onPrompt', (prompt) => {
    if (prompt.kind !== 'otpCode') return;
    void backend.handlers['prompts.answer']({
      id: prompt.id,
      value: { kind: 'otpCode', code: nextTotpCode(alice.totpSecret ?? '') },
    });
  });
  try {
    const signedIn = await backend.handlers['auth.login']({
      address: cluster.address,
      user: alice.user,
      password: alice.password,
      secondFactor: 'otp',
    });
    expect(signedIn.ok, JSON.stringify(signedIn)).toBe(true);
  } finally {
    stop();
  }
  const enrolled = await backend.handlers['device.enroll']({ cluster: cluster.address, token: enrollToken });
  expect(enrolled.ok, JSON.stringify(enrolled)).toBe(true);
  app = await openAppInChromium(backend, { width: 1000, height: 760 });
}, 240_000);

afterAll(async () => {
  await app?.close();
  await links?.close();
  await backend?.close();
  await browser?.close();
  await key?.stop();
  await cluster?.stop();
  await tpm?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('verifying a browser session with Keyport Connect', () => {
  it('signs in on the web, is untrusted, approves in the app with the TPM, and the web page shows trusted', async () => {
    // 1–2. The web UI: password and the security key; home says untrusted and offers the verification.
    await page.goto(cluster.webOrigin ?? '');
    await page.getByLabel('User name').fill(alice.user);
    await page.getByLabel('Password').fill(alice.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Use my security key' }).click();
    await page.getByRole('heading', { name: 'Signed in as alice' }).waitFor();
    await expect.poll(() => page.getByTestId('device-state').innerText()).toMatch(/^Untrusted/);
    expect(await accessibilityFindings(page)).toEqual([]);
    await webShot('web-untrusted');
    await page.getByRole('button', { name: 'Verify this browser with Keyport Connect' }).click();
    const code = await page.getByTestId('verify-code').innerText();
    expect(code).toMatch(/^\d{3}-\d{3}$/);
    const link = (await page.getByTestId('verify-link').getAttribute('href')) ?? '';
    expect(link).toMatch(/^keyport:\/\/approve-e2e\/authorize-web-session\?/);
    expect(await accessibilityFindings(page)).toEqual([]);
    await webShot('web-link-and-code');

    // 3. The link reaches Keyport Connect through the real xdg-open.
    const handed = await xdgOpen(link);
    expect(handed, handed.output).toMatchObject({ code: 0 });

    // 4. The app's authorize screen shows the same code; Authorize, with the swtpm.
    const screen = app.page.getByRole('region', { name: 'Verify a browser' });
    await screen.waitFor();
    await expect.poll(() => screen.textContent()).toContain(code);
    expect(await screen.textContent()).toContain('alice');
    expect(await app.page.content()).not.toContain(new URL(link).searchParams.get('token') ?? '-');
    expect(await accessibilityFindings(app.page)).toEqual([]);
    await appShot('app-authorize');
    await app.page.getByRole('button', { name: 'Authorize' }).click();
    await app.page.getByText(/Approved by this device \(E2E-LAPTOP-1\)/).waitFor();
    await appShot('app-approved');

    // 5. The confirm URL opened in the web UI's browser context: the page comes back trusted.
    expect(opened).toHaveLength(1);
    expect(new URL(opened[0]!).origin).toBe(cluster.webOrigin);
    await page.getByRole('heading', { name: 'Signed in as alice' }).waitFor();
    await expect.poll(() => page.getByTestId('device-state').innerText()).toBe(`Trusted device ${ASSET_TAG}`);
    expect(page.url()).toBe(`${cluster.webOrigin}/`);
    expect(await accessibilityFindings(page)).toEqual([]);
    await webShot('web-trusted');
  }, 180_000);
});
