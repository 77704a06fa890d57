// The lab OpenID Provider: panva's oidc-provider (a certified OP) on 127.0.0.1 over HTTPS under a lab CA,
// for the demo and the SSO tests. Its people come from a small users file (users.yaml); its login page is
// a real form that refuses a wrong password (oidc-provider's devInteractions accept any). Code flow with
// PKCE (S256) required, `auth_time` in ID tokens, groups and email in the ID token itself.
//
// Test controls, for the seed's IdP compromise and the relying party's negative tests:
//   - setClaims(user, claims): the attacker who controls the IdP mints any claim (a `groups` that maps to
//     `editor`), effective from the next token;
//   - signIdTokensWith('unpublished'): ID tokens from the token endpoint are signed with a second key that
//     is not in the JWKS (same `kid`), so a relying party must refuse their signature;
//   - rewriteIdTokens(fn): ID tokens from the token endpoint have their claims rewritten and are signed again
//     with the published key (a wrong aud or nonce, an exp in the past, no auth_time): what a broken or
//     hostile IdP could send, validly signed.
import { createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { createLabTls } from './tls';
import { readLabOidcUsers } from './users';
import type { LabOidcUser } from './users';

export interface LabOidcClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** Whether every ID token carries auth_time (OIDC Registration's require_auth_time); default true. */
  requireAuthTime?: boolean;
}

export interface LabOidcProviderOptions {
  /** The users file (YAML or JSON); lab/oidc/users.yaml by default. */
  usersFile?: string;
  clients: LabOidcClient[];
}

export interface LabOidcProvider {
  /** https://127.0.0.1:PORT */
  issuer: string;
  /** The lab CA that issued the IdP's TLS certificate: what a relying party must trust. */
  caPem: string;
  users(): readonly LabOidcUser[];
  /** Claims of `username` from the next token on (groups, email, ...): what an attacker at the IdP can do. */
  setClaims(username: string, claims: Record<string, unknown>): void;
  /** Which key signs ID tokens from the token endpoint: the published one, or a second, unpublished one. */
  signIdTokensWith(key: 'published' | 'unpublished'): void;
  /** Rewrites the claims of ID tokens from the token endpoint (signed again); undefined stops it. */
  rewriteIdTokens(rewrite: IdTokenRewrite | undefined): void;
  /** Logins that passed the password check, by user name (the login page's own count). */
  logins(): readonly string[];
  /** Every HTTP request the IdP answered, as "METHOD /path" (no query), in order: round trips to count. */
  requests(): readonly string[];
  stop(): Promise<void>;
}

export type IdTokenRewrite = (claims: Record<string, unknown>) => Record<string, unknown>;

const SCOPES = ['openid', 'email', 'profile', 'groups'];
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]{1,128})(\/login)?$/;
const MAX_FORM_BYTES = 8 * 1024;

export async function startLabOidcProvider(options: LabOidcProviderOptions): Promise<LabOidcProvider> {
  const users = await readLabOidcUsers(options.usersFile);
  const minted = new Map<string, Record<string, unknown>>();
  const loginsSeen: string[] = [];
  const requestsSeen: string[] = [];
  let idTokenKey: 'published' | 'unpublished' = 'published';
  let rewriteClaims: IdTokenRewrite | undefined;
  const byUsername = (name: string) => users.find((user) => user.username === name);
  const bySub = (sub: string) => users.find((user) => (user.sub ?? user.username) === sub);

  const published = signingKey('lab-idp-1');
  // The second key claims the same kid, so a relying party finds a key and must check the signature.
  const unpublished = signingKey('lab-idp-1');

  const tls = await createLabTls();
  // The chain with its CA, as keyport-auth sends its own: a browser told to trust that CA's key
  // (Chromium's --ignore-certificate-errors-spki-list, the app's SSO test and the demo) finds it there.
  const server = createServer({ key: tls.keyPem, cert: `${tls.certPem.trim()}\n${tls.caPem.trim()}\n` });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const configuration: Configuration = {
    clients: options.clients.map((client) => ({
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: client.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      require_auth_time: client.requireAuthTime ?? true,
      id_token_signed_response_alg: 'ES256',
    })),
    jwks: { keys: [published.jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: SCOPES,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // OIDC Core §5.4 puts scope-requested claims at userinfo; a connector maps groups from the ID token.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // A lab client is first party: consent is granted with the login, for the scopes asked.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const { client, session } = ctx.oidc;
      if (client === undefined || session?.accountId === undefined) return undefined;
      const existing = session.grantIdFor(client.clientId);
      if (existing !== undefined) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(SCOPES.join(' '));
      await grant.save();
      session.grantIdFor(client.clientId, grant.jti);
      return grant;
    },
    findAccount: (_ctx, sub) => {
      const user = bySub(sub);
      if (user === undefined) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: user.email,
          email_verified: user.email !== undefined,
          name: user.name,
          preferred_username: user.username,
          groups: user.groups,
          ...minted.get(user.username),
        }),
      };
    },
    ttl: { Interaction: 10 * 60, Session: 60 * 60, IdToken: 10 * 60, AccessToken: 10 * 60, Grant: 60 * 60 },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p>${escapeHtml(String(out.error_description ?? out.error))}</p>`);
    },
  };
  const provider = new Provider(issuer, configuration);
  const providerCallback = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, isLogin: boolean) {
    const details = await provider.interactionDetails(req, res);
    const client = options.clients.find((entry) => entry.clientId === details.params.client_id);
    const formTargets = (client?.redirectUris ?? []).map((uri) => new URL(uri).origin);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (!isLogin) {
      sendHtml(res, 200, loginPage(uid, details.params.client_id as string | undefined), formTargets);
      return;
    }
    if (req.method !== 'POST') {
      sendHtml(res, 405, page('Method not allowed', '<p>Post the form.</p>'));
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    const user = byUsername(form.get('username') ?? '');
    if (user === undefined || form.get('password') !== user.password) {
      sendHtml(res, 401, loginPage(uid, undefined, 'Wrong user name or password.'), formTargets);
      return;
    }
    loginsSeen.push(user.username);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub ?? user.username, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    requestsSeen.push(`${req.method ?? 'GET'} ${path}`);
    const match = INTERACTION_PATH.exec(path);
    if (match) {
      interaction(req, res, match[1]!, match[2] !== undefined).catch((error: unknown) => {
        if (!res.headersSent) {
          sendHtml(res, 400, page('Sign-in error', `<p>${escapeHtml(String(error))}</p>`));
        } else res.end();
      });
      return;
    }
    if (path === '/token' && (idTokenKey === 'unpublished' || rewriteClaims !== undefined)) {
      resignIdToken(res, idTokenKey === 'unpublished' ? unpublished.key : published.key, rewriteClaims);
    }
    providerCallback(req, res);
  });

  return {
    issuer,
    caPem: tls.caPem,
    users: () => users,
    setClaims(username, claims) {
      if (byUsername(username) === undefined) throw new Error(`no lab user ${username}`);
      minted.set(username, { ...minted.get(username), ...claims });
    },
    signIdTokensWith(key) {
      idTokenKey = key;
    },
    rewriteIdTokens(rewrite) {
      rewriteClaims = rewrite;
    },
    logins: () => loginsSeen,
    requests: () => requestsSeen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------

function signingKey(kid: string): { key: KeyObject; jwk: JsonWebKey } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // `d` stays in the JWK: oidc-provider signs with it (its JWKS endpoint publishes the public part only).
  return { key: privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}

/**
 * Replaces the signature of the ID token in a token response with one by `key` (ES256, same header), its
 * claims rewritten first when `rewrite` is given.
 */
function resignIdToken(res: ServerResponse, key: KeyObject, rewrite?: IdTokenRewrite): void {
  const chunks: Buffer[] = [];
  const end = res.end.bind(res);
  res.write = ((chunk: unknown) => {
    if (chunk !== undefined && chunk !== null) chunks.push(Buffer.from(chunk as string));
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function')
      chunks.push(Buffer.from(chunk as string));
    let body = Buffer.concat(chunks);
    try {
      const json = JSON.parse(body.toString('utf8')) as { id_token?: string };
      if (typeof json.id_token === 'string') {
        const [header, original] = json.id_token.split('.');
        const payload = rewrite
          ? Buffer.from(
              JSON.stringify(
                rewrite(
                  JSON.parse(Buffer.from(original ?? '', 'base64url').toString('utf8')) as Record<
                    string,
                    unknown
                  >,
                ),
              ),
            ).toString('base64url')
          : original;
        const signature = sign('sha256', Buffer.from(`${header}.${payload}`), {
          key: createPrivateKey(key.export({ format: 'pem', type: 'pkcs8' })),
          dsaEncoding: 'ieee-p1363',
        });
        json.id_token = `${header}.${payload}.${signature.toString('base64url')}`;
        body = Buffer.from(JSON.stringify(json));
        if (!res.headersSent) res.setHeader('content-length', body.length);
      }
    } catch {
      // Not JSON (an error page): passed on as it is.
    }
    return end(body);
  }) as typeof res.end;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) req.destroy(new Error('form too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  formTargets: readonly string[] = [],
): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // form-action governs every redirect after the login form's post too (CSP3, as Chromium enforces it): the
    // IdP sends the browser on to the client's redirect_uri (keyport-auth's callback, another origin), and
    // from there a native client's loopback address (RFC 8252: any port on 127.0.0.1; CSP has no IPv6
    // literal sources).
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${["'self'", ...formTargets, 'http://127.0.0.1:*'].join(' ')}`,
  });
  res.end(html);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}

function loginPage(uid: string, clientId: string | undefined, error?: string): string {
  return page(
    'Keyport Lab IdP: sign in',
    `${clientId === undefined ? '' : `<p>to continue to ${escapeHtml(clientId)}</p>`}` +
      `${error === undefined ? '' : `<p role="alert">${escapeHtml(error)}</p>`}` +
      `<form method="post" action="/interaction/${escapeHtml(uid)}/login">` +
      '<label>User name <input name="username" autocomplete="username" required></label>' +
      '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>' +
      '<button type="submit">Sign in</button></form>',
  );
}
