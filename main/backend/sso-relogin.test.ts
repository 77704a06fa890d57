// Relogin for an SSO session (issues 13 and 16) through the backend, against a real keyport-auth on a lab
// clock and the lab IdP: a call refused CERTIFICATE_EXPIRED asks to sign in again with the profile's
// connector ("Sign in with DISPLAY", no password), the SSO login runs again (the IdP's page in LabBrowser,
// opened through the backend's opener, the browserSignIn prompt meanwhile), and the action runs once more.
// Refusals leave KEYPORT_HOME byte for byte as it was: the IdP signing in someone else, a cancel, the IdP down.
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listDevices } from '../../client/ceremonies/devices';
import { ProfileStore } from '../../client/profiles';
import { folderSnapshot } from '../../lab/folder-snapshot';
import { LabBrowser } from '../../lab/oidc/browser';
import { startSsoLab } from '../../lab/oidc/sso-lab';
import type { SsoLab } from '../../lab/oidc/sso-lab';
import { followCallback } from '../../lab/oidc/sso-login';
import type { Prompt, ProfileView } from '../../preload/contract';
import { KeyportError } from '../../proto/errors';
import { createBackend } from './backend';
import type { Backend } from './backend';

/** The user the lab connector makes of the IdP's alice (her email). */
const ALICE = 'alice@keyport.lab';

let lab: SsoLab;
let home: string;
let profiles: ProfileStore;
let backend: Backend;
let shown: Prompt[] = [];
/** Who the person signs in as at the IdP when the backend opens its page; `down`: the page never loads. */
let atIdp: { user: string } | 'cancel' | 'down' = { user: 'alice' };
const browserErrors: string[] = [];
/** Whether the person answers a relogin prompt with "Sign in with DISPLAY" (else the test answers it). */
let answerRelogin = true;

/** The person's browser: the IdP's login page, keyport-auth's callback, then the app's loopback page. */
async function browse(url: string, user: string): Promise<void> {
  const { callbackUrl, page } = await new LabBrowser(lab.idp.caPem).signIn(
    url,
    { username: user, password: `${user}-lab-password` },
    lab.redirectUri,
  );
  if (callbackUrl === undefined) throw new Error(`the IdP refused: ${page.status}`);
  const callback = await followCallback(lab.cluster, callbackUrl);
  if (callback.location === undefined) throw new Error(`no redirect from the callback: ${callback.status}`);
  await fetch(callback.location).then((response) => response.text());
}

async function session(): Promise<ProfileView> {
  const status = await backend.handlers['auth.status']();
  if (!status.ok || !status.value) throw new Error('not signed in');
  return status.value;
}

/** Moves the cluster's time past the session's expiry: its next call is refused CERTIFICATE_EXPIRED. */
async function expireSession(): Promise<void> {
  lab.clock.advance(Math.max(0, (await session()).expiresMs - lab.clock.now()) + 60_000);
}

function countedListDevices() {
  const counted = { runs: 0 };
  const action = async () => {
    counted.runs += 1;
    return listDevices(profiles, {});
  };
  return { counted, action };
}

beforeAll(async () => {
  lab = await startSsoLab({
    clusterName: 'sso-relogin',
    authentication: ['    type: local', '    second_factor: "off"'],
  });
  // The client's clock is the cluster's (certificate expiry read on the lab clock), and so is the IdP's:
  // its ID tokens' times move with the lab clock, as two real clocks agree.
  Object.assign(process.env, lab.clock.env);
  lab.idp.rewriteIdTokens((claims) => {
    const skew = Math.round((lab.clock.now() - Date.now()) / 1000);
    const shifted = { ...claims };
    for (const name of ['iat', 'exp', 'auth_time']) {
      if (typeof claims[name] === 'number') shifted[name] = claims[name] + skew;
    }
    return shifted;
  });
  home = join(lab.work, 'home');
  profiles = new ProfileStore(home);
  backend = createBackend({
    profiles,
    keystoreKind: 'file',
    env: {},
    watchProfiles: false,
    clock: lab.clock.now,
    sessionNotices: { tickMs: 0 },
    // The system browser: it opens the page and the person acts there, while the opener has returned.
    openInBrowser: async (url) => {
      const person = atIdp;
      if (person === 'cancel') return;
      if (person === 'down') {
        // The page does not load; the person sees it and cancels the waiting prompt.
        const waiting = shown.findLast((p) => p.kind === 'browserSignIn');
        void fetch(url).catch((error: unknown) => {
          browserErrors.push(String((error as Error).cause ?? error));
          if (waiting) void backend.handlers['prompts.cancel']({ id: waiting.id });
        });
        return;
      }
      void browse(url, person.user).catch((error: unknown) => browserErrors.push(String(error)));
    },
  });
  backend.on('onPrompt', (prompt) => {
    shown.push(prompt);
    if (prompt.kind === 'relogin' && answerRelogin) {
      void backend.handlers['prompts.answer']({ id: prompt.id, value: { kind: 'relogin', sso: true } });
    }
    // The person gives up waiting for the browser.
    if (prompt.kind === 'browserSignIn' && atIdp === 'cancel') {
      void backend.handlers['prompts.cancel']({ id: prompt.id });
    }
  });
  expect(
    await backend.handlers['clusters.add']({ address: lab.cluster.address, caPin: lab.cluster.caPin }),
  ).toMatchObject({ ok: true });
  expect(
    await backend.handlers['auth.loginSso']({ address: lab.cluster.address, connector: 'lab' }),
  ).toMatchObject({ ok: true, value: { user: ALICE } });
}, 180_000);

beforeEach(() => {
  shown = [];
  browserErrors.length = 0;
  atIdp = { user: 'alice' };
  answerRelogin = true;
});

afterAll(async () => {
  for (const name of Object.keys(lab?.clock.env ?? {})) delete process.env[name];
  await backend?.close();
  await lab?.stop();
});

describe('relogin for an SSO session', () => {
  it('the profile remembers the connector it signed in through', async () => {
    const profile = await profiles.getProfile(lab.cluster.address);
    expect(profile).toMatchObject({ user: ALICE, ssoConnector: 'lab' });
  });

  it('refuses a relogin as someone else at the IdP: ACCESS_DENIED, KEYPORT_HOME as it was, no retry', async () => {
    await expireSession();
    const before = await folderSnapshot(home);
    atIdp = { user: 'bob' };
    const { counted, action } = countedListDevices();
    const error = await backend.relogin
      .retryWithRelogin(lab.cluster.address, action)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'ACCESS_DENIED' });
    expect((error as Error).message).toContain(`signed you in as bob@keyport.lab, not ${ALICE}`);
    expect(counted.runs).toBe(1);
    expect(await folderSnapshot(home)).toEqual(before);
    expect(browserErrors).toEqual([]);
  });

  it('a cancel while the browser is open fails the action CANCELLED, KEYPORT_HOME as it was', async () => {
    const before = await folderSnapshot(home);
    atIdp = 'cancel';
    const { counted, action } = countedListDevices();
    const error = await backend.relogin
      .retryWithRelogin(lab.cluster.address, action)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CANCELLED' });
    expect(counted.runs).toBe(1);
    expect(shown.map((p) => p.kind)).toEqual(['relogin', 'browserSignIn']);
    expect(await folderSnapshot(home)).toEqual(before);
  });

  it('an expired session: "Sign in with Lab IdP", the SSO login again, and the action retried once', async () => {
    const old = await session();
    const { counted, action } = countedListDevices();
    const devices = await backend.relogin.retryWithRelogin(lab.cluster.address, action);
    expect(devices).toEqual([]);
    expect(counted.runs).toBe(2);
    const relogin = shown.find((p) => p.kind === 'relogin');
    expect(relogin).toMatchObject({
      cluster: lab.cluster.address,
      user: ALICE,
      cause: 'expired',
      passwordless: false,
      secondFactors: [],
      allowPasswordless: false,
      sso: { connector: 'lab', display: 'Lab IdP' },
    });
    expect(shown.find((p) => p.kind === 'browserSignIn')).toMatchObject({
      cluster: 'sso-relogin',
      connector: 'Lab IdP',
    });
    const renewed = await session();
    expect(renewed.user).toBe(ALICE);
    expect(renewed.expiresMs).toBeGreaterThan(old.expiresMs);
    expect(await profiles.getProfile(lab.cluster.address)).toMatchObject({ ssoConnector: 'lab' });
    expect(browserErrors).toEqual([]);
  });

  it('refuses an answer with a password to an SSO relogin prompt (INVALID_ARGUMENT)', async () => {
    answerRelogin = false;
    const ceremony = backend.broker.ceremony();
    const asked = ceremony.relogin({
      cluster: lab.cluster.address,
      user: ALICE,
      reason: ['Your session ended at 14:02.'],
      cause: 'expired',
      passwordless: false,
      secondFactors: [],
      allowPasswordless: false,
      sso: { connector: 'lab', display: 'Lab IdP' },
    });
    const prompt = backend.broker.current();
    expect(prompt?.kind).toBe('relogin');
    for (const value of [
      { kind: 'relogin' as const, password: 'alice-password' },
      { kind: 'relogin' as const },
      { kind: 'relogin' as const, sso: true as const, secondFactor: 'key' as const },
    ]) {
      expect(() => backend.broker.answer(prompt!.id, value)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    ceremony.finish();
    await expect(asked).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('with the IdP down, the page never loads; the person cancels: CANCELLED, KEYPORT_HOME as it was', async () => {
    await expireSession();
    await lab.idp.stop();
    const before = await folderSnapshot(home);
    atIdp = 'down';
    const { counted, action } = countedListDevices();
    const error = await backend.relogin
      .retryWithRelogin(lab.cluster.address, action)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CANCELLED' });
    expect(counted.runs).toBe(1);
    await expect.poll(() => browserErrors.length, { timeout: 30_000 }).toBe(1);
    expect(browserErrors[0]).toMatch(/ECONNREFUSED/);
    expect(await folderSnapshot(home)).toEqual(before);
  });
});
