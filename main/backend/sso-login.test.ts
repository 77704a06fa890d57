// Keyport Connect's SSO login through the handler table, against a real keyport-auth (--web-listen, the
// IdP's CA in oidc_ca_file) and the lab IdP: the connectors listed (name and display only), a login from a
// cluster trusted on first use, the waiting prompt and its Cancel (the loopback listener gone with it), a
// denied login, an opener that fails, and bad input; each refusal leaves KEYPORT_HOME byte for byte as it
// was. The "browser" is LabBrowser at the IdP and keyport-auth's callback, then a GET of the loopback address.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { runAdmin } from '../../lab/cluster';
import type { LabCluster } from '../../lab/cluster';
import { folderSnapshot } from '../../lab/folder-snapshot';
import { LabBrowser } from '../../lab/oidc/browser';
import { startIdpAndCluster } from '../../lab/oidc/sso-lab';
import type { LabOidcProvider } from '../../lab/oidc/provider';
import { followCallback } from '../../lab/oidc/sso-login';
import type { EventPayloads, Prompt } from '../../preload/contract';
import { KeyportError } from '../../proto/errors';
import { createBackend } from './backend';
import type { Backend } from './backend';
import { signInUrl } from './sso-login';

const CLIENT_ID = 'keyport-app-lab';
const CLIENT_SECRET = 'keyport-app-lab-secret';

let work: string;
let idp: LabOidcProvider;
let cluster: LabCluster;
let redirectUri: string;
let home: string;
let backend: Backend;
/** What the system browser does with the URL the backend opens (set per test). */
let opener: (url: string) => Promise<void>;
const opened: string[] = [];
const prompts: Prompt[] = [];
const changes: EventPayloads['onProfileChanged'][] = [];

/** The person in the browser: the IdP's page, keyport-auth's callback, then the app's loopback page. */
async function browse(url: string, user: string) {
  const { callbackUrl, page } = await new LabBrowser(idp.caPem).signIn(
    url,
    { username: user, password: `${user}-lab-password` },
    redirectUri,
  );
  if (callbackUrl === undefined) throw new Error(`the IdP refused: ${page.status}`);
  const callback = await followCallback(cluster, callbackUrl);
  if (callback.location === undefined) throw new Error(`no redirect from the callback: ${callback.status}`);
  const loopback = callback.location;
  const tab = await fetch(loopback).then(
    async (response) => ({ status: response.status, text: await response.text() }),
    (error: unknown) => ({ status: 0, text: String((error as Error).cause ?? error) }),
  );
  return { loopback, tab };
}

/** The first prompt of `kind` the backend shows from now on. */
function nextPrompt<K extends Prompt['kind']>(kind: K): Promise<Extract<Prompt, { kind: K }>> {
  return new Promise((resolve) => {
    const stop = backend.on('onPrompt', (prompt) => {
      if (prompt.kind !== kind) return;
      stop();
      resolve(prompt as Extract<Prompt, { kind: K }>);
    });
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyport-app-sso-'));
  ({ idp, cluster, redirectUri } = await startIdpAndCluster(work, {
    clusterName: 'sso-app',
    authentication: ['    type: local', '    second_factor: "off"'],
    client: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
  }));
  const documents = [
    'kind: role\nversion: v7\nmetadata:\n  name: member\nspec:\n  allow:\n    logins: [member]\n',
    'kind: role\nversion: v7\nmetadata:\n  name: team-platform\nspec:\n  allow:\n    logins: [platform]\n',
    [
      'kind: oidc',
      'version: v3',
      'metadata:',
      '  name: lab',
      'spec:',
      `  issuer_url: ${idp.issuer}`,
      `  client_id: ${CLIENT_ID}`,
      `  client_secret: ${CLIENT_SECRET}`,
      `  redirect_url: ${redirectUri}`,
      '  display: Lab IdP',
      '  scope: [email, profile, groups]',
      '  claims_to_roles:',
      '    - {claim: groups, value: admins, roles: [editor]}',
      '    - {claim: groups, value: "^team-(.*)$", roles: ["team-$1", member]}',
      '',
    ].join('\n'),
  ];
  await writeFile(join(work, 'sso.yaml'), documents.join('---\n'));
  const created = await runAdmin(cluster, ['create', '-f', join(work, 'sso.yaml')]);
  expect(created.code, created.stderr).toBe(0);

  home = join(work, 'home');
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: {},
    watchProfiles: false,
    openInBrowser: async (url) => {
      opened.push(url);
      await opener(url);
    },
  });
  backend.on('onPrompt', (prompt) => void prompts.push(prompt));
  backend.on('onProfileChanged', (change) => void changes.push(change));
}, 120_000);

afterEach(() => {
  opened.length = 0;
  prompts.length = 0;
  changes.length = 0;
});

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
  await idp?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Keyport Connect: Sign in with an SSO connector', () => {
  it('lists no connector for a cluster not trusted yet (nothing is fetched or saved)', async () => {
    expect(await backend.handlers['auth.connectors']({ address: cluster.address })).toEqual({
      ok: true,
      value: [],
    });
    expect(await new ProfileStore(home).listTrustedClusters()).toEqual([]);
  });

  it('signs alice in from a cluster trusted on first use: the IdP page opened, a waiting prompt, the roles from claims_to_roles', async () => {
    let browsing: ReturnType<typeof browse> | undefined;
    opener = async (url) => {
      // The browser goes on by itself, as a real one does after xdg-open returns.
      browsing = browse(url, 'alice');
    };
    const trust = nextPrompt('trustCaPin').then((prompt) => {
      expect(prompt.caPin).toBe(cluster.caPin);
      return backend.handlers['prompts.answer']({
        id: prompt.id,
        value: { kind: 'trustCaPin', trust: true },
      });
    });
    const waiting = nextPrompt('browserSignIn');
    const result = await backend.handlers['auth.loginSso']({ address: cluster.address, connector: 'lab' });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    expect((await trust).ok).toBe(true);
    // The prompt names the cluster and the connector, nothing else (never the URL and its state).
    const prompt = await waiting;
    expect(Object.keys(prompt).sort()).toEqual(['cluster', 'connector', 'id', 'kind']);
    expect(prompt).toMatchObject({ cluster: 'sso-app', connector: 'lab' });
    expect(opened).toHaveLength(1);
    expect(opened[0]!.startsWith(`${idp.issuer}/`)).toBe(true);
    expect(new URL(opened[0]!).searchParams.get('code_challenge_method')).toBe('S256');
    const { tab } = await browsing!;
    expect(tab).toEqual({
      status: 200,
      text: expect.stringContaining('Signed in to sso-app. You can close this tab.'),
    });

    if (!result.ok) return;
    expect(result.value).toMatchObject({
      address: cluster.address,
      cluster: 'sso-app',
      user: 'alice@keyport.lab',
      mfaVerified: false,
      keystore: 'file',
    });
    expect([...result.value.roles].sort()).toEqual(['editor', 'member', 'team-platform']);
    // Nothing of the certificates or the key reaches the renderer.
    expect(JSON.stringify(result.value)).not.toMatch(/BEGIN|CERTIFICATE|PRIVATE|cert-v01/);
    expect(changes).toEqual([{ address: cluster.address, profile: result.value }]);
    expect(backend.broker.current()).toBeUndefined();
    expect(await backend.handlers['auth.status']({ address: cluster.address })).toEqual({
      ok: true,
      value: result.value,
    });
    const saved = await new ProfileStore(home).getProfile(cluster.address);
    expect(saved?.user).toBe('alice@keyport.lab');
  });

  it('lists the connectors of a trusted cluster: name and display, nothing else', async () => {
    const result = await backend.handlers['auth.connectors']({ address: cluster.address });
    expect(result).toEqual({ ok: true, value: [{ name: 'lab', display: 'Lab IdP' }] });
  });

  it('Cancel on the waiting prompt ends the login with CANCELLED; the loopback listener is gone; nothing is saved', async () => {
    await backend.handlers['auth.logout']({ address: cluster.address });
    const before = folderSnapshot(home);
    let authorizationUrl = '';
    opener = async (url) => void (authorizationUrl = url);
    const waiting = nextPrompt('browserSignIn').then((prompt) => {
      // The connector as its button said it (auth.connectors listed it above).
      expect(prompt).toMatchObject({ cluster: 'sso-app', connector: 'Lab IdP' });
      return backend.handlers['prompts.cancel']({ id: prompt.id });
    });
    const result = await backend.handlers['auth.loginSso']({ address: cluster.address, connector: 'lab' });
    expect((await waiting).ok).toBe(true);
    expect(result).toEqual({
      ok: false,
      error: { code: 'CANCELLED', message: 'Login cancelled: nothing was saved.', details: {} },
    });
    expect(backend.broker.current()).toBeUndefined();
    expect(folderSnapshot(home)).toEqual(before);
    // The person signs in at the IdP anyway: keyport-auth sends the browser back, and nobody listens.
    const late = await browse(authorizationUrl, 'alice');
    expect(late.loopback.hostname).toBe('127.0.0.1');
    expect(late.tab.status).toBe(0);
    expect(late.tab.text).toMatch(/ECONNREFUSED/);
    expect(folderSnapshot(home)).toEqual(before);
  });

  it('a person whose claims map no role: ACCESS_DENIED in the cluster words, naming no role; nothing saved', async () => {
    const before = folderSnapshot(home);
    let browsing: ReturnType<typeof browse> | undefined;
    opener = async (url) => void (browsing = browse(url, 'carol'));
    const result = await backend.handlers['auth.loginSso']({ address: cluster.address, connector: 'lab' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('ACCESS_DENIED');
    expect(result.error.message).toContain('gives no access to sso-app');
    expect(result.error.message).not.toMatch(/editor|member|team-/);
    expect((await browsing!).tab.text).toContain('Sign-in to sso-app failed');
    expect(folderSnapshot(home)).toEqual(before);
    expect(changes).toEqual([]);
  });

  it('an unknown connector: NOT_FOUND before any browser opens; nothing saved', async () => {
    const before = folderSnapshot(home);
    opener = async () => {
      throw new Error('no browser should open');
    };
    const result = await backend.handlers['auth.loginSso']({ address: cluster.address, connector: 'okta' });
    expect(result.ok || result.error.code).toBe('NOT_FOUND');
    expect(opened).toEqual([]);
    expect(prompts.filter((prompt) => prompt.kind === 'browserSignIn')).toEqual([]);
    expect(folderSnapshot(home)).toEqual(before);
  });

  it("a browser that cannot be opened fails the login with the opener's error; no prompt is left; nothing saved", async () => {
    const before = folderSnapshot(home);
    opener = async () => {
      throw new KeyportError('UNAVAILABLE', 'The browser could not be opened (xdg-open: exit status 3).');
    };
    const result = await backend.handlers['auth.loginSso']({ address: cluster.address, connector: 'lab' });
    expect(result).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    expect(backend.broker.current()).toBeUndefined();
    expect(folderSnapshot(home)).toEqual(before);
  });

  it('refuses a malformed argument before anything runs: no prompt, no browser, nothing saved', async () => {
    const before = folderSnapshot(home);
    for (const argument of [
      { address: cluster.address, connector: '../lab' },
      { address: cluster.address, connector: 'lab', issuer: idp.issuer },
      { address: `https://${cluster.address}`, connector: 'lab' },
    ]) {
      const result = await backend.handlers['auth.loginSso'](argument);
      expect(result).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    }
    expect(opened).toEqual([]);
    expect(prompts).toEqual([]);
    expect(folderSnapshot(home)).toEqual(before);
  });

  it('a host without a way to the browser refuses SSO with PRECONDITION_FAILED, before any call', async () => {
    const other = createBackend({
      profiles: new ProfileStore(home),
      keystoreKind: 'file',
      env: {},
      watchProfiles: false,
    });
    const before = folderSnapshot(home);
    const result = await other.handlers['auth.loginSso']({ address: cluster.address, connector: 'lab' });
    expect(result).toMatchObject({ ok: false, error: { code: 'PRECONDITION_FAILED' } });
    expect(folderSnapshot(home)).toEqual(before);
    await other.close();
  });
});

describe('the sign-in URL handed to the opener', () => {
  it('is an https URL without user info, normalised', () => {
    expect(signInUrl('https://IdP.example.com/auth?state=x')).toBe('https://idp.example.com/auth?state=x');
  });

  it.each([
    ['http', 'http://idp.example.com/auth'],
    ['user info', 'https://idp.example.com@evil.example/auth'],
    ['a password', 'https://a:b@idp.example.com/auth'],
    ['another scheme', 'javascript:alert(1)'],
    ['a file', 'file:///etc/passwd'],
    ['not a URL', 'idp.example.com/auth'],
    ['too long', `https://idp.example.com/${'a'.repeat(9000)}`],
  ])('refuses %s with PRECONDITION_FAILED', (_what, url) => {
    expect(() => signInUrl(url)).toThrow(expect.objectContaining({ code: 'PRECONDITION_FAILED' }));
  });
});
