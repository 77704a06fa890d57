// SSO through an oidc connector against a real keyport-auth (--web-listen) and the lab IdP: the ceremony
// step by step (StartSSOLogin, the IdP's login page, the callback on the web listener, RedeemSSOLogin with
// the session key's signature), claims_to_roles (literal, wildcard, regular expression with expansion, no
// match), and every refusal with its code, its audit row and nothing stored changed.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import {
  connectAsAdmin,
  keyportCliPath,
  openClusterDb,
  repoRoot,
  runAdmin,
  runKeyportAuth,
  startLabCluster,
} from '../lab/cluster';
import { LabBrowser } from '../lab/oidc/browser';
import type { LabCluster } from '../lab/cluster';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { startLabOidcProvider } from '../lab/oidc/provider';
import type { LabOidcProvider } from '../lab/oidc/provider';
import {
  followCallback,
  freePort,
  newSessionKey,
  redeemSso,
  signInAtIdp,
  startSso,
} from '../lab/oidc/sso-login';
import { readFile } from 'node:fs/promises';
import { labConnectorYaml, LAB_CLIENT_ID, LAB_CLIENT_SECRET } from '../lab/oidc/sso-lab';

let work: string;
let clock: LabClock;
let idp: LabOidcProvider;
let cluster: LabCluster;
let admin: ClusterApi;
let api: ClusterApi;
let redirectUri: string;

function connectorYaml(name: string, extra: string[] = [], issuer = idp.issuer): string {
  return labConnectorYaml({ idp, redirectUri }, name, extra, {
    issuer,
    claimsToRoles: [
      '{claim: groups, value: admins, roles: [editor]}',
      '{claim: groups, value: "team-*", roles: [member]}',
      '{claim: groups, value: "^team-(.*)$", roles: ["team-$1"]}',
    ],
  });
}

function roleYaml(name: string): string {
  return `kind: role\nversion: v7\nmetadata:\n  name: ${name}\nspec:\n  allow:\n    logins: [${name}]\n`;
}

let files = 0;
async function create(text: string, ...flags: string[]) {
  files += 1;
  const path = join(work, `doc-${files}.yaml`);
  await writeFile(path, text);
  const result = await runAdmin(cluster, ['create', '-f', path, ...flags]);
  expect(result.code, result.stderr).toBe(0);
}

/** What a refused SSO login must leave as it was: users, issued codes, certificates. */
function stored() {
  const db = openClusterDb(cluster);
  try {
    return {
      users: db
        .prepare('SELECT name, spec_json, sso_connector, sso_subject, updated_ms FROM users ORDER BY name')
        .all(),
      codes: db
        .prepare("SELECT id, stage FROM sso_requests WHERE stage IN ('authorized', 'redeemed') ORDER BY id")
        .all(),
      certificates: db.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'cert.issued'").get(),
    };
  } finally {
    db.close();
  }
}

function lastAudit(type: string): {
  actor: string;
  success: number;
  message: string;
  fields: Record<string, unknown>;
} {
  const db = openClusterDb(cluster);
  try {
    const row = db
      .prepare(
        'SELECT actor, success, message, fields_json FROM audit_events WHERE type = ? ORDER BY id DESC LIMIT 1',
      )
      .get(type) as { actor: string; success: number; message: string; fields_json: string };
    return { ...row, fields: JSON.parse(row.fields_json) as Record<string, unknown> };
  } finally {
    db.close();
  }
}

/** One SSO login as `user` up to the callback; returns the start and the callback's outcome. */
async function throughCallback(user: string, connector = 'lab') {
  const started = await startSso(api, connector);
  const callbackUrl = await signInAtIdp(idp, started, user, redirectUri);
  const callback = await followCallback(cluster, callbackUrl);
  return { started, callbackUrl, callback };
}

/** The error the callback sent to the client's loopback address. */
function errorOf(callback: { location?: URL }) {
  return {
    code: callback.location?.searchParams.get('error'),
    message: callback.location?.searchParams.get('message'),
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-sso-login-'));
  clock = createLabClock();
  const webPort = await freePort();
  redirectUri = `https://localhost:${webPort}/v1/webapi/oidc/callback`;
  idp = await startLabOidcProvider({
    clients: [{ clientId: LAB_CLIENT_ID, clientSecret: LAB_CLIENT_SECRET, redirectUris: [redirectUri] }],
  });
  await writeFile(join(work, 'idp-ca.pem'), idp.caPem);
  cluster = await startLabCluster({
    clusterName: 'sso-lab',
    dataDir: join(work, 'data'),
    configYaml: `auth_service:\n  oidc_ca_file: ${join(work, 'idp-ca.pem')}\n  authentication:\n    type: local\n    second_factor: "off"\n`,
    extraArgs: ['--web-listen', `127.0.0.1:${webPort}`],
    env: clock.env,
  });
  admin = await connectAsAdmin(cluster);
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  api = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: identity.caCertPem,
    caPin: cluster.caPin,
  });
  await create(['member', 'team-platform', 'team-dev'].map(roleYaml).join('---\n'));
  await create(connectorYaml('lab'));
});

afterAll(async () => {
  api?.close();
  admin?.close();
  await cluster?.stop();
  await idp?.stop();
  clock?.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('an SSO login through the lab IdP', () => {
  it('signs alice in: authorization URL, IdP login, callback → loopback with a one-time code, certificates for the key', async () => {
    const { started, callback } = await throughCallback('alice');
    const authorization = new URL(started.started.authorizationUrl);
    expect(authorization.origin).toBe(idp.issuer);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('redirect_uri')).toBe(redirectUri);
    expect(authorization.searchParams.get('scope')).toBe('openid email profile groups');
    expect(callback.status).toBe(303);
    expect(callback.location?.origin + (callback.location?.pathname ?? '')).toBe(started.clientRedirect);
    const code = callback.location?.searchParams.get('code');
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The browser carries a code, never a certificate.
    expect(callback.location?.href).not.toContain('CERTIFICATE');

    const login = await redeemSso(api, started, code!);
    expect(login.user).toBe('alice@keyport.lab');
    // admins → editor (literal), team-platform → member (wildcard) and team-platform (regex $1).
    expect(login.roles.sort()).toEqual(['editor', 'member', 'team-platform']);
    expect(login.mfaVerified).toBe(false);
    const certificate = new X509Certificate(login.tlsCertificate);
    expect(certificate.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      createPublicKey(started.key.publicKeyPem).export({ type: 'spki', format: 'der' }),
    );
    expect(login.sshCertificate).toMatch(/^ecdsa-sha2-nistp256-cert-v01@openssh.com /);

    const db = openClusterDb(cluster);
    const user = db.prepare("SELECT * FROM users WHERE name = 'alice@keyport.lab'").get() as Record<
      string,
      unknown
    >;
    db.close();
    expect(user).toMatchObject({ sso_connector: 'lab', sso_subject: 'alice', password_hash: null });
    expect(JSON.parse(user.spec_json as string)).toEqual({ roles: ['editor', 'member', 'team-platform'] });
    const mapped = lastAudit('sso.login');
    expect(mapped).toMatchObject({ actor: 'alice@keyport.lab', success: 1 });
    expect(mapped.fields).toMatchObject({ step: 'callback', connector: 'lab', idp_subject: 'alice' });
    expect(mapped.fields.claims_matched).toEqual(
      expect.arrayContaining([{ claim: 'groups', value: 'admins', roles: ['editor'] }]),
    );
    expect(lastAudit('cert.issued').fields).toMatchObject({ connector: 'lab', idp_subject: 'alice' });
  });

  it('maps claims_to_roles: a wildcard and a regular expression with expansion (bob: team-dev)', async () => {
    const { started, callback } = await throughCallback('bob');
    const login = await redeemSso(api, started, callback.location!.searchParams.get('code')!);
    expect(login.roles.sort()).toEqual(['member', 'team-dev']);
    expect(login.logins.sort()).toEqual(['member', 'team-dev']);
  });

  it('updates the SSO user from the claims at each login (an IdP group removed, a role gone)', async () => {
    idp.setClaims('bob', { groups: ['team-platform'] });
    try {
      const { started, callback } = await throughCallback('bob');
      const login = await redeemSso(api, started, callback.location!.searchParams.get('code')!);
      expect(login.roles.sort()).toEqual(['member', 'team-platform']);
    } finally {
      idp.setClaims('bob', { groups: ['team-dev'] });
    }
  });

  it('denies a person whose claims match no mapping, naming no role; no user is created', async () => {
    const before = stored();
    const { callback } = await throughCallback('carol');
    expect(errorOf(callback).code).toBe('ACCESS_DENIED');
    expect(errorOf(callback).message).toContain('gives no access to sso-lab');
    for (const role of ['editor', 'member', 'team-']) expect(errorOf(callback).message).not.toContain(role);
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({
      success: 0,
      message: 'no claims_to_roles mapping matched',
    });
    expect(lastAudit('sso.login').fields).toMatchObject({ connector: 'lab', idp_subject: 'carol' });
  });
});

describe('keyport login --auth=NAME --browser=none', () => {
  /** Runs the CLI's SSO login; `browse` plays the person with the printed URL. */
  async function cliLogin(browse: (url: string) => Promise<void>) {
    const home = await mkdtemp(join(work, 'home-'));
    const child = spawn(
      process.execPath,
      [
        keyportCliPath,
        'login',
        '--cluster',
        cluster.address,
        '--ca-pin',
        cluster.caPin,
        '--auth=lab',
        '--browser=none',
        '--keystore',
        'file',
      ],
      {
        cwd: repoRoot,
        env: { ...process.env, ...clock.env, KEYPORT_HOME: home },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const found = /^(https:\/\/127\.0\.0\.1:\d+\/\S+)$/m.exec(stderr);
        if (found) resolve(found[1]!);
      });
      child.once('exit', () => reject(new Error(`keyport exited before printing the URL: ${stderr}`)));
    });
    await browse(url);
    const code = await new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once('exit', resolve);
    });
    return { code, stdout, stderr, home };
  }

  /** The person: the IdP's login page, keyport-auth's callback, then the CLI's loopback page. */
  async function browseAs(user: string, url: string) {
    const { callbackUrl } = await new LabBrowser(idp.caPem).signIn(
      url,
      { username: user, password: `${user}-lab-password` },
      redirectUri,
    );
    const callback = await followCallback(cluster, callbackUrl!);
    expect(callback.status).toBe(303);
    expect(callback.location?.hostname).toBe('127.0.0.1');
    const tab = await fetch(callback.location!);
    return { status: tab.status, text: await tab.text() };
  }

  it('signs alice in through the printed URL; the tab says so; the profile holds her certificates', async () => {
    let tab: { status: number; text: string } | undefined;
    const result = await cliLogin(async (url) => {
      expect(url.startsWith(`${idp.issuer}/`)).toBe(true);
      tab = await browseAs('alice', url);
    });
    expect(result.code, result.stderr).toBe(0);
    expect(tab?.status).toBe(200);
    expect(tab?.text).toContain('Signed in to sso-lab. You can close this tab.');
    expect(result.stdout).toContain('alice@keyport.lab');
    const profiles = await readdir(join(result.home, 'profiles'), { recursive: true });
    expect(profiles.length).toBeGreaterThan(0);
    expect(lastAudit('user.login')).toMatchObject({
      actor: 'alice@keyport.lab',
      success: 1,
      message: 'sso (lab)',
    });
  });

  it('a person whose claims map no role: the tab and the CLI both say access is denied', async () => {
    let tab: { status: number; text: string } | undefined;
    const result = await cliLogin(async (url) => {
      tab = await browseAs('carol', url);
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('gives no access to sso-lab');
    expect(tab?.text).toContain('Sign-in to sso-lab failed');
  });
});

describe('refusals, each storing nothing', () => {
  it('a wrong state: a page, no redirect, audited', async () => {
    const started = await startSso(api, 'lab');
    const real = new URL(await signInAtIdp(idp, started, 'alice', redirectUri));
    real.searchParams.set('state', 'x'.repeat(43));
    const before = stored();
    const callback = await followCallback(cluster, real.href);
    expect(callback.status).toBe(400);
    expect(callback.location).toBeUndefined();
    expect(callback.body).toContain('unknown or was already used');
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({ success: 0, message: 'unknown state' });
  });

  it('a replayed callback: the state was spent by the first', async () => {
    const { callbackUrl, callback } = await throughCallback('alice');
    expect(callback.status).toBe(303);
    const before = stored();
    const replay = await followCallback(cluster, callbackUrl);
    expect(replay.status).toBe(400);
    expect(replay.location).toBeUndefined();
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({ success: 0, message: 'request already called back' });
  });

  it('a replayed one-time code: ACCESS_DENIED, no second certificate', async () => {
    const { started, callback } = await throughCallback('alice');
    const code = callback.location!.searchParams.get('code')!;
    await redeemSso(api, started, code);
    const before = stored();
    await expect(redeemSso(api, started, code)).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({ success: 0, message: 'code already used' });
  });

  it("a one-time code redeemed by a client without the request's key: refused, and the code still unspent", async () => {
    const { started, callback } = await throughCallback('alice');
    const code = callback.location!.searchParams.get('code')!;
    const before = stored();
    await expect(redeemSso(api, started, code, newSessionKey().privateKey)).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringContaining('client that started the sign-in'),
    });
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({
      success: 0,
      message: 'code redeemed without the request key',
    });
    // The rightful client still redeems it.
    expect((await redeemSso(api, started, code)).user).toBe('alice@keyport.lab');
  });

  const tokenCases: [string, (claims: Record<string, unknown>) => Record<string, unknown>, RegExp][] = [
    ['the wrong audience', (claims) => ({ ...claims, aud: 'another-client' }), /unexpected JWT "aud"/],
    [
      'an expired ID token',
      (claims) => ({
        ...claims,
        iat: Math.floor(Date.now() / 1000) - 7200,
        exp: Math.floor(Date.now() / 1000) - 3600,
      }),
      /"exp" \(expiration time\) claim value, expiration is past/,
    ],
    [
      'a wrong nonce',
      (claims) => ({ ...claims, nonce: 'not-the-requests-nonce' }),
      /unexpected ID Token "nonce"/,
    ],
  ];
  for (const [what, rewrite, reason] of tokenCases) {
    it(`an ID token with ${what}: ACCESS_DENIED at the client, nothing stored`, async () => {
      const before = stored();
      idp.rewriteIdTokens(rewrite);
      try {
        const { callback } = await throughCallback('alice');
        expect(errorOf(callback).code).toBe('ACCESS_DENIED');
      } finally {
        idp.rewriteIdTokens(undefined);
      }
      expect(stored()).toEqual(before);
      const audit = lastAudit('sso.login');
      expect(audit).toMatchObject({ success: 0 });
      expect(audit.message).toMatch(reason);
    });
  }

  it('an ID token signed by a second, unpublished IdP key: refused (signature checked)', async () => {
    const before = stored();
    idp.signIdTokensWith('unpublished');
    try {
      const { callback } = await throughCallback('alice');
      expect(errorOf(callback).code).toBe('ACCESS_DENIED');
    } finally {
      idp.signIdTokensWith('published');
    }
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login').message).toContain('JWT signature verification failed');
  });

  it('with max_age: an ID token without auth_time, and one whose auth_time is too old, are refused', async () => {
    await create(connectorYaml('strict', ['  max_age: 60s']));
    const before = stored();
    idp.rewriteIdTokens(({ auth_time: _dropped, ...claims }) => claims);
    try {
      const { started, callback } = await throughCallback('alice', 'strict');
      expect(new URL(started.started.authorizationUrl).searchParams.get('max_age')).toBe('60');
      expect(errorOf(callback)).toMatchObject({
        code: 'ACCESS_DENIED',
        message: expect.stringContaining('auth_time'),
      });
    } finally {
      idp.rewriteIdTokens(undefined);
    }
    expect(lastAudit('sso.login').message).toBe('ID token refused: ID token without auth_time');
    // The IdP signs alice in now; keyport-auth's clock is 3 minutes on when the callback comes.
    const started = await startSso(api, 'strict');
    const callbackUrl = await signInAtIdp(idp, started, 'alice', redirectUri);
    clock.advance(3 * 60 * 1000);
    const callback = await followCallback(cluster, callbackUrl);
    expect(errorOf(callback)).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringContaining('max_age 60s'),
    });
    expect(lastAudit('sso.login').message).toMatch(/^ID token refused: auth_time \d+ s ago, max_age 60 s$/);
    expect(stored()).toEqual(before);
  });

  it("the IdP's own error (prompt=none without a session): passed on to the client and audited", async () => {
    await create(connectorYaml('silent', ['  prompt: none']));
    const before = stored();
    const started = await startSso(api, 'silent');
    const callbackUrl = await signInAtIdp(idp, started, 'alice', redirectUri);
    expect(new URL(callbackUrl).searchParams.get('error')).toBe('login_required');
    const callback = await followCallback(cluster, callbackUrl);
    expect(errorOf(callback)).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringContaining('The identity provider refused the sign-in (login_required'),
    });
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({
      success: 0,
      message: 'identity provider error: login_required',
    });
    expect(lastAudit('sso.login').fields).toMatchObject({ step: 'callback', connector: 'silent' });
  });

  it('a request older than 5 minutes on the service clock: the callback says so, nothing stored', async () => {
    const started = await startSso(api, 'lab');
    const callbackUrl = await signInAtIdp(idp, started, 'alice', redirectUri);
    clock.advance(5 * 60 * 1000 + 1000);
    const before = stored();
    const callback = await followCallback(cluster, callbackUrl);
    expect(callback.status).toBe(400);
    expect(callback.body).toContain('longer than 5 minutes');
    expect(stored()).toEqual(before);
    expect(lastAudit('sso.login')).toMatchObject({ success: 0, message: 'expired request' });
  });

  it('a local user of the same name: refused with a clear error, never merged', async () => {
    await create('kind: user\nversion: v2\nmetadata:\n  name: carol@keyport.lab\nspec:\n  roles: [member]\n');
    idp.setClaims('carol', { groups: ['team-dev'] });
    try {
      const before = stored();
      const { callback } = await throughCallback('carol');
      expect(errorOf(callback)).toMatchObject({
        code: 'ALREADY_EXISTS',
        message: expect.stringContaining('A local user named "carol@keyport.lab" exists on sso-lab'),
      });
      expect(stored()).toEqual(before);
      expect(lastAudit('sso.login')).toMatchObject({
        success: 0,
        message: 'user name taken by a local user',
      });
    } finally {
      idp.setClaims('carol', { groups: ['contractors'] });
      await runAdmin(cluster, ['rm', 'user/carol@keyport.lab']);
    }
  });

  it('an IdP that is down: UNAVAILABLE at the start, with the issuer named, and no request stored', async () => {
    await create(connectorYaml('gone', [], 'https://127.0.0.1:9'));
    const db = () => openClusterDb(cluster);
    const count = () => {
      const handle = db();
      try {
        return (handle.prepare('SELECT COUNT(*) AS n FROM sso_requests').get() as { n: number }).n;
      } finally {
        handle.close();
      }
    };
    const before = count();
    await expect(startSso(api, 'gone')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining(
        'The identity provider of "gone" (https://127.0.0.1:9) cannot be reached',
      ),
    });
    expect(count()).toBe(before);
    expect(lastAudit('sso.login')).toMatchObject({ success: 0 });
    expect(lastAudit('sso.login').fields).toMatchObject({ step: 'start', connector: 'gone' });
  });

  it('an http issuer is refused when the connector is written (the relying party refuses one too)', async () => {
    files += 1;
    const path = join(work, `doc-${files}.yaml`);
    await writeFile(path, connectorYaml('plain', [], idp.issuer.replace('https:', 'http:')));
    const result = await runAdmin(cluster, ['create', '-f', path]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/issuer_url.*https/);
    await expect(startSso(api, 'plain')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keyport-auth refuses to start with an oidc_ca_file that holds no certificate, or is missing', async () => {
    for (const [content, expected] of [
      ['not a certificate\n', 'holds no PEM certificate'],
      [undefined, 'cannot read'],
    ] as const) {
      files += 1;
      const caFile = join(work, `ca-${files}.pem`);
      if (content !== undefined) await writeFile(caFile, content);
      const configPath = join(work, `auth-${files}.yaml`);
      await writeFile(configPath, `auth_service:\n  oidc_ca_file: ${caFile}\n`);
      const result = await runKeyportAuth([
        'start',
        '--data-dir',
        join(work, `data-${files}`),
        '--listen',
        '127.0.0.1:0',
        '--config',
        configPath,
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`auth_service.oidc_ca_file: `);
      expect(result.stderr).toContain(expected);
    }
  });

  it('a redirect address that is not loopback http with a path, and an unknown connector: INVALID_ARGUMENT / NOT_FOUND', async () => {
    const key = newSessionKey();
    for (const address of [
      'https://127.0.0.1:4000/x',
      'http://example.com:4000/x',
      'http://127.0.0.1:4000/',
      'http://127.0.0.1/x',
      'http://localhost:4000/x',
    ]) {
      await expect(
        api.auth.startSsoLogin({
          connectorName: 'lab',
          sshPublicKey: '',
          tlsPublicKey: key.publicKeyPem,
          ttlSeconds: 0,
          clientRedirectUrl: address,
          hardwareKeyAttestation: undefined,
        }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'client_redirect_url' } });
    }
    await expect(startSso(api, 'nope')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('this cluster offers: gone, lab, silent, strict'),
    });
  });
});
