// The web-session approval ceremony against a real keyport-auth (gRPC over TLS and the web listener over
// real HTTPS) and two real swtpm TPMs: TPM A enrolled to ada, TPM B registered but never enrolled. The page
// asks for a keyport:// link; Keyport Connect's calls (as a signed-in user) read it and approve it with the
// device's quote; the browser opens the confirm URL. Each invariant gets an input that violates it: the
// tokens single use, short-lived (the lab clock) and bound to one web session; the Connect user the web
// session's; the confirmation only with the asking session's cookie; an untrusted device refused; an open
// redirect refused. Each refusal is typed and audited, and leaves the ceremony's rows as they were.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import type { ClusterApi } from '../client/api';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { TrustedDevice } from '../client/device-trust/device';
import { ProfileStore } from '../client/profiles';
import { connectAsProfile } from '../client/session';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { connectAsAdmin, openClusterDb, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { connectClusterConfig } from '../lab/connect';
import { startLabTpm } from '../lab/tpm';
import type { LabTpm } from '../lab/tpm';
import { webClient } from '../lab/web';
import type { WebResponse } from '../lab/web';
import { KeyportError } from '../proto/errors';
import { WEB_DEVICE_CONFIRM_PATH, webApprovalQuoteData, webTokenDigest } from '../proto/web-approval';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';

let cluster: LabCluster;
let clock: LabClock;
let web: Awaited<ReturnType<typeof webClient>>;
let home: string;
let tpmA: LabTpm;
let tpmB: LabTpm;
let deviceA: TrustedDevice;
let deviceB: TrustedDevice;
let credentialA: string;
let credentialB: string;
let deviceIdA: string;
const people: Record<string, SignedUpUser> = {};
const apis: Record<string, ClusterApi> = {};

function person(name: string): SignedUpUser {
  const found = people[name];
  if (!found) throw new Error(`no ${name}`);
  return found;
}

function api(name: string): ClusterApi {
  const found = apis[name];
  if (!found) throw new Error(`no api for ${name}`);
  return found;
}

async function connectAs(name: string): Promise<ClusterApi> {
  const profiles = new ProfileStore(join(home, name));
  const who = person(name);
  const profile = await loginWithPassword({
    profiles,
    address: parseClusterAddress(cluster.address),
    user: who.user,
    keystore: 'file',
    device: false,
    prompts: {
      confirmCaPin: async () => false,
      password: async () => who.password,
      otpCode: async () => totpCode(who.totpSecret, clock.now()),
    },
  });
  clock.advance(31_000);
  return connectAsProfile(profiles, profile);
}

beforeAll(async () => {
  clock = createLabClock();
  home = await mkdtemp(join(tmpdir(), 'keyport-web-approval-'));
  [tpmA, tpmB] = await Promise.all([startLabTpm(), startLabTpm()]);
  cluster = await startLabCluster({
    clusterName: 'web-approval',
    configYaml: connectClusterConfig('localhost:0'),
    extraArgs: ['--web-listen', '127.0.0.1:0'],
    env: clock.env,
  });
  web = await webClient(cluster);
  for (const name of ['ada', 'bob']) {
    people[name] = await signUpUserInProcess(cluster, join(home, name), name, ['access']);
  }
  clock.advance(31_000);
  const admin = await connectAsAdmin(cluster);
  try {
    // Device trust required for everyone from now on (signup's first MFA device came before it).
    const cap = JSON.parse((await admin.admin.getResource({ kind: 'cap', name: '' })).json) as {
      spec: Record<string, unknown>;
    };
    await admin.admin.createResources({
      documentsJson: [JSON.stringify({ ...cap, spec: { ...cap.spec, device_trust: { mode: 'required' } } })],
      force: true,
    });
    for (const tag of ['WEB-A', 'WEB-B']) await admin.devices.addDevice({ osType: 'linux', assetTag: tag });
    const { token } = await admin.devices.createDeviceEnrollToken({ device: 'WEB-A', ttlSeconds: 0 });
    apis.ada = await connectAs('ada');
    apis.bob = await connectAs('bob');
    deviceA = await TrustedDevice.open({ env: { ...tpmA.env, KEYPORT_DEVICE_ASSET_TAG: 'WEB-A' } });
    deviceB = await TrustedDevice.open({ env: { ...tpmB.env, KEYPORT_DEVICE_ASSET_TAG: 'WEB-B' } });
    const begun = await api('ada').devices.beginDeviceEnrollment({
      token,
      currentDevice: false,
      device: await deviceA.enrollmentData(),
    });
    const enrolled = await api('ada').devices.completeDeviceEnrollment({
      challengeId: begun.challengeId,
      response: await deviceA.answer(begun.challenge!),
    });
    deviceIdA = enrolled.id;
    await deviceB.enrollmentData();
    credentialA = (await deviceA.credentialId())!;
    credentialB = (await deviceB.credentialId())!;
  } finally {
    admin.close();
  }
}, 240_000);

afterAll(async () => {
  for (const client of Object.values(apis)) client.close();
  await deviceA?.close();
  await deviceB?.close();
  await cluster?.stop();
  await Promise.all([tpmA?.stop(), tpmB?.stop()]);
  clock?.dispose();
  await rm(home, { recursive: true, force: true });
});

const cookieOf = (response: WebResponse): string =>
  (response.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '';

/** A browser session: password and an OTP code on the web UI. */
async function webSignIn(name: string): Promise<{ cookie: string; csrf: string }> {
  const who = person(name);
  const challenge = await web.request('POST', WEBAPI.challenge, {
    body: { user: who.user, password: who.password },
  });
  expect(challenge.status, challenge.body).toBe(200);
  const response = await web.request('POST', WEBAPI.login, {
    body: { challengeId: challenge.json.challengeId, totpCode: totpCode(who.totpSecret, clock.now()) },
  });
  clock.advance(31_000);
  expect(response.status, response.body).toBe(200);
  return { cookie: cookieOf(response), csrf: String(response.json.csrfToken) };
}

interface Link {
  id: string;
  token: string;
  code: string;
  link: string;
}

/** The page's "Verify this browser with Keyport Connect": the keyport:// link and the code. */
async function askForLink(browser: { cookie: string; csrf: string }): Promise<Link> {
  const response = await web.request('POST', WEBAPI.deviceApproval, {
    body: {},
    headers: { Cookie: browser.cookie, [WEBAPI_CSRF_HEADER]: browser.csrf },
  });
  expect(response.status, response.body).toBe(200);
  const link = String(response.json.link);
  const url = new URL(link);
  return {
    id: url.searchParams.get('id') ?? '',
    token: url.searchParams.get('token') ?? '',
    code: String(response.json.code),
    link,
  };
}

/** Keyport Connect's Authorize: a nonce, the TPM's quote bound to the web token, the confirmation. */
async function approveWith(
  client: ClusterApi,
  device: TrustedDevice,
  link: Link,
  credentialId = credentialA,
) {
  const begun = await client.webSessions.beginWebSessionApproval({
    id: link.id,
    token: link.token,
    credentialId,
  });
  const response = await device.answer({
    nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(link.token)),
    credentialBlob: Buffer.alloc(0),
    encryptedSecret: Buffer.alloc(0),
  });
  return client.webSessions.approveWebSession({
    id: link.id,
    token: link.token,
    challengeId: begun.challengeId,
    response,
  });
}

/** The browser opens the confirm URL (a top-level navigation the OS started: no Origin). */
function openConfirm(url: string, cookie: string | undefined, redirect?: string, site = 'none') {
  const target = new URL(url);
  if (redirect !== undefined) target.searchParams.set('redirect', redirect);
  return web.request('GET', target.pathname + target.search, {
    origin: null,
    headers: { ...(cookie ? { Cookie: cookie } : {}), 'Sec-Fetch-Site': site },
  });
}

const getSession = (cookie: string) => web.request('GET', WEBAPI.session, { headers: { Cookie: cookie } });

/** The ceremony's rows (web sessions and requests), to compare before and after a refusal. */
function ceremonyRows(): unknown {
  const db = openClusterDb(cluster);
  try {
    return {
      sessions: db.prepare('SELECT * FROM web_sessions ORDER BY id').all(),
      approvals: db.prepare('SELECT * FROM web_session_approvals ORDER BY id').all(),
    };
  } finally {
    db.close();
  }
}

function approvalAudit(sinceId: number): { success: number; message: string; fields_json: string }[] {
  const db = openClusterDb(cluster);
  try {
    return db
      .prepare(
        "SELECT success, message, fields_json FROM audit_events WHERE type = 'web.approval' AND id > ? ORDER BY id",
      )
      .all(sinceId) as { success: number; message: string; fields_json: string }[];
  } finally {
    db.close();
  }
}

function lastAuditId(): number {
  const db = openClusterDb(cluster);
  try {
    return (db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit_events').get() as { id: number }).id;
  } finally {
    db.close();
  }
}

async function refusal(promise: Promise<unknown>): Promise<KeyportError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyportError);
  return error as KeyportError;
}

describe('the approval ceremony', () => {
  it('verifies an untrusted browser session with the enrolled device: link and code, the screen, the quote, the confirmation', async () => {
    const since = lastAuditId();
    const browser = await webSignIn('ada');
    const before = await getSession(browser.cookie);
    expect(before.json).toMatchObject({ device: { trusted: false }, deviceTrust: 'required' });

    const asked = clock.now();
    const link = await askForLink(browser);
    const answered = clock.now();
    expect(link.link).toMatch(
      /^keyport:\/\/web-approval\/authorize-web-session\?id=[\w-]{22}&token=[\w-]{43}&redirect=%2F$/,
    );
    expect(link.code).toMatch(/^\d{3}-\d{3}$/);
    // The web token is stored only as its hash.
    const stored = JSON.stringify(ceremonyRows());
    expect(stored).not.toContain(link.token);
    expect(stored).toContain(createHash('sha256').update(link.token).digest('base64url'));

    // What Keyport Connect's screen shows, as the server saw the browser.
    const screen = await api('ada').webSessions.getWebSessionApproval({ id: link.id, token: link.token });
    expect(screen).toMatchObject({
      cluster: 'web-approval',
      user: 'ada',
      browserAddr: expect.stringContaining('127.0.0.1'),
      userAgent: 'keyport-lab-test',
      code: link.code,
    });
    expect(screen.expiresMs).toBeGreaterThanOrEqual(asked + 5 * 60_000);
    expect(screen.expiresMs).toBeLessThanOrEqual(answered + 5 * 60_000);

    const confirmation = await approveWith(api('ada'), deviceA, link);
    expect(confirmation.deviceId).toBe(deviceIdA);
    expect(confirmation.assetTag).toBe('WEB-A');
    expect(confirmation.confirmUrl).toBe(
      `${web.origin}${WEB_DEVICE_CONFIRM_PATH}?id=${link.id}&token=${confirmation.confirmationToken}`,
    );
    expect(JSON.stringify(ceremonyRows())).not.toContain(confirmation.confirmationToken);
    // Approved, not yet confirmed: the session is still untrusted.
    expect((await getSession(browser.cookie)).json).toMatchObject({ device: { trusted: false } });

    const opened = await openConfirm(confirmation.confirmUrl, browser.cookie, '/');
    expect(opened.status, opened.body).toBe(303);
    expect(opened.headers.location).toBe('/');
    expect((await getSession(browser.cookie)).json).toMatchObject({
      device: { trusted: true, deviceId: deviceIdA, assetTag: 'WEB-A' },
    });
    const audit = approvalAudit(since);
    expect(audit.map((event) => [event.success, event.message])).toEqual([
      [1, 'web session asked to be verified by a trusted device'],
      [1, "web session approved by device WEB-A; waiting for the browser's confirmation"],
      [1, 'web session trusted: device WEB-A'],
    ]);
    // No token is ever in the audit log.
    const auditText = JSON.stringify(audit);
    expect(auditText).not.toContain(link.token);
    expect(auditText).not.toContain(confirmation.confirmationToken);
  });

  it('refuses a second request from a session that is already trusted', async () => {
    const browser = await webSignIn('ada');
    const link = await askForLink(browser);
    await openConfirm((await approveWith(api('ada'), deviceA, link)).confirmUrl, browser.cookie);
    const again = await web.request('POST', WEBAPI.deviceApproval, {
      body: {},
      headers: { Cookie: browser.cookie, [WEBAPI_CSRF_HEADER]: browser.csrf },
    });
    expect(again.status).toBe(412);
    expect(again.json.error).toMatchObject({ code: 'PRECONDITION_FAILED' });
  });

  it('refuses the request without the page CSRF token', async () => {
    const browser = await webSignIn('ada');
    const before = ceremonyRows();
    const response = await web.request('POST', WEBAPI.deviceApproval, {
      body: {},
      headers: { Cookie: browser.cookie },
    });
    expect(response.status).toBe(403);
    expect(ceremonyRows()).toEqual(before);
  });
});

describe('the web token', () => {
  it('is single use: a spent token reads, begins and approves nothing, and of two racing approvals one wins', async () => {
    const browser = await webSignIn('ada');
    const link = await askForLink(browser);
    // Two challenges for the same request, two quotes, sent together: the token is spent once.
    const begin = () =>
      api('ada').webSessions.beginWebSessionApproval({
        id: link.id,
        token: link.token,
        credentialId: credentialA,
      });
    const [first, second] = [await begin(), await begin()];
    const answers = [];
    for (const begun of [first, second]) {
      answers.push({
        challengeId: begun.challengeId,
        response: await deviceA.answer({
          nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(link.token)),
          credentialBlob: Buffer.alloc(0),
          encryptedSecret: Buffer.alloc(0),
        }),
      });
    }
    const results = await Promise.allSettled(
      answers.map((answer) =>
        api('ada').webSessions.approveWebSession({ id: link.id, token: link.token, ...answer }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected');
    expect((failed as PromiseRejectedResult).reason).toMatchObject({ code: 'ACCESS_DENIED' });
    const before = ceremonyRows();
    for (const call of [
      api('ada').webSessions.getWebSessionApproval({ id: link.id, token: link.token }),
      begin(),
    ]) {
      const error = await refusal(call);
      expect(error.code).toBe('ACCESS_DENIED');
      expect(error.message).toContain('not valid or was already used');
    }
    expect(ceremonyRows()).toEqual(before);
  });

  it('is short-lived: five minutes on the service clock', async () => {
    const browser = await webSignIn('ada');
    const link = await askForLink(browser);
    const begun = await api('ada').webSessions.beginWebSessionApproval({
      id: link.id,
      token: link.token,
      credentialId: credentialA,
    });
    clock.advance(5 * 60_000);
    const before = ceremonyRows();
    const read = await refusal(
      api('ada').webSessions.getWebSessionApproval({ id: link.id, token: link.token }),
    );
    expect(read.code).toBe('EXPIRED');
    // The challenge made before lived no longer than the token.
    const response = await deviceA.answer({
      nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(link.token)),
      credentialBlob: Buffer.alloc(0),
      encryptedSecret: Buffer.alloc(0),
    });
    const late = await refusal(
      api('ada').webSessions.approveWebSession({
        id: link.id,
        token: link.token,
        challengeId: begun.challengeId,
        response,
      }),
    );
    expect(late.code).toBe('EXPIRED');
    expect(ceremonyRows()).toEqual(before);
    expect((await getSession(browser.cookie)).json).toMatchObject({ device: { trusted: false } });
  });

  it('is bound to its request: a wrong token, another request, or a quote not over the web token is refused', async () => {
    const browser = await webSignIn('ada');
    const one = await askForLink(browser);
    const two = await askForLink(browser);
    const before = ceremonyRows();
    // The right id with another request's token.
    expect(
      (await refusal(api('ada').webSessions.getWebSessionApproval({ id: one.id, token: two.token }))).code,
    ).toBe('ACCESS_DENIED');
    // A challenge made for request one, answered for request two.
    const begun = await api('ada').webSessions.beginWebSessionApproval({
      id: one.id,
      token: one.token,
      credentialId: credentialA,
    });
    const answer = await deviceA.answer({
      nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(two.token)),
      credentialBlob: Buffer.alloc(0),
      encryptedSecret: Buffer.alloc(0),
    });
    const crossed = await refusal(
      api('ada').webSessions.approveWebSession({
        id: two.id,
        token: two.token,
        challengeId: begun.challengeId,
        response: answer,
      }),
    );
    expect(crossed.code).toBe('ACCESS_DENIED');
    expect(crossed.message).toContain('another verification request');
    // A quote over the bare nonce (an ordinary device authentication) does not approve a web session.
    const again = await api('ada').webSessions.beginWebSessionApproval({
      id: one.id,
      token: one.token,
      credentialId: credentialA,
    });
    const bare = await deviceA.answer({
      nonce: again.nonce,
      credentialBlob: Buffer.alloc(0),
      encryptedSecret: Buffer.alloc(0),
    });
    const unbound = await refusal(
      api('ada').webSessions.approveWebSession({
        id: one.id,
        token: one.token,
        challengeId: again.challengeId,
        response: bare,
      }),
    );
    expect(unbound.code).toBe('ACCESS_DENIED');
    expect(unbound.message).toContain('not over this challenge');
    expect(ceremonyRows()).toEqual(before);
    // Both requests are still usable by the right answers.
    await approveWith(api('ada'), deviceA, one);
  });
});

describe('who may approve', () => {
  it("refuses a Keyport Connect user who is not the web session's user, audited", async () => {
    const since = lastAuditId();
    const link = await askForLink(await webSignIn('ada'));
    const before = ceremonyRows();
    const read = await refusal(
      api('bob').webSessions.getWebSessionApproval({ id: link.id, token: link.token }),
    );
    expect(read.code).toBe('ACCESS_DENIED');
    expect(read.message).toContain('belongs to another user');
    expect(read.message).not.toContain('ada');
    const begin = await refusal(
      api('bob').webSessions.beginWebSessionApproval({
        id: link.id,
        token: link.token,
        credentialId: credentialA,
      }),
    );
    expect(begin.code).toBe('ACCESS_DENIED');
    expect(ceremonyRows()).toEqual(before);
    const refused = approvalAudit(since).filter((event) => event.success === 0);
    expect(refused.map((event) => event.message)).toEqual([
      'web session approval refused (read): another user',
      'web session approval refused (begin): another user',
    ]);
  });

  it('refuses an untrusted device: one never enrolled, and a quote from another TPM than the enrolled one', async () => {
    const link = await askForLink(await webSignIn('ada'));
    const before = ceremonyRows();
    const unenrolled = await refusal(
      api('ada').webSessions.beginWebSessionApproval({
        id: link.id,
        token: link.token,
        credentialId: credentialB,
      }),
    );
    expect(unenrolled.code).toBe('DEVICE_TRUST_REQUIRED');
    // TPM B answers a challenge made for device A's credential: its AK did not sign it.
    const forged = await refusal(approveWithAnswerFrom(deviceB, link));
    expect(forged.code).toBe('ACCESS_DENIED');
    expect(forged.message).toContain('signature');
    expect(ceremonyRows()).toEqual(before);
    // The token was not spent by either: device A still approves.
    await approveWith(api('ada'), deviceA, link);
  });

  it('refuses a locked device', async () => {
    const link = await askForLink(await webSignIn('ada'));
    const admin = await connectAsAdmin(cluster);
    try {
      await admin.devices.lockDevice({ device: 'WEB-A', reason: 'lost' });
      const locked = await refusal(
        api('ada').webSessions.beginWebSessionApproval({
          id: link.id,
          token: link.token,
          credentialId: credentialA,
        }),
      );
      expect(locked.code).toBe('DEVICE_TRUST_REQUIRED');
    } finally {
      await admin.devices.unlockDevice({ device: 'WEB-A' });
      admin.close();
    }
  });
});

async function approveWithAnswerFrom(device: TrustedDevice, link: Link) {
  const begun = await api('ada').webSessions.beginWebSessionApproval({
    id: link.id,
    token: link.token,
    credentialId: credentialA,
  });
  const response = await device.answer({
    nonce: webApprovalQuoteData(begun.nonce, webTokenDigest(link.token)),
    credentialBlob: Buffer.alloc(0),
    encryptedSecret: Buffer.alloc(0),
  });
  return api('ada').webSessions.approveWebSession({
    id: link.id,
    token: link.token,
    challengeId: begun.challengeId,
    response,
  });
}

describe('the confirmation', () => {
  it("fails in a browser without the session's cookie, and in another session of the same user, spending nothing", async () => {
    const browser = await webSignIn('ada');
    const other = await webSignIn('ada');
    const confirmation = await approveWith(api('ada'), deviceA, await askForLink(browser));
    const before = ceremonyRows();
    const since = lastAuditId();
    const noCookie = await openConfirm(confirmation.confirmUrl, undefined);
    expect(noCookie.status).toBe(401);
    expect(noCookie.json.error).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(approvalAudit(since).map((event) => [event.success, event.message])).toEqual([
      [0, 'web session approval refused (confirm): no signed-in session (UNAUTHENTICATED)'],
    ]);
    const elsewhere = await openConfirm(confirmation.confirmUrl, other.cookie);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.json.error).toMatchObject({ code: 'ACCESS_DENIED' });
    expect(String((elsewhere.json.error as { message: string }).message)).toContain(
      'browser session that asked',
    );
    expect(ceremonyRows()).toEqual(before);
    // A link from another site's page is refused too (and SameSite=Strict would keep the cookie from it).
    const crossSite = await openConfirm(confirmation.confirmUrl, browser.cookie, '/', 'cross-site');
    expect(crossSite.status).toBe(403);
    expect(ceremonyRows()).toEqual(before);
    expect((await getSession(other.cookie)).json).toMatchObject({ device: { trusted: false } });
    // The session that asked still confirms it.
    expect((await openConfirm(confirmation.confirmUrl, browser.cookie)).status).toBe(303);
  });

  it('is single use', async () => {
    const browser = await webSignIn('ada');
    const confirmation = await approveWith(api('ada'), deviceA, await askForLink(browser));
    expect((await openConfirm(confirmation.confirmUrl, browser.cookie)).status).toBe(303);
    const before = ceremonyRows();
    const again = await openConfirm(confirmation.confirmUrl, browser.cookie);
    expect(again.status).toBe(403);
    expect(again.json.error).toMatchObject({ code: 'ACCESS_DENIED' });
    expect(ceremonyRows()).toEqual(before);
  });

  it('is short-lived: two minutes on the service clock', async () => {
    const browser = await webSignIn('ada');
    const link = await askForLink(browser);
    const approving = clock.now();
    const confirmation = await approveWith(api('ada'), deviceA, link);
    expect(confirmation.expiresMs).toBeGreaterThanOrEqual(approving + 2 * 60_000);
    expect(confirmation.expiresMs).toBeLessThanOrEqual(clock.now() + 2 * 60_000);
    clock.advance(2 * 60_000);
    const before = ceremonyRows();
    const late = await openConfirm(confirmation.confirmUrl, browser.cookie);
    expect(late.status).toBe(400);
    expect(late.json.error).toMatchObject({ code: 'EXPIRED' });
    expect(ceremonyRows()).toEqual(before);
    expect((await getSession(browser.cookie)).json).toMatchObject({ device: { trusted: false } });
  });

  it('refuses an open redirect, spending nothing, and goes on to a path of the web UI', async () => {
    const browser = await webSignIn('ada');
    const confirmation = await approveWith(api('ada'), deviceA, await askForLink(browser));
    const before = ceremonyRows();
    for (const redirect of [
      '//evil.example/',
      '/\\evil.example/',
      '/\t/evil.example/',
      'https://evil.example/',
      'javascript:alert(1)',
      'evil.example',
      `/${'a'.repeat(1100)}`,
    ]) {
      const refused = await openConfirm(confirmation.confirmUrl, browser.cookie, redirect);
      expect(refused.status, redirect).toBe(400);
      expect(refused.json.error).toMatchObject({ code: 'INVALID_ARGUMENT', fieldPath: 'redirect' });
    }
    // A parameter twice, or one the URL does not take.
    const twice = await openConfirm(`${confirmation.confirmUrl}&redirect=/a&redirect=/b`, browser.cookie);
    expect(twice.status).toBe(400);
    expect(ceremonyRows()).toEqual(before);
    const opened = await openConfirm(confirmation.confirmUrl, browser.cookie, '/home?tab=devices');
    expect(opened.status).toBe(303);
    expect(opened.headers.location).toBe('/home?tab=devices');
  });
});
