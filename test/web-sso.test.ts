// The web UI's "Sign in with DISPLAY" against a real keyport-auth (--web-listen) and the lab IdP's real login
// page, with an HTTP client and its cookie jar standing in for the browser (LabBrowser: the page's fetch
// calls, the IdP's form, the redirects): the start bound to the browser by its cookie, the callback ending
// in a web session and the web UI's home, every step audited with the connector and the IdP subject, and
// each refusal (a wrong state, a replayed callback, the callback in another browser, the IdP's error, no
// role matched, a local user of the same name, a connector that requires Keyport's own MFA, roles that
// require a hardware key, an expired request) said on a page of keyport-auth's own, with nothing stored changed.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClusterDb, runAdmin } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { LabBrowser } from '../lab/oidc/browser';
import type { PageResponse } from '../lab/oidc/browser';
import { startIdpAndCluster } from '../lab/oidc/sso-lab';
import type { LabOidcProvider } from '../lab/oidc/provider';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';

const CLIENT_ID = 'keyport-lab';
const CLIENT_SECRET = 'keyport-lab-client-secret';

let work: string;
let clock: LabClock;
let idp: LabOidcProvider;
let cluster: LabCluster;
let origin: string;
let redirectUri: string;
/** The CAs a browser here trusts: the IdP's and the cluster's (the web UI's certificate). */
let trusted: string;

function connectorYaml(name: string, extra: string[] = []): string {
  return [
    'kind: oidc',
    'version: v3',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  issuer_url: ${idp.issuer}`,
    `  client_id: ${CLIENT_ID}`,
    `  client_secret: ${CLIENT_SECRET}`,
    `  redirect_url: ${redirectUri}`,
    `  display: ${name === 'lab' ? 'Lab IdP' : `Lab IdP (${name})`}`,
    '  scope: [email, profile, groups]',
    ...extra,
    '  claims_to_roles:',
    '    - {claim: groups, value: admins, roles: [editor]}',
    '    - {claim: groups, value: "team-*", roles: [member]}',
    '    - {claim: groups, value: "^team-(.*)$", roles: ["team-$1"]}',
    '',
  ].join('\n');
}

let files = 0;
async function create(text: string, ...flags: string[]) {
  files += 1;
  const path = join(work, `doc-${files}.yaml`);
  await writeFile(path, text);
  const result = await runAdmin(cluster, ['create', '-f', path, ...flags]);
  expect(result.code, result.stderr).toBe(0);
}

function query<T>(sql: string, ...params: unknown[]): T[] {
  const db = openClusterDb(cluster);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** What a refused web sign-in must leave as it was: users, web sessions, SSO requests and their stages. */
function stored() {
  return {
    users: query('SELECT name, spec_json, sso_connector, sso_subject, updated_ms FROM users ORDER BY name'),
    webSessions: query('SELECT id, user FROM web_sessions ORDER BY id'),
    requests: query('SELECT id, kind, stage, user FROM sso_requests ORDER BY id'),
  };
}

interface AuditRow {
  type: string;
  actor: string;
  success: number;
  message: string;
  fields: Record<string, unknown>;
}

function auditSince(id: number): AuditRow[] {
  return query<{ type: string; actor: string; success: number; message: string; fields_json: string }>(
    'SELECT type, actor, success, message, fields_json FROM audit_events WHERE id > ? ORDER BY id',
    id,
  ).map(({ fields_json, ...row }) => ({
    ...row,
    fields: JSON.parse(fields_json) as Record<string, unknown>,
  }));
}

const lastAuditId = () => query<{ id: number }>('SELECT MAX(id) AS id FROM audit_events')[0]?.id ?? 0;

const newBrowser = () => new LabBrowser(trusted);

/** The page's script asks keyport-auth to start the sign-in (POST sso/start from the web UI's origin). */
async function start(browser: LabBrowser, connector = 'lab'): Promise<PageResponse> {
  return browser.script(`${origin}${WEBAPI.ssoStart}`, { json: { connector }, headers: { origin } });
}

/** The page opens the IdP's URL; the person signs in there; returns the URL the IdP sends the browser to. */
async function atIdp(browser: LabBrowser, started: PageResponse, user: string): Promise<string> {
  const { authorizationUrl } = JSON.parse(started.text) as { authorizationUrl: string };
  const { callbackUrl, page } = await browser.signIn(
    authorizationUrl,
    { username: user, password: `${user}-lab-password` },
    redirectUri,
  );
  if (callbackUrl === undefined) throw new Error(`the IdP did not send the browser back: ${page.status}`);
  return callbackUrl;
}

/** The whole sign-in in one browser, up to keyport-auth's answer at the callback. */
async function signIn(browser: LabBrowser, user: string, connector = 'lab') {
  const started = await start(browser, connector);
  expect(started.status, started.text).toBe(200);
  const callbackUrl = await atIdp(browser, started, user);
  return { started, callbackUrl, callback: await browser.request(callbackUrl) };
}

const session = (browser: LabBrowser) => browser.script(`${origin}${WEBAPI.session}`);

const cookieNamed = (response: PageResponse, name: string) =>
  response.setCookies.find((cookie) => cookie.startsWith(`${name}=`));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-web-sso-'));
  clock = createLabClock();
  // The local web login asks for a second factor here; an SSO login's second factor is the IdP's.
  ({ idp, cluster, redirectUri } = await startIdpAndCluster(work, {
    clusterName: 'web-sso',
    authentication: ['    type: local', '    second_factors: [otp]'],
    client: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    env: clock.env,
  }));
  origin = cluster.webOrigin!;
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  trusted = `${idp.caPem.trim()}\n${identity.caCertPem.trim()}\n`;
  const role = (name: string, options = '') =>
    `kind: role\nversion: v7\nmetadata:\n  name: ${name}\nspec:\n${options}  allow:\n    logins: [${name}]\n`;
  await create(['member', 'team-platform', 'team-dev'].map((name) => role(name)).join('---\n'));
  await create(connectorYaml('lab'));
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await idp?.stop();
  clock?.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('Sign in with DISPLAY on the web UI', () => {
  it('lists the connectors on the sign-in screen', async () => {
    const info = await newBrowser().script(`${origin}${WEBAPI.cluster}`);
    expect(JSON.parse(info.text)).toMatchObject({ connectors: [{ name: 'lab', display: 'Lab IdP' }] });
  });

  it('signs alice in: start bound to this browser, the IdP, the callback → a web session and the home', async () => {
    const auditFrom = lastAuditId();
    const browser = newBrowser();
    const { started, callbackUrl, callback } = await signIn(browser, 'alice');

    // The start: the IdP's URL with PKCE, state and nonce; a Lax binding cookie; no session yet.
    const authorization = new URL(
      (JSON.parse(started.text) as { authorizationUrl: string }).authorizationUrl,
    );
    expect(authorization.origin).toBe(idp.issuer);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('redirect_uri')).toBe(redirectUri);
    expect(authorization.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorization.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const binding = cookieNamed(started, '__Host-keyport_sso');
    expect(binding).toMatch(
      /^__Host-keyport_sso=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=300$/,
    );
    expect(cookieNamed(started, '__Host-keyport_session')).toBeUndefined();
    // The binding value itself is never stored, only its hash.
    const value = /=([^;]+)/.exec(binding!)![1]!;
    const [request] = query<Record<string, unknown>>(
      "SELECT * FROM sso_requests WHERE kind = 'web' ORDER BY created_ms DESC LIMIT 1",
    );
    expect(request!.browser_binding_hash).toBe(createHash('sha256').update(value).digest('base64url'));
    expect(JSON.stringify(request)).not.toContain(value);

    // The callback: a 303 to the web UI's home (never a loopback client address), with the session cookie.
    expect(new URL(callbackUrl).origin).toBe(origin);
    expect(callback.status).toBe(303);
    expect(callback.location).toBe(`${origin}/`);
    expect(cookieNamed(callback, '__Host-keyport_session')).toMatch(
      /^__Host-keyport_session=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    expect(cookieNamed(callback, '__Host-keyport_sso')).toMatch(/^__Host-keyport_sso=; .*Max-Age=0$/);

    // The home's call: signed in as the SSO user, roles from the claims, the IdP's login, untrusted.
    const view = JSON.parse((await session(browser)).text) as Record<string, unknown>;
    expect(view).toMatchObject({
      user: 'alice@keyport.lab',
      loginMethod: 'SSO (Lab IdP)',
      mfaVerified: false,
      device: { trusted: false },
    });
    expect((view.roles as string[]).sort()).toEqual(['editor', 'member', 'team-platform']);
    expect(query('SELECT stage, user FROM sso_requests WHERE id = ?', request!.id)).toEqual([
      { stage: 'signed-in', user: 'alice@keyport.lab' },
    ]);
    expect(
      query("SELECT sso_connector, sso_subject, password_hash FROM users WHERE name = 'alice@keyport.lab'"),
    ).toEqual([{ sso_connector: 'lab', sso_subject: 'alice', password_hash: null }]);

    // A full web session: its CSRF token signs it out.
    const out = await browser.script(`${origin}${WEBAPI.session}`, {
      method: 'DELETE',
      headers: { origin, [WEBAPI_CSRF_HEADER]: view.csrfToken as string },
    });
    expect(out.status).toBe(200);
    expect((await session(browser)).status).toBe(401);

    // Every step audited with the connector, and the IdP subject once known.
    const rows = auditSince(auditFrom).filter((row) => row.type !== 'web.session' || row.success === 1);
    expect(rows.map((row) => [row.type, row.fields.step ?? null])).toEqual([
      ['sso.login', 'start'],
      ['sso.login', 'callback'],
      ['user.create', null],
      ['user.login', null],
      ['web.session', null],
      ['web.session', null],
    ]);
    expect(rows[0]).toMatchObject({ success: 1, fields: { connector: 'lab', kind: 'web' } });
    expect(rows[1]).toMatchObject({
      actor: 'alice@keyport.lab',
      success: 1,
      message: 'claims mapped by lab: roles editor, member, team-platform granted',
      fields: {
        connector: 'lab',
        idp_subject: 'alice',
        kind: 'web',
        roles: ['editor', 'member', 'team-platform'],
      },
    });
    expect(rows[1]!.fields.claims_matched).toEqual(
      expect.arrayContaining([{ claim: 'groups', value: 'admins', roles: ['editor'] }]),
    );
    expect(rows[3]).toMatchObject({
      message: 'sso (lab) (web)',
      fields: { connector: 'lab', idp_subject: 'alice' },
    });
    expect(rows[4]).toMatchObject({
      message: expect.stringContaining('web session started'),
      fields: { connector: 'lab', idp_subject: 'alice', mfa_verified: false, device_trusted: false },
    });
  });

  it('a second sign-in updates the SSO user from the claims and makes a new session', async () => {
    const browser = newBrowser();
    idp.setClaims('bob', { groups: ['team-platform'] });
    try {
      const { callback } = await signIn(browser, 'bob');
      expect(callback.status).toBe(303);
      expect(JSON.parse((await session(browser)).text)).toMatchObject({
        user: 'bob@keyport.lab',
        roles: ['member', 'team-platform'],
      });
    } finally {
      idp.setClaims('bob', { groups: ['team-dev'] });
    }
    const again = newBrowser();
    await signIn(again, 'bob');
    expect((JSON.parse((await session(again)).text) as { roles: string[] }).roles.sort()).toEqual([
      'member',
      'team-dev',
    ]);
  });
});

describe('refusals: a page of keyport-auth, no session, nothing stored changed', () => {
  /** The callback's answer is a page with `text`, no redirect and no session cookie. */
  function expectPage(callback: PageResponse, status: number, text: string) {
    expect(callback.status).toBe(status);
    expect(callback.location).toBeUndefined();
    expect(cookieNamed(callback, '__Host-keyport_session')).toBeUndefined();
    expect(callback.text).toContain(text);
  }

  it('a wrong state', async () => {
    const browser = newBrowser();
    const started = await start(browser);
    const real = new URL(await atIdp(browser, started, 'alice'));
    real.searchParams.set('state', 'x'.repeat(43));
    const before = stored();
    const from = lastAuditId();
    expectPage(await browser.request(real.href), 400, 'unknown or was already used');
    expect(stored()).toEqual(before);
    expect(auditSince(from)).toMatchObject([{ type: 'sso.login', success: 0, message: 'unknown state' }]);
    expect((await session(browser)).status).toBe(401);
  });

  it('a replayed callback: the state was spent by the first', async () => {
    const browser = newBrowser();
    const { callbackUrl, callback } = await signIn(browser, 'alice');
    expect(callback.status).toBe(303);
    const before = stored();
    const from = lastAuditId();
    const replay = await browser.request(callbackUrl);
    expectPage(replay, 400, 'unknown or was already used');
    expect(replay.text).toContain('<a href="/">Back to sign in</a>');
    expect(stored()).toEqual(before);
    expect(auditSince(from)).toMatchObject([
      {
        type: 'sso.login',
        success: 0,
        message: 'request already called back',
        actor: 'alice@keyport.lab',
        fields: { connector: 'lab', kind: 'web' },
      },
    ]);
  });

  it('the callback URL opened in another browser signs that browser in as no one, and spends nothing', async () => {
    const person = newBrowser();
    const started = await start(person);
    const callbackUrl = await atIdp(person, started, 'alice');
    // The other browser started a sign-in of its own, so it holds a binding cookie too: not this request's.
    const other = newBrowser();
    expect((await start(other)).status).toBe(200);
    const before = stored();
    const from = lastAuditId();
    for (const browser of [other, newBrowser()]) {
      expectPage(await browser.request(callbackUrl), 400, 'started in another browser');
      expect((await session(browser)).status).toBe(401);
    }
    expect(stored()).toEqual(before);
    expect(auditSince(from)).toMatchObject(
      Array(2).fill({
        type: 'sso.login',
        success: 0,
        message: 'callback in another browser than the one that started the sign-in',
        fields: { connector: 'lab', kind: 'web', step: 'callback' },
      }),
    );
    // The person's own browser still finishes the sign-in.
    const own = await person.request(callbackUrl);
    expect(own.status).toBe(303);
    expect(JSON.parse((await session(person)).text)).toMatchObject({ user: 'alice@keyport.lab' });
  });

  it("the IdP's own error (prompt=none without a session at the IdP): said on the page and audited", async () => {
    await create(connectorYaml('silent', ['  prompt: none']));
    const browser = newBrowser();
    const started = await start(browser, 'silent');
    const before = stored();
    const from = lastAuditId();
    const callbackUrl = await atIdp(browser, started, 'alice');
    expect(new URL(callbackUrl).searchParams.get('error')).toBe('login_required');
    const callback = await browser.request(callbackUrl);
    expectPage(callback, 403, 'The identity provider refused the sign-in (login_required');
    // The request's state was spent (single use); nothing else changed.
    expect(stored().users).toEqual(before.users);
    expect(stored().webSessions).toEqual(before.webSessions);
    expect(query("SELECT stage FROM sso_requests WHERE connector = 'silent'")).toEqual([
      { stage: 'called-back' },
    ]);
    expect(auditSince(from)).toMatchObject([
      {
        type: 'sso.login',
        success: 0,
        message: 'identity provider error: login_required',
        fields: { step: 'callback', connector: 'silent', kind: 'web' },
      },
    ]);
  });

  it('a person whose claims match no mapping: denied without naming a role, no user, no session', async () => {
    const browser = newBrowser();
    const before = stored();
    const from = lastAuditId();
    const { callback } = await signIn(browser, 'carol');
    expectPage(callback, 403, 'gives no access to web-sso');
    for (const role of ['editor', 'member', 'team-']) expect(callback.text).not.toContain(role);
    expect(stored().users).toEqual(before.users);
    expect(stored().webSessions).toEqual(before.webSessions);
    expect(auditSince(from).at(-1)).toMatchObject({
      type: 'sso.login',
      success: 0,
      message: 'no claims_to_roles mapping matched',
      fields: { connector: 'lab', idp_subject: 'carol', kind: 'web' },
    });
  });

  it('a local user of the same name: refused with a clear error, never merged', async () => {
    await create('kind: user\nversion: v2\nmetadata:\n  name: carol@keyport.lab\nspec:\n  roles: [member]\n');
    idp.setClaims('carol', { groups: ['team-dev'] });
    try {
      const browser = newBrowser();
      const before = stored();
      const from = lastAuditId();
      const { callback } = await signIn(browser, 'carol');
      expectPage(callback, 403, 'A local user named &#34;carol@keyport.lab&#34; exists on web-sso');
      expect(stored().users).toEqual(before.users);
      expect(stored().webSessions).toEqual(before.webSessions);
      expect(auditSince(from).at(-1)).toMatchObject({
        success: 0,
        message: 'user name taken by a local user',
        fields: { idp_subject: 'carol', kind: 'web' },
      });
    } finally {
      idp.setClaims('carol', { groups: ['contractors'] });
      await runAdmin(cluster, ['rm', 'user/carol@keyport.lab']);
    }
  });

  it('a connector with require_local_mfa: refused on the web (no security-key step here yet), fail closed', async () => {
    await create(connectorYaml('strict', ['  require_local_mfa: true']));
    const browser = newBrowser();
    const before = stored();
    const { callback } = await signIn(browser, 'bob', 'strict');
    expectPage(callback, 403, 'requires your security key after the identity provider');
    expect(stored().users).toEqual(before.users);
    expect(stored().webSessions).toEqual(before.webSessions);
  });

  it('roles that require a hardware key: refused as a local web sign-in is (a browser holds no session key)', async () => {
    await create(
      'kind: role\nversion: v7\nmetadata:\n  name: card\nspec:\n  options:\n    require_session_mfa: hardware_key\n  allow:\n    logins: [card]\n',
    );
    await create(
      connectorYaml('cards').replace(
        / {2}claims_to_roles:\n[\s\S]*$/,
        '  claims_to_roles:\n    - {claim: groups, value: "team-*", roles: [card]}\n',
      ),
    );
    const browser = newBrowser();
    const before = stored();
    const from = lastAuditId();
    const { callback } = await signIn(browser, 'bob', 'cards');
    expectPage(callback, 403, 'require a hardware key (hardware_key)');
    expect(stored().users).toEqual(before.users);
    expect(stored().webSessions).toEqual(before.webSessions);
    expect(auditSince(from).at(-1)).toMatchObject({
      success: 0,
      message: 'private key policy "hardware_key": no web session',
      fields: { connector: 'cards', idp_subject: 'bob', kind: 'web' },
    });
  });

  it('a request older than 5 minutes on the service clock: the callback says so', async () => {
    const browser = newBrowser();
    const started = await start(browser);
    const callbackUrl = await atIdp(browser, started, 'alice');
    clock.advance(5 * 60 * 1000 + 1000);
    const before = stored();
    expectPage(await browser.request(callbackUrl), 400, 'took longer than 5 minutes');
    expect(stored()).toEqual(before);
  });
});

describe('the start, refused before anything is stored', () => {
  it('without the web UI as Origin, for an unknown connector, or with a bad body', async () => {
    const browser = newBrowser();
    const before = stored();
    const noOrigin = await browser.script(`${origin}${WEBAPI.ssoStart}`, { json: { connector: 'lab' } });
    expect(noOrigin.status).toBe(403);
    const foreign = await browser.script(`${origin}${WEBAPI.ssoStart}`, {
      json: { connector: 'lab' },
      headers: { origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    const unknown = await start(browser, 'okta');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toMatchObject({
      error: { code: 'NOT_FOUND', message: expect.stringMatching(/this cluster offers: (.*, )?lab(,|\.)/) },
    });
    const extra = await browser.script(`${origin}${WEBAPI.ssoStart}`, {
      json: { connector: 'lab', redirect: 'http://127.0.0.1:1/' },
      headers: { origin },
    });
    expect(JSON.parse(extra.text)).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
    for (const response of [noOrigin, foreign, unknown, extra]) {
      expect(cookieNamed(response, '__Host-keyport_sso')).toBeUndefined();
    }
    expect(stored()).toEqual(before);
  });
});
