// keyport-auth as an OpenID Connect relying party (a confidential client) through panva's openid-client:
// the IdP's discovery document cached per connector, the JWKS cached with it (openid-client refetches it
// when an ID token names a kid it lacks, or after 5 minutes), the authorization URL with PKCE (S256),
// state and nonce, and the code exchanged with the ID token checked: signature (enableNonRepudiationChecks:
// without it openid-client takes TLS to the token endpoint as the proof of origin, OIDC Core §3.1.3.7),
// iss, aud, exp and nonce on the service clock, and, with max_age, auth_time (fail closed).
import * as client from 'openid-client';
import { KeyportError } from '../../proto/errors';
import { parseGoDurationSeconds } from '../../proto/resources/duration';
import type { OidcConnector } from '../../proto/resources/schema';
import { idpFetch } from './https-fetch';

/** How long a discovery document is used before it is fetched again. */
export const DISCOVERY_TTL_MS = 60 * 60 * 1000;
/** Seconds the IdP's clock may be off from keyport-auth's, for exp, iat and auth_time. */
export const CLOCK_TOLERANCE_SECONDS = 30;

export interface IdTokenClaims {
  sub: string;
  [claim: string]: unknown;
}

interface Discovered {
  metadata: client.ServerMetadata;
  fetchedMs: number;
  jwks?: ReturnType<typeof client.getJwksCache>;
}

/** Why the IdP's answer was refused, for the audit log and the person. */
export class IdTokenRefused extends KeyportError {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super('ACCESS_DENIED', message);
  }
}

export interface RelyingParty {
  /** The IdP's authorization URL for one request (discovery first: an IdP that is down says so here). */
  authorizationUrl(
    connector: OidcConnector,
    request: { state: string; nonce: string; pkceVerifier: string },
  ): Promise<URL>;
  /** Exchanges the callback's code and returns the ID token's claims, checked; throws IdTokenRefused. */
  exchange(
    connector: OidcConnector,
    callbackUrl: URL,
    expected: { state: string; nonce: string; pkceVerifier: string },
  ): Promise<IdTokenClaims>;
}

const unreachable = (connector: OidcConnector, error: unknown) =>
  new KeyportError(
    'UNAVAILABLE',
    `The identity provider of "${connector.metadata.name}" (${connector.spec.issuer_url}) cannot be reached: ${error instanceof Error ? error.message : String(error)}. Try again later, or ask an admin.`,
  );

export function relyingParty(options: { extraCaPem?: string; now: () => number }): RelyingParty {
  const fetch = idpFetch(options.extraCaPem);
  const discovered = new Map<string, Discovered>();
  const keyOf = (connector: OidcConnector) => `${connector.spec.issuer_url}\n${connector.spec.client_id}`;

  async function discover(connector: OidcConnector): Promise<Discovered> {
    const issuer = new URL(connector.spec.issuer_url);
    if (issuer.protocol !== 'https:') {
      throw new KeyportError(
        'PRECONDITION_FAILED',
        `The issuer of "${connector.metadata.name}" must be https, not ${issuer.protocol}: fix the connector (keyport admin edit oidc/${connector.metadata.name}).`,
      );
    }
    const cached = discovered.get(keyOf(connector));
    if (cached && Date.now() - cached.fetchedMs < DISCOVERY_TTL_MS) return cached;
    let config: client.Configuration;
    try {
      config = await client.discovery(issuer, connector.spec.client_id, undefined, undefined, {
        [client.customFetch]: fetch,
      });
    } catch (error) {
      throw unreachable(connector, error);
    }
    const entry: Discovered = { metadata: config.serverMetadata(), fetchedMs: Date.now() };
    discovered.set(keyOf(connector), entry);
    return entry;
  }

  /** A configuration for one call: the service clock's skew, the cached JWKS, signature checks on. */
  function configurationFor(connector: OidcConnector, entry: Discovered): client.Configuration {
    const config = new client.Configuration(
      entry.metadata,
      connector.spec.client_id,
      {
        [client.clockSkew]: Math.round((options.now() - Date.now()) / 1000),
        [client.clockTolerance]: CLOCK_TOLERANCE_SECONDS,
      },
      client.ClientSecretPost(connector.spec.client_secret),
    );
    config[client.customFetch] = fetch;
    client.enableNonRepudiationChecks(config);
    if (entry.jwks) client.setJwksCache(config, entry.jwks);
    return config;
  }

  return {
    async authorizationUrl(connector, request) {
      const entry = await discover(connector);
      const config = configurationFor(connector, entry);
      const maxAge = connector.spec.max_age === undefined ? undefined : maxAgeSeconds(connector);
      return client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri(connector),
        scope: ['openid', ...(connector.spec.scope ?? []).filter((scope) => scope !== 'openid')].join(' '),
        code_challenge: await client.calculatePKCECodeChallenge(request.pkceVerifier),
        code_challenge_method: 'S256',
        state: request.state,
        nonce: request.nonce,
        ...(maxAge === undefined ? {} : { max_age: String(maxAge) }),
        ...(connector.spec.prompt === undefined ? {} : { prompt: connector.spec.prompt }),
      });
    },

    async exchange(connector, callbackUrl, expected) {
      const entry = await discover(connector);
      const config = configurationFor(connector, entry);
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(
          config,
          callbackUrl,
          {
            pkceCodeVerifier: expected.pkceVerifier,
            expectedState: expected.state,
            expectedNonce: expected.nonce,
            idTokenExpected: true,
          },
          { redirect_uri: redirectUri(connector) },
        );
      } catch (error) {
        throw refusalOf(connector, error);
      } finally {
        const jwks = client.getJwksCache(config);
        if (jwks) entry.jwks = jwks;
      }
      const claims = tokens.claims() as IdTokenClaims | undefined;
      if (claims === undefined)
        throw new IdTokenRefused('no ID token', 'The identity provider sent no ID token.');
      if (connector.spec.max_age !== undefined) checkAuthTime(connector, claims, options.now());
      return claims;
    },
  };
}

function redirectUri(connector: OidcConnector): string {
  const urls = connector.spec.redirect_url;
  return (Array.isArray(urls) ? urls[0] : urls) as string;
}

function maxAgeSeconds(connector: OidcConnector): number {
  return parseGoDurationSeconds(connector.spec.max_age ?? '0') ?? 0;
}

/** OIDC Core §3.1.3.7 item 13 with max_age: auth_time present, and the sign-in no older than max_age. */
function checkAuthTime(connector: OidcConnector, claims: IdTokenClaims, nowMs: number): void {
  const maxAge = maxAgeSeconds(connector);
  const authTime = claims.auth_time;
  if (typeof authTime !== 'number' || !Number.isFinite(authTime)) {
    throw new IdTokenRefused(
      'ID token without auth_time',
      `The identity provider's ID token does not say when the person signed in (auth_time), and "${connector.metadata.name}" has max_age ${connector.spec.max_age}: refused. Ask an admin to check the IdP's client settings.`,
    );
  }
  const ageSeconds = nowMs / 1000 - authTime;
  if (ageSeconds > maxAge + CLOCK_TOLERANCE_SECONDS || ageSeconds < -CLOCK_TOLERANCE_SECONDS) {
    throw new IdTokenRefused(
      `auth_time ${Math.round(ageSeconds)} s ago, max_age ${maxAge} s`,
      `The identity provider's sign-in is older than "${connector.metadata.name}" allows (max_age ${connector.spec.max_age}): sign in at the identity provider again.`,
    );
  }
}

/** openid-client's failures, said in Keyport's words: the IdP down, or its answer refused. */
function refusalOf(connector: OidcConnector, error: unknown): KeyportError {
  if (error instanceof KeyportError) return error;
  if (error instanceof client.ResponseBodyError) {
    return new IdTokenRefused(
      `token endpoint: ${error.error}`,
      `The identity provider refused the code (${error.error}${error.error_description ? `: ${error.error_description}` : ''}); sign in again.`,
    );
  }
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: { message?: unknown; claim?: unknown } }).cause;
  if (typeof code === 'string' && code.startsWith('OAUTH_')) {
    const detail = typeof cause?.message === 'string' ? `${message} (${cause.message})` : message;
    return new IdTokenRefused(
      detail,
      `The identity provider's answer was refused: ${detail}. Sign in again; if it persists, ask an admin.`,
    );
  }
  return unreachable(connector, error);
}
