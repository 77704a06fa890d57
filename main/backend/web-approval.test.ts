// deepLinks.inspect and deepLinks.authorize through the handler table, against a real keyport-auth (gRPC
// and its web listener over HTTPS) and a real swtpm enrolled through the backend: a keyport:// link from
// the web page fills the screen with what the cluster says (user, browser, code), Authorize approves with
// the TPM and hands the confirm URL to the host's browser opener, which the test opens with the browser
// session's cookie: the session comes back trusted. A signed-out or expired app is asked to sign in first,
// the request kept. No token reaches a result or an event.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { connectAsAdmin, nextTotpCode, signUpUserInProcess, startLabCluster } from '../../lab/cluster';
import type { LabCluster, SignedUpUser } from '../../lab/cluster';
import { connectClusterConfig } from '../../lab/connect';
import { startLabTpm } from '../../lab/tpm';
import type { LabTpm } from '../../lab/tpm';
import { webClient } from '../../lab/web';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../../proto/webapi';
import { createBackend } from './backend';
import type { Backend } from './backend';

const ASSET_TAG = 'KP-WEB-APPROVE-1';

let tpm: LabTpm;
let clock: LabClock;
let cluster: LabCluster;
let web: Awaited<ReturnType<typeof webClient>>;
let home: string;
let person: SignedUpUser;
let backend: Backend;
let enrollToken: string;
const opened: string[] = [];
const everything: unknown[] = [];

async function signIn() {
  const stop = backend.on('onPrompt', (prompt) => {
    if (prompt.kind !== 'otpCode') return;
    void backend.handlers['prompts.answer']({
      id: prompt.id,
      value: { kind: 'otpCode', code: nextTotpCode(person.totpSecret, clock.now()) },
    });
  });
  try {
    const result = await backend.handlers['auth.login']({
      address: cluster.address,
      user: person.user,
      password: person.password,
      secondFactor: 'otp',
    });
    clock.advance(31_000);
    expect(result.ok, JSON.stringify(result)).toBe(true);
  } finally {
    stop();
  }
}

/** A browser signs in to the web UI and asks for the link: its cookie, the link and the page's code. */
async function browserAsks(): Promise<{ cookie: string; link: string; code: string; token: string }> {
  const challenge = await web.request('POST', WEBAPI.challenge, {
    body: { user: person.user, password: person.password },
  });
  const login = await web.request('POST', WEBAPI.login, {
    body: { challengeId: challenge.json.challengeId, totpCode: nextTotpCode(person.totpSecret, clock.now()) },
  });
  clock.advance(31_000);
  expect(login.status, login.body).toBe(200);
  const cookie = (login.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '';
  const asked = await web.request('POST', WEBAPI.deviceApproval, {
    body: {},
    headers: { Cookie: cookie, [WEBAPI_CSRF_HEADER]: String(login.json.csrfToken) },
  });
  expect(asked.status, asked.body).toBe(200);
  const link = String(asked.json.link);
  return {
    cookie,
    link,
    code: String(asked.json.code),
    token: new URL(link).searchParams.get('token') ?? '',
  };
}

async function call<M extends 'deepLinks.inspect' | 'deepLinks.authorize'>(method: M, id: string) {
  const result = await backend.handlers[method]({ id });
  everything.push(result);
  return result;
}

beforeAll(async () => {
  tpm = await startLabTpm();
  clock = createLabClock();
  cluster = await startLabCluster({
    clusterName: 'approve-backend',
    configYaml: connectClusterConfig('localhost:0'),
    extraArgs: ['--web-listen', '127.0.0.1:0'],
    env: clock.env,
  });
  web = await webClient(cluster);
  home = await mkdtemp(join(tmpdir(), 'keyport-backend-approve-'));
  person = await signUpUserInProcess(cluster, home, 'vera', ['access']);
  clock.advance(31_000);
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
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: { ...process.env, ...tpm.env, ...clock.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG },
    watchProfiles: false,
    openInBrowser: async (url) => void opened.push(url),
  });
  for (const event of ['onPrompt', 'onPromptClosed', 'onProfileChanged', 'onDeepLink'] as const) {
    backend.on(event, (payload) => void everything.push(payload));
  }
}, 180_000);

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
  await tpm?.stop();
  clock?.dispose();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('the authorize screen through the backend', () => {
  it('asks a signed-out app to sign in first, keeping the request (not an error)', async () => {
    const asked = await browserAsks();
    const event = await backend.openDeepLink(asked.link);
    expect(event.kind).toBe('authorizeWebSession');
    const id = new URL(asked.link).searchParams.get('id') ?? '';
    expect(await call('deepLinks.inspect', id)).toEqual({
      ok: true,
      value: {
        kind: 'signInRequired',
        cluster: { address: cluster.address, name: 'approve-backend' },
        reason: 'Sign in to approve-backend to see what this browser asks.',
      },
    });
    expect(await call('deepLinks.authorize', id)).toMatchObject({
      ok: false,
      error: { code: 'UNAUTHENTICATED', details: { resolvableByRelogin: true } },
    });
    expect((await backend.handlers['deepLinks.current']()).ok && backend.deepLinks.current()?.id).toBe(id);
    expect(opened).toEqual([]);
  });

  it('shows what the cluster says, approves with the TPM and opens the confirm URL: the browser comes back trusted', async () => {
    await signIn();
    const enrolled = await backend.handlers['device.enroll']({
      cluster: cluster.address,
      token: enrollToken,
    });
    expect(enrolled.ok, JSON.stringify(enrolled)).toBe(true);
    const asked = await browserAsks();
    await backend.openDeepLink(asked.link);
    const id = new URL(asked.link).searchParams.get('id') ?? '';
    const screen = await call('deepLinks.inspect', id);
    expect(screen).toMatchObject({
      ok: true,
      value: {
        kind: 'ready',
        user: 'vera',
        browserAddr: expect.stringContaining('127.0.0.1'),
        userAgent: 'keyport-lab-test',
        code: asked.code,
      },
    });
    expect(await call('deepLinks.authorize', id)).toEqual({ ok: true, value: { assetTag: ASSET_TAG } });
    expect(opened).toHaveLength(1);
    const confirmUrl = new URL(opened[0]!);
    expect(confirmUrl.origin).toBe(web.origin);
    expect(confirmUrl.pathname).toBe('/web/device/confirm');
    expect(confirmUrl.searchParams.get('redirect')).toBe('/');
    // The link is spent: no longer held.
    expect(backend.deepLinks.current()).toBeNull();
    expect(await call('deepLinks.inspect', id)).toMatchObject({ ok: false, error: { code: 'EXPIRED' } });
    // The browser opens it with its own cookie.
    const confirmed = await web.request('GET', confirmUrl.pathname + confirmUrl.search, {
      origin: null,
      headers: { Cookie: asked.cookie, 'Sec-Fetch-Site': 'none' },
    });
    expect(confirmed.status, confirmed.body).toBe(303);
    const session = await web.request('GET', WEBAPI.session, { headers: { Cookie: asked.cookie } });
    expect(session.json).toMatchObject({ device: { trusted: true, assetTag: ASSET_TAG } });
    // Neither the web token nor the confirmation token is in any result or event.
    const seen = JSON.stringify(everything);
    expect(seen).not.toContain(asked.token);
    expect(seen).not.toContain(confirmUrl.searchParams.get('token'));
  });

  it('asks an app whose session expired to sign in again, keeping the request', async () => {
    // The app's certificates last 12 hours; the web session signs in afresh after that.
    clock.advance(13 * 60 * 60_000);
    const asked = await browserAsks();
    await backend.openDeepLink(asked.link);
    const id = new URL(asked.link).searchParams.get('id') ?? '';
    expect(await call('deepLinks.inspect', id)).toMatchObject({
      ok: true,
      value: { kind: 'signInRequired' },
    });
    expect(backend.deepLinks.current()?.id).toBe(id);
    // Signed in again, the same request is shown.
    await signIn();
    expect(await call('deepLinks.inspect', id)).toMatchObject({
      ok: true,
      value: { kind: 'ready', code: asked.code },
    });
  });
});
