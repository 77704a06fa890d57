// The web UI end to end: keyport-auth's web listener over real HTTPS, Debian's Chromium trusting the
// cluster CA by its pin (--ignore-certificate-errors-spki-list), and Chromium's virtual authenticator
// holding the credential alice signed up with on the lab security key. Signs in with password + security
// key, with password + OTP, and passwordless; the home screen shows who she is and that this browser is
// untrusted; signing out ends the session server side. axe on every screen, screenshots in test-results/.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTotpCode, openClusterDb, repoRoot, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { connectClusterConfig, signUpWithLabKey } from '../lab/connect';
import type { KeyPerson } from '../lab/connect';
import { launchLabChromium, trustClusterCaFlag } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { startSoftKey } from '../lab/security-key/soft-key';
import type { SoftKey } from '../lab/security-key/soft-key';
import { virtualKeyFromLabKey, webClient } from '../lab/web';
import { authenticate } from '../client/webauthn/ceremony';
import { closeKeys, openKeys } from '../client/webauthn/keys';
import { WEBAPI } from '../proto/webapi';

const PIN = '1234';
const shots = join(repoRoot, 'test-results', 'web-ui-e2e');

let work: string;
let cluster: LabCluster;
let key: SoftKey;
let alice: KeyPerson;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

const screenshot = screenshotter(() => page, shots);

async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

function sessionCount(): number {
  const db = openClusterDb(cluster);
  try {
    return (db.prepare("SELECT count(*) AS n FROM web_sessions WHERE user = 'alice'").get() as { n: number })
      .n;
  } finally {
    db.close();
  }
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect.poll(() => page.getByRole('heading', { name: /Sign in to/ }).isVisible()).toBe(true);
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-web-e2e-'));
  cluster = await startLabCluster({
    clusterName: 'web-e2e',
    configYaml: connectClusterConfig(),
    extraArgs: ['--web-listen', '127.0.0.1:0'],
  });
  const statePath = join(work, 'key.json');
  key = await startSoftKey({ socketPath: join(work, 'key.sock'), statePath, touch: 'auto', pin: PIN });
  alice = await signUpWithLabKey(cluster, {
    user: 'alice',
    roles: ['access', 'editor'],
    logins: ['alice', 'root'],
    password: 'alice-password-123',
    keySocket: key.socketPath,
    pin: PIN,
    addOtp: true,
  });
  // The browser holds the lab key's credentials from here on; the lab key itself answers only for the
  // wrong-origin test, in this process.
  browser = await launchLabChromium([trustClusterCaFlag(cluster.caPin)]);
  context = await browser.newContext({ viewport: { width: 1024, height: 720 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  await virtualKeyFromLabKey(page, statePath);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await key?.stop();
  await cluster?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the web UI in Chromium', () => {
  it('signs in with a password and the security key, and shows who is signed in, untrusted', async () => {
    await page.goto(cluster.webOrigin ?? '');
    await expect.poll(() => page.getByRole('heading', { name: 'Sign in to web-e2e' }).isVisible()).toBe(true);
    await expectAccessible('the sign-in screen');
    await screenshot('sign-in');

    await page.getByLabel('User name').fill(alice.user);
    await page.getByLabel('Password').fill(alice.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Use my security key' }).isVisible()).toBe(true);
    await expectAccessible('the second-factor screen');
    await screenshot('second-factor');

    await page.getByRole('button', { name: 'Use my security key' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Signed in as alice' }).isVisible()).toBe(true);
    const text = await page.locator('main').innerText();
    expect(text).toContain('access, editor');
    expect(text).toContain('alice, root');
    expect(text).toContain('password and security key');
    expect(text).toContain('lab key');
    await expect.poll(() => page.getByTestId('device-state').innerText()).toMatch(/^Untrusted/);
    await expectAccessible('the home screen');
    await screenshot('home');

    // The cookie, as the browser keeps it: not readable by the page, sent only to this origin over TLS.
    const cookies = await context.cookies();
    expect(cookies).toEqual([
      expect.objectContaining({
        name: '__Host-keyport_session',
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
        path: '/',
        domain: 'localhost',
      }),
    ]);
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(sessionCount()).toBe(1);

    await signOut();
    await expect.poll(() => page.getByRole('alert').innerText()).toContain('You are signed out.');
    await expectAccessible('the signed-out screen');
    await screenshot('signed-out');
    expect(sessionCount()).toBe(0);
    expect(await context.cookies()).toEqual([]);
  });

  it('signs in with a password and an OTP code', async () => {
    await page.getByLabel('User name').fill(alice.user);
    await page.getByLabel('Password').fill(alice.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const totpSecret = alice.totpSecret ?? '';
    await page.getByLabel('Code from your authenticator app').fill(nextTotpCode(totpSecret));
    await page.getByRole('button', { name: 'Verify code' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Signed in as alice' }).isVisible()).toBe(true);
    expect(await page.locator('main').innerText()).toContain('password and OTP');
    await signOut();
  });

  it('shows a wrong password as an error, and signs in passwordless with the passkey', async () => {
    await page.getByLabel('User name').fill(alice.user);
    await page.getByLabel('Password').fill('not her password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').innerText()).toContain('Invalid user name or password.');
    await expectAccessible('the sign-in screen with an error');
    await screenshot('wrong-password');

    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Signed in as alice' }).isVisible()).toBe(true);
    expect(await page.locator('main').innerText()).toContain('passwordless');
    expect(sessionCount()).toBe(1);
    await signOut();
    expect(sessionCount()).toBe(0);
  });

  it("refuses a security key's answer made for another origin (the CLI's, on the gRPC port): no session, a failed sign-in", async () => {
    const web = await webClient(cluster);
    const challenge = await web.request('POST', WEBAPI.challenge, {
      body: { user: alice.user, password: alice.password },
    });
    expect(challenge.status).toBe(200);
    const keys = await openKeys({ env: { KEYPORT_LAB_SECURITY_KEY: key.socketPath } });
    let answer: unknown;
    try {
      answer = await authenticate(challenge.json.webauthn as never, {
        origin: `https://localhost:${cluster.port}`,
        keys,
        prompts: { tap: () => {}, pin: async () => PIN, newPin: async () => PIN },
      });
    } finally {
      await closeKeys(keys);
    }
    const refused = await web.request('POST', WEBAPI.login, {
      body: { challengeId: challenge.json.challengeId, webauthn: answer },
    });
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({
      code: 'MFA_FAILED',
      message: expect.stringContaining(`https://localhost:${cluster.port}`),
    });
    expect(sessionCount()).toBe(0);
    const db = openClusterDb(cluster);
    try {
      const failed = db
        .prepare(
          "SELECT message FROM audit_events WHERE type = 'user.login' AND actor = 'alice' AND success = 0",
        )
        .all() as { message: string }[];
      expect(failed.map((row) => row.message)).toEqual(
        expect.arrayContaining([expect.stringContaining('not this cluster')]),
      );
    } finally {
      db.close();
    }
  });

  it('loaded without a CSP violation or a page error', () => {
    expect(pageErrors.filter((line) => !/401|403/.test(line))).toEqual([]);
  });
});
