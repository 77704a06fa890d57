// The Servers view of Keyport Connect, end to end: the built renderer in Debian's Chromium (playwright-core)
// through the browser host and the real backend, a real keyport-auth holding node resources and roles. The
// person signs in, opens Servers and sees the nodes their roles reach (deny winning) with their labels and
// logins, then searches them. Every step saves a screenshot under test-results/connect-servers-e2e/ and
// is checked with axe-core.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { ProfileStore } from '../client/profiles';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { openAppInChromium } from '../lab/chromium';
import type { AppInChromium } from '../lab/chromium';
import { accessibilityFindings, screenshotter } from '../lab/page-checks';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { connectAsAdmin, repoRoot, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';

const shots = join(repoRoot, 'test-results', 'connect-servers-e2e');

const node = (name: string, labels: Record<string, string>, port: number) =>
  JSON.stringify({
    kind: 'node',
    version: 'v2',
    sub_kind: 'openssh',
    metadata: { name, labels },
    spec: { addr: `127.0.0.1:${port}` },
  });
const role = (name: string, spec: object) =>
  JSON.stringify({ kind: 'role', version: 'v7', metadata: { name }, spec });

let work: string;
let clock: LabClock;
let cluster: LabCluster;
let person: SignedUpUser;
let backend: Backend;
let app: AppInChromium;
let page: Page;

const screenshot = screenshotter(() => page, shots);
const button = (name: string) => page.getByRole('button', { name, exact: true });
const rowNames = () => page.getByRole('table').getByRole('rowheader').allTextContents();

beforeAll(async () => {
  await mkdir(shots, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'kp-servers-e2e-'));
  clock = createLabClock();
  cluster = await startLabCluster({
    clusterName: 'servers-e2e',
    configYaml: 'auth_service:\n  authentication:\n    type: local\n    second_factor: otp\n',
    env: clock.env,
  });
  const admin = await connectAsAdmin(cluster);
  try {
    await admin.admin.createResources({
      documentsJson: [
        role('servers-dev', { allow: { logins: ['{{internal.logins}}'], node_labels: { env: 'dev' } } }),
        role('servers-prod', {
          allow: { logins: ['viewer'], node_labels: { env: 'prod' } },
          deny: { node_labels: { tier: 'db' } },
        }),
        node('web-dev', { env: 'dev', team: 'web' }, 2201),
        node('api-dev', { env: 'dev', team: 'api' }, 2202),
        node('web-prod', { env: 'prod', team: 'web' }, 2203),
        node('db-prod', { env: 'prod', tier: 'db' }, 2204),
      ],
      force: false,
    });
  } finally {
    admin.close();
  }
  // Signed up elsewhere (its own home): the app starts with no trusted cluster.
  person = await signUpUserInProcess(cluster, join(work, 'setup'), 'nina', ['servers-dev', 'servers-prod']);
  backend = createBackend({ profiles: new ProfileStore(join(work, 'home')), keystoreKind: 'file', env: {} });
  await backend.ready;
  app = await openAppInChromium(backend, { width: 1100, height: 900 });
  page = app.page;
}, 180_000);

afterAll(async () => {
  await app?.close();
  await backend?.close();
  await cluster?.stop();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect, the Servers view end to end', () => {
  it('signs in and lists the servers the roles reach, with labels and logins', async () => {
    await page.getByLabel('Cluster address').fill(cluster.address);
    await button('Add cluster').click();
    const trust = page.getByRole('dialog', { name: 'Trust this cluster?' });
    await trust.waitFor();
    await trust.getByRole('button', { name: 'Trust', exact: true }).click();
    await button('Sign in to servers-e2e').click();
    await page.getByLabel('User', { exact: true }).fill(person.user);
    await page.getByLabel('Password', { exact: true }).fill(person.password);
    await button('Sign in').click();
    const otp = page.getByRole('dialog', { name: 'One-time code' });
    await otp.waitFor();
    await otp.getByLabel('Code').fill(totpCode(person.totpSecret, clock.now() + 30_000));
    await otp.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Account' }).waitFor();

    await button('Servers').click();
    await page.getByRole('heading', { name: 'Servers on servers-e2e' }).waitFor();
    await page.getByRole('table').waitFor();
    // db-prod is denied by tier=db.
    expect(await rowNames()).toEqual(['api-dev', 'web-dev', 'web-prod']);
    const webDev = page.getByRole('row', { name: /web-dev/ });
    expect(await webDev.getByRole('listitem').allTextContents()).toEqual(['env=dev', 'team=web']);
    expect(await webDev.getByRole('cell').allTextContents()).toEqual([
      '127.0.0.1:2201',
      'env=devteam=web',
      'nina',
      'Connect',
    ]);
    expect(
      await page
        .getByRole('row', { name: /web-prod/ })
        .getByRole('cell')
        .nth(2)
        .textContent(),
    ).toBe('viewer');
    expect(await accessibilityFindings(page), 'axe on the Servers view').toEqual([]);
    await screenshot('servers');
  });

  it('searches by label and name', async () => {
    const search = page.getByRole('searchbox', { name: 'Search servers' });
    await search.fill('team=web');
    await expect.poll(rowNames).toEqual(['web-dev', 'web-prod']);
    expect(await page.getByRole('status').textContent()).toBe('2 of 3 servers match');
    await search.fill('web prod');
    await expect.poll(rowNames).toEqual(['web-prod']);
    await search.fill('staging');
    await page.getByText('No server matches “staging”.').waitFor();
    expect(await accessibilityFindings(page), 'axe on a search with no match').toEqual([]);
    await screenshot('no-match');
  });
});
