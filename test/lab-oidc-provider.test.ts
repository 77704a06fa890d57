// The lab OpenID Provider (lab/oidc) driven by openid-client, the relying-party library keyport-auth will
// use, with an HTTP client standing in for the browser: discovery over HTTPS under the lab CA, the code flow
// with PKCE (S256), state and nonce, a wrong password refused on the real login page, an ID token that
// validates and carries auth_time and groups, claims an attacker at the IdP mints, and ID tokens signed
// with a second, unpublished key that the relying party refuses.
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabBrowser } from '../lab/oidc/browser';
import { httpsFetchTrusting } from '../lab/oidc/https-fetch';
import { startLabOidcProvider } from '../lab/oidc/provider';
import type { LabOidcProvider } from '../lab/oidc/provider';

// Never fetched: the browser stand-in stops where the IdP sends it back, as keyport-auth's callback would.
const REDIRECT_URI = 'https://127.0.0.1:3080/v1/webapi/oidc/callback';
const CLIENT_ID = 'keyport-lab';
const CLIENT_SECRET = 'keyport-lab-client-secret';

let idp: LabOidcProvider;
let config: client.Configuration;

beforeAll(async () => {
  idp = await startLabOidcProvider({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] }],
  });
  config = await client.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, undefined, {
    [client.customFetch]: httpsFetchTrusting(idp.caPem),
    // openid-client checks an ID token's signature only with this: by default it takes TLS to the token
    // endpoint as the proof of origin (OIDC Core §3.1.3.7, item 6). keyport-auth must turn it on.
    execute: [client.enableNonRepudiationChecks],
  });
});

afterAll(async () => {
  await idp?.stop();
});

interface Started {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

async function startLogin(extra: Record<string, string> = {}): Promise<Started> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile groups',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

async function signIn(username: string, password: string) {
  const started = await startLogin();
  const result = await new LabBrowser(idp.caPem).signIn(
    started.url.href,
    { username, password },
    REDIRECT_URI,
  );
  return { started, ...result };
}

async function tokensFor(started: Started, callbackUrl: string, with_ = config) {
  return client.authorizationCodeGrant(with_, new URL(callbackUrl), {
    pkceCodeVerifier: started.verifier,
    expectedState: started.state,
    expectedNonce: started.nonce,
    idTokenExpected: true,
  });
}

describe('the lab OIDC provider', () => {
  it('publishes discovery and one signing key over HTTPS under the lab CA, and code + PKCE S256', async () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(idp.issuer);
    expect(idp.issuer).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.response_types_supported).toContain('code');
    const jwks = (await (await httpsFetchTrusting(idp.caPem)(metadata.jwks_uri!)).json()) as {
      keys: { kid: string; d?: string }[];
    };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: 'lab-idp-1' });
    expect(jwks.keys[0]?.d).toBeUndefined();
    // Without the lab CA, TLS refuses the IdP.
    await expect(fetch(`${idp.issuer}/.well-known/openid-configuration`)).rejects.toThrow();
  });

  it('signs alice in through the real login page; the ID token validates and carries auth_time and groups', async () => {
    const { started, callbackUrl } = await signIn('alice', 'alice-lab-password');
    expect(callbackUrl).toBeDefined();
    const callback = new URL(callbackUrl!);
    expect(callback.searchParams.get('state')).toBe(started.state);
    const tokens = await tokensFor(started, callbackUrl!);
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({
      iss: idp.issuer,
      aud: CLIENT_ID,
      sub: 'alice',
      nonce: started.nonce,
      email: 'alice@keyport.lab',
      groups: ['admins', 'team-platform'],
    });
    expect(claims.auth_time).toEqual(expect.any(Number));
    expect(Math.abs(claims.auth_time! - Date.now() / 1000)).toBeLessThan(600);
    expect(idp.logins()).toContain('alice');
  });

  it('refuses a wrong password on its login page: no code, no login', async () => {
    const before = idp.logins().length;
    const { callbackUrl, page } = await signIn('alice', 'not-her-password');
    expect(callbackUrl).toBeUndefined();
    expect(page.status).toBe(401);
    expect(page.text).toContain('Wrong user name or password.');
    expect(idp.logins()).toHaveLength(before);
    const unknown = await signIn('mallory', 'alice-lab-password');
    expect(unknown.callbackUrl).toBeUndefined();
    expect(unknown.page.status).toBe(401);
  });

  it('refuses an authorization request without PKCE', async () => {
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      state: client.randomState(),
    });
    const browser = new LabBrowser(idp.caPem);
    const { stoppedAt } = await browser.follow(await browser.request(url.href), REDIRECT_URI);
    expect(new URL(stoppedAt!).searchParams.get('error')).toBe('invalid_request');
  });

  it('a code is spent once: the second exchange is refused', async () => {
    const { started, callbackUrl } = await signIn('bob', 'bob-lab-password');
    await tokensFor(started, callbackUrl!);
    await expect(tokensFor(started, callbackUrl!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('lets a test mint claims, as an attacker who controls the IdP can', async () => {
    idp.setClaims('carol', { groups: ['admins'] });
    const { started, callbackUrl } = await signIn('carol', 'carol-lab-password');
    const claims = (await tokensFor(started, callbackUrl!)).claims()!;
    expect(claims.groups).toEqual(['admins']);
  });

  it('signs ID tokens with a second, unpublished key on demand; the relying party refuses them', async () => {
    idp.signIdTokensWith('unpublished');
    try {
      const { started, callbackUrl } = await signIn('bob', 'bob-lab-password');
      await expect(tokensFor(started, callbackUrl!)).rejects.toMatchObject({
        code: 'OAUTH_INVALID_RESPONSE',
        cause: { message: 'JWT signature verification failed' },
      });
      // Without non-repudiation checks, openid-client takes the same forged token: the check is opt-in.
      const trustingTls = await client.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, undefined, {
        [client.customFetch]: httpsFetchTrusting(idp.caPem),
      });
      const again = await signIn('bob', 'bob-lab-password');
      expect((await tokensFor(again.started, again.callbackUrl!, trustingTls)).claims()?.sub).toBe('bob');
    } finally {
      idp.signIdTokensWith('published');
    }
    const { started, callbackUrl } = await signIn('bob', 'bob-lab-password');
    expect((await tokensFor(started, callbackUrl!)).claims()?.sub).toBe('bob');
  });
});
