// The web UI's "Sign in with Lab IdP" end to end in Debian's Chromium: keyport-auth's web listener and the
// lab IdP over real HTTPS (each trusted by its CA's pin), the IdP on 127.0.0.1 and the web UI on
// localhost, so the IdP's redirect back is a navigation from another site, as with a real IdP: the
// binding cookie must come back on it (SameSite=Lax) and the session cookie must work after it (Strict).
// Click the button, sign in on the IdP's page, land signed in. axe on the sign-in page with the button and
// on the home; screenshots in test-results/web-sso-e2e/.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:tls';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClusterDb, repoRoot, runAdmin } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { launchLabChromium } from '../lab/chromium';
import { startIdpAndCluster } from '../lab/oidc/sso-lab';
import type { LabOidcProvider } from '../lab/oidc/provider';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';

const shots = join(repoRoot, 'test-results', 'web-sso-e2e');

let work: string;
let idp: LabOidcProvider;
let cluster: LabCluster;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

const screenshot = screenshotter(() => page, shots);

async function expectAccessible(what: string) {
  expect(await accessibilityFindings(page), `axe on ${what}`).toEqual([]);
}

/**
 * Chromium's --ignore-certificate-errors-spki-list entry for the certificate a TLS server presents: base64
 * SHA-256 of its SPKI. The lab IdP sends its leaf alone, so the pin is the leaf's (its CA's is never seen).
 */
async function presentedSpkiPin(address: string, caPem: string): Promise<string> {
  const url = new URL(address);
  const der = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), ca: caPem }, () => {
      resolve(socket.getPeerCertificate().raw);
      socket.end();
    });
    socket.once('error', reject);
  });
  const spki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-web-sso-e2e-'));
  const started = await startIdpAndCluster(work, {
    clusterName: 'web-sso-e2e',
    authentication: ['    type: local', '    second_factors: [otp]'],
  });
  ({ idp, cluster } = started);
  const redirectUri = started.redirectUri;
  const documents = join(work, 'lab.yaml');
  await writeFile(
    documents,
    [
      'kind: role\nversion: v7\nmetadata:\n  name: member\nspec:\n  allow:\n    logins: [member]\n',
      [
        'kind: oidc',
        'version: v3',
        'metadata:',
        '  name: lab',
        'spec:',
        `  issuer_url: ${idp.issuer}`,
        '  client_id: keyport-lab',
        '  client_secret: keyport-lab-client-secret',
        `  redirect_url: ${redirectUri}`,
        '  display: Lab IdP',
        '  scope: [email, profile, groups]',
        '  claims_to_roles:',
        '    - {claim: groups, value: admins, roles: [editor]}',
        '    - {claim: groups, value: "team-*", roles: [member]}',
        '',
      ].join('\n'),
    ].join('---\n'),
  );
  const created = await runAdmin(cluster, ['create', '-f', documents]);
  expect(created.code, created.stderr).toBe(0);

  const clusterPin = Buffer.from(cluster.caPin.replace(/^sha256:/, ''), 'hex').toString('base64');
  const idpPin = await presentedSpkiPin(idp.issuer, idp.caPem);
  browser = await launchLabChromium([`--ignore-certificate-errors-spki-list=${clusterPin},${idpPin}`]);
  context = await browser.newContext({ viewport: { width: 1024, height: 720 } });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
  await idp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Sign in with Lab IdP in Chromium', () => {
  it('click the button, sign in on the IdP page, land signed in on the web UI', async () => {
    await page.goto(cluster.webOrigin ?? '');
    const button = page.getByRole('button', { name: 'Sign in with Lab IdP' });
    await expect.poll(() => button.isVisible()).toBe(true);
    await expectAccessible('the sign-in screen with the SSO button');
    await screenshot('sign-in');

    await button.click();
    await expect.poll(() => new URL(page.url()).origin).toBe(idp.issuer);
    await expect.poll(() => page.getByLabel('User name').isVisible()).toBe(true);
    await screenshot('idp-login');
    await page.getByLabel('User name').fill('bob');
    await page.getByLabel('Password').fill('bob-lab-password');
    await page.getByRole('button', { name: 'Sign in' }).click();

    await expect
      .poll(() => page.getByRole('heading', { name: 'Signed in as bob@keyport.lab' }).isVisible(), {
        timeout: 30_000,
      })
      .toBe(true);
    expect(new URL(page.url()).href).toBe(`${cluster.webOrigin}/`);
    const text = await page.locator('main').innerText();
    expect(text).toContain('SSO (Lab IdP)');
    expect(text).toContain('member');
    await expectAccessible('the home screen after SSO');
    await screenshot('home');

    // The session cookie as the browser keeps it; the binding cookie is gone; the page reads neither.
    const cookies = (await context.cookies(cluster.webOrigin)).map(
      ({ name, httpOnly, secure, sameSite }) => ({
        name,
        httpOnly,
        secure,
        sameSite,
      }),
    );
    expect(cookies).toEqual([
      { name: '__Host-keyport_session', httpOnly: true, secure: true, sameSite: 'Strict' },
    ]);
    expect(await page.evaluate('document.cookie')).toBe('');
    const db = openClusterDb(cluster);
    try {
      expect(
        db.prepare("SELECT login_method FROM web_sessions WHERE user = 'bob@keyport.lab'").all(),
      ).toEqual([{ login_method: 'SSO (Lab IdP)' }]);
    } finally {
      db.close();
    }
  });

  it('loaded without a CSP violation or a page error', () => {
    expect(pageErrors.filter((line) => !/401|403/.test(line))).toEqual([]);
  });
});
