// keyport-auth's web listener over real HTTPS, as a browser's page (or a hostile one) would call it: sign-in
// with a password and an OTP code through the same login ceremony as gRPC, the session cookie's
// attributes, the session stored hashed, CSRF and Origin checks, sign-out, a session ended when its user
// is locked or deleted, lockout shared with gRPC logins, and bad bodies refused with a typed error while
// nothing stored changes. Time moves on the lab clock only.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../auth/totp';
import { connectAsAdmin, openClusterDb, signUpUserInProcess, startLabCluster } from '../lab/cluster';
import type { LabCluster, SignedUpUser } from '../lab/cluster';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { connectClusterConfig } from '../lab/connect';
import { webClient } from '../lab/web';
import type { WebResponse } from '../lab/web';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';

let cluster: LabCluster;
let clock: LabClock;
let web: Awaited<ReturnType<typeof webClient>>;
let home: string;
const people: Record<string, SignedUpUser> = {};

const MAX_ATTEMPTS = 3;

beforeAll(async () => {
  clock = createLabClock();
  home = await mkdtemp(join(tmpdir(), 'keyport-web-api-'));
  cluster = await startLabCluster({
    clusterName: 'web',
    configYaml:
      connectClusterConfig('localhost:0') +
      `  lockout:\n    max_attempts: ${MAX_ATTEMPTS}\n    window: 30m\n    duration: 30m\n`,
    extraArgs: ['--web-listen', '127.0.0.1:0'],
    env: clock.env,
  });
  web = await webClient(cluster);
  const admin = await connectAsAdmin(cluster);
  try {
    const role = (name: string, options: Record<string, unknown>) =>
      JSON.stringify({ kind: 'role', version: 'v7', metadata: { name }, spec: { options, allow: {} } });
    await admin.admin.createResources({
      documentsJson: [
        role('short', { max_session_ttl: '1h' }),
        role('card', { require_session_mfa: 'hardware_key' }),
      ],
      force: false,
    });
  } finally {
    admin.close();
  }
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'mallory']) {
    people[name] = await signUpUserInProcess(cluster, join(home, name), name, ['access']);
  }
  people.sam = await signUpUserInProcess(cluster, join(home, 'sam'), 'sam', ['access', 'short']);
  people.kim = await signUpUserInProcess(cluster, join(home, 'kim'), 'kim', ['access', 'card']);
  // Signup spent each user's current OTP step: sign-ins use the next ones.
  clock.advance(31_000);
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  clock?.dispose();
  await rm(home, { recursive: true, force: true });
});

function person(name: string): SignedUpUser {
  const found = people[name];
  if (!found) throw new Error(`no ${name}`);
  return found;
}

/** Every row of the tables a refused request must leave alone. */
function storedState() {
  const db = openClusterDb(cluster);
  try {
    return Object.fromEntries(
      ['challenges', 'web_sessions', 'audit_events', 'rate_limits', 'login_attempts', 'users'].map(
        (table) => [table, db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all()],
      ),
    );
  } finally {
    db.close();
  }
}

function sessionRows(user: string) {
  const db = openClusterDb(cluster);
  try {
    return db.prepare('SELECT * FROM web_sessions WHERE user = ?').all(user) as {
      id: string;
      token_hash: string;
      expires_ms: number;
      created_ms: number;
    }[];
  } finally {
    db.close();
  }
}

const cookieOf = (response: WebResponse): string => {
  const header = response.headers['set-cookie']?.[0] ?? '';
  return header.split(';')[0] ?? '';
};

/** Password and then an OTP code (a fresh time step: the lab clock moves on after each use). */
async function signIn(name: string): Promise<{ cookie: string; csrf: string; response: WebResponse }> {
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
  return { cookie: cookieOf(response), csrf: String(response.json.csrfToken), response };
}

const getSession = (cookie: string) => web.request('GET', WEBAPI.session, { headers: { Cookie: cookie } });

describe('web sign-in and sessions', () => {
  it('signs in with a password and an OTP code, sets a __Host- cookie that is HttpOnly, Secure and SameSite=Strict, and stores only its hash', async () => {
    const { cookie, response } = await signIn('alice');
    const setCookie = response.headers['set-cookie']?.[0] ?? '';
    const token = cookie.split('=')[1] ?? '';
    expect(cookie).toMatch(/^__Host-keyport_session=[A-Za-z0-9_-]{43}$/);
    const attributes = setCookie.split(';').map((part) => part.trim());
    expect(attributes).toEqual(expect.arrayContaining(['Path=/', 'Secure', 'HttpOnly', 'SameSite=Strict']));
    expect(setCookie).not.toMatch(/Domain=/i);
    // Server side: the hash, never the token.
    const [row] = sessionRows('alice');
    expect(row?.token_hash).toBe(createHash('sha256').update(token).digest('base64url'));
    const db = openClusterDb(cluster);
    try {
      const dump = JSON.stringify(db.prepare('SELECT * FROM web_sessions').all());
      expect(dump).not.toContain(token);
    } finally {
      db.close();
    }
    // The cookie lives no longer than the session, and the session no longer than a certificate (12 h).
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(12 * 3600);
    expect((row?.expires_ms ?? 0) - (row?.created_ms ?? 0)).toBe(12 * 3600 * 1000);
    // The same ceremony's audit as gRPC: user.login, and the session.
    const audit = openClusterDb(cluster);
    try {
      const events = audit
        .prepare("SELECT type, message FROM audit_events WHERE actor = 'alice' AND success = 1 ORDER BY id")
        .all() as { type: string; message: string }[];
      expect(events).toEqual(
        expect.arrayContaining([
          { type: 'user.login', message: 'password and OTP (web)' },
          expect.objectContaining({ type: 'web.session' }),
        ]),
      );
    } finally {
      audit.close();
    }
  });

  it("lasts no longer than the user's certificates would: a role's max_session_ttl caps the session and its cookie", async () => {
    const { response } = await signIn('sam');
    const [row] = sessionRows('sam');
    expect((row?.expires_ms ?? 0) - (row?.created_ms ?? 0)).toBe(3600 * 1000);
    expect(Number(/Max-Age=(\d+)/.exec(response.headers['set-cookie']?.[0] ?? '')?.[1])).toBeLessThanOrEqual(
      3600,
    );
  });

  it('refuses a web session to a user whose roles require a hardware key, audited, and stores no session', async () => {
    const who = person('kim');
    const challenge = await web.request('POST', WEBAPI.challenge, {
      body: { user: who.user, password: who.password },
    });
    expect(challenge.status).toBe(200);
    const refused = await web.request('POST', WEBAPI.login, {
      body: { challengeId: challenge.json.challengeId, totpCode: totpCode(who.totpSecret, clock.now()) },
    });
    clock.advance(31_000);
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({
      code: 'PRIVATE_KEY_POLICY_NOT_MET',
      message: expect.stringContaining('keyport login'),
    });
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(sessionRows('kim')).toEqual([]);
    const db = openClusterDb(cluster);
    try {
      const audited = db
        .prepare(
          "SELECT message FROM audit_events WHERE type = 'user.login' AND actor = 'kim' AND success = 0",
        )
        .all();
      expect(audited).toEqual([{ message: 'private key policy "hardware_key": no web session' }]);
    } finally {
      db.close();
    }
  });

  it('shows the home screen data: user, roles, logins, until when, MFA devices and an untrusted device state', async () => {
    const { cookie, csrf } = await signIn('bob');
    const session = await getSession(cookie);
    expect(session.status).toBe(200);
    expect(session.json).toMatchObject({
      user: 'bob',
      roles: ['access'],
      logins: ['bob'],
      loginMethod: 'password and OTP',
      mfaVerified: true,
      device: { trusted: false },
      csrfToken: csrf,
    });
    expect(session.json.mfaDevices).toEqual([expect.objectContaining({ type: 'totp', passkey: false })]);
    expect(session.json.expiresMs).toBe(sessionRows('bob')[0]?.expires_ms);
    expect(session.headers['cache-control']).toBe('no-store');
  });

  it('serves the app and the API with a strict CSP and the usual security headers', async () => {
    const index = await web.request('GET', '/', { origin: null });
    expect(index.status).toBe(200);
    expect(index.body).toContain('<div id="root">');
    expect(index.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    for (const response of [index, await web.request('GET', WEBAPI.cluster)]) {
      const csp = String(response.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(response.headers['x-frame-options']).toBe('DENY');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['referrer-policy']).toBe('no-referrer');
      expect(response.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    }
    const info = await web.request('GET', WEBAPI.cluster);
    expect(info.json).toMatchObject({ clusterName: 'web', passwordless: true, secondFactorRequired: true });
  });

  it('refuses a sign-out without the CSRF token, or with a wrong one, and the session stays', async () => {
    const { cookie, csrf } = await signIn('carol');
    const before = sessionRows('carol');
    const missing = await web.request('DELETE', WEBAPI.session, { headers: { Cookie: cookie } });
    expect(missing.status).toBe(403);
    expect(missing.json.error).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/CSRF/),
    });
    const wrong = await web.request('DELETE', WEBAPI.session, {
      headers: { Cookie: cookie, [WEBAPI_CSRF_HEADER]: `${csrf.slice(0, -2)}AA` },
    });
    expect(wrong.status).toBe(403);
    // Another session's token is no better.
    const other = await signIn('dave');
    const crossed = await web.request('DELETE', WEBAPI.session, {
      headers: { Cookie: cookie, [WEBAPI_CSRF_HEADER]: other.csrf },
    });
    expect(crossed.status).toBe(403);
    expect(sessionRows('carol')).toEqual(before);
    expect((await getSession(cookie)).status).toBe(200);
  });

  it('refuses a request from another Origin (or none, for a state change), and a Host that is not the web UI', async () => {
    const { cookie, csrf } = await signIn('dave');
    const before = storedState();
    const who = person('erin');
    const foreign = await web.request('POST', WEBAPI.challenge, {
      body: { user: who.user, password: who.password },
      origin: 'https://evil.example',
    });
    expect(foreign.status).toBe(403);
    expect(foreign.json.error).toMatchObject({ code: 'ACCESS_DENIED' });
    const noOrigin = await web.request('POST', WEBAPI.challenge, {
      body: { user: who.user, password: who.password },
      origin: null,
    });
    expect(noOrigin.status).toBe(403);
    // Another port of the same host is another origin.
    const otherPort = await web.request('DELETE', WEBAPI.session, {
      headers: { Cookie: cookie, [WEBAPI_CSRF_HEADER]: csrf },
      origin: web.origin.replace(/:\d+$/, ':1'),
    });
    expect(otherPort.status).toBe(403);
    const crossSite = await web.request('GET', WEBAPI.session, {
      headers: { Cookie: cookie, 'Sec-Fetch-Site': 'cross-site' },
      origin: null,
    });
    expect(crossSite.status).toBe(403);
    const rebound = await web.request('GET', WEBAPI.cluster, { headers: { Host: 'attacker.example' } });
    expect(rebound.status).toBe(403);
    expect(storedState()).toEqual(before);
  });

  it('signs out: the session is gone server side, the cookie is cleared, and the old cookie is refused', async () => {
    const { cookie, csrf } = await signIn('erin');
    const out = await web.request('DELETE', WEBAPI.session, {
      headers: { Cookie: cookie, [WEBAPI_CSRF_HEADER]: csrf },
    });
    expect(out.status).toBe(200);
    expect(out.headers['set-cookie']?.[0]).toMatch(/^__Host-keyport_session=; .*Max-Age=0/);
    expect(sessionRows('erin')).toEqual([]);
    const after = await getSession(cookie);
    expect(after.status).toBe(401);
    expect(after.json.error).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('ends every session of a user when an admin locks the user, and when the user is deleted', async () => {
    const locked = await signIn('alice');
    const deleted = await signIn('mallory');
    expect(sessionRows('alice').length).toBeGreaterThanOrEqual(2);
    const admin = await connectAsAdmin(cluster);
    try {
      await admin.admin.lockUser({ name: 'alice', reason: 'lost laptop', durationSeconds: 0 });
      expect(sessionRows('alice')).toEqual([]);
      const refused = await getSession(locked.cookie);
      expect(refused.status).toBe(401);
      expect(refused.json.error).toMatchObject({ code: 'UNAUTHENTICATED' });
      await admin.admin.unlockUser({ name: 'alice' });
      // Unlocking does not bring the ended sessions back.
      expect((await getSession(locked.cookie)).status).toBe(401);

      await admin.admin.deleteResource({ kind: 'user', name: 'mallory' });
      expect(sessionRows('mallory')).toEqual([]);
      expect((await getSession(deleted.cookie)).status).toBe(401);
    } finally {
      admin.close();
    }
  });

  it("checks the user's lock at every request: a lock written by another way ends the user's sessions there", async () => {
    const first = await signIn('alice');
    const second = await signIn('alice');
    // As a replica that does not end web sessions would leave it: the lock alone, straight in the database.
    const db = openClusterDb(cluster, { readonly: false });
    try {
      db.prepare("UPDATE users SET locked_until_ms = ?, lock_reason = 'test' WHERE name = 'alice'").run(
        Number.MAX_SAFE_INTEGER,
      );
    } finally {
      db.close();
    }
    const refused = await getSession(first.cookie);
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({ code: 'LOCKED' });
    expect(sessionRows('alice')).toEqual([]);
    expect((await getSession(second.cookie)).status).toBe(401);
    const audit = openClusterDb(cluster);
    try {
      const ended = audit
        .prepare(
          "SELECT actor, message FROM audit_events WHERE type = 'web.session' AND message LIKE 'web session ended%'",
        )
        .all();
      expect(ended).toEqual(
        expect.arrayContaining([
          { actor: 'alice', message: 'web session ended: user is locked' },
          { actor: 'erin', message: 'web session ended: signed out' },
        ]),
      );
    } finally {
      audit.close();
    }
  });

  it('ends a session at its expiry on the service clock', async () => {
    const { cookie } = await signIn('bob');
    expect((await getSession(cookie)).status).toBe(200);
    clock.advance(12 * 3600 * 1000);
    expect((await getSession(cookie)).status).toBe(401);
  });

  it('counts wrong web passwords toward the same lockout as gRPC logins, audited alike', async () => {
    const who = person('dave');
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const wrong = await web.request('POST', WEBAPI.challenge, {
        body: { user: who.user, password: 'wrong' },
      });
      expect(wrong.status).toBe(403);
      expect(wrong.json.error).toMatchObject({ code: i < MAX_ATTEMPTS - 1 ? 'ACCESS_DENIED' : 'LOCKED' });
    }
    const right = await web.request('POST', WEBAPI.challenge, {
      body: { user: who.user, password: who.password },
    });
    expect(right.status).toBe(403);
    expect(right.json.error).toMatchObject({ code: 'LOCKED', lockedUntilMs: expect.any(Number) });
    // The lockout is the table gRPC logins count in: the same (name, address).
    const db = openClusterDb(cluster);
    try {
      const failures = db.prepare("SELECT count(*) AS n FROM login_attempts WHERE name = 'dave'").get() as {
        n: number;
      };
      expect(failures.n).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
      const audited = db
        .prepare(
          "SELECT count(*) AS n FROM audit_events WHERE type = 'user.login' AND actor = 'dave' AND success = 0",
        )
        .get() as { n: number };
      expect(audited.n).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    } finally {
      db.close();
    }
  });

  it.each([
    ['not JSON', { rawBody: '{"user":', headers: {} }, 400, 'INVALID_ARGUMENT'],
    [
      'a form post',
      { rawBody: 'user=a&password=b', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } },
      400,
      'INVALID_ARGUMENT',
    ],
    ['an unknown field', { body: { user: 'bob', password: 'x', admin: true } }, 400, 'INVALID_ARGUMENT'],
    [
      'a user name over its bound',
      { body: { user: 'b'.repeat(129), password: 'x' } },
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'a body over 64 KiB',
      { body: { user: 'bob', password: 'x'.repeat(70 * 1024) } },
      429,
      'RESOURCE_EXHAUSTED',
    ],
  ])(
    'refuses %s with a typed JSON error, and nothing stored changes',
    async (_name, options, status, code) => {
      const before = storedState();
      const response = await web.request('POST', WEBAPI.challenge, options);
      expect(response.status).toBe(status);
      expect(response.json.error).toMatchObject({ code, message: expect.any(String) });
      expect(storedState()).toEqual(before);
    },
  );

  it('serves only the built app: a path out of its folder or a malformed one is refused', async () => {
    for (const path of [
      '/..%2F..%2Fpackage.json',
      '/assets/..%2F..%2F..%2Fauth%2Fserver.ts',
      '/%2e%2e/%2e%2e/package.json',
    ]) {
      const response = await web.request('GET', path, { origin: null });
      expect(response.status, path).toBe(404);
      expect(response.body).not.toContain('"name": "keyport"');
    }
    const malformed = await web.request('GET', '/%E0%A4%A', { origin: null });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('refuses a login answer that is not one, and an unknown API path, with typed errors', async () => {
    const before = storedState();
    const both = await web.request('POST', WEBAPI.login, {
      body: { challengeId: 'x', totpCode: '123456', webauthn: {} },
    });
    expect(both.status).toBe(400);
    expect(both.json.error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const unknown = await web.request('GET', '/v1/webapi/nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ code: 'NOT_FOUND' });
    expect(storedState()).toEqual(before);
  });
});
