// The IdP's callback (GET /v1/webapi/oidc/callback on the web listener, which the connector's redirect_url
// names), step by step:
//   1. the state spends its request, once, before it expires (nothing else is known about a caller without it);
//   2. an error from the IdP is audited and passed on to the client;
//   3. the code is exchanged and the ID token checked (relying-party.ts: signature, iss, aud, exp, nonce,
//      auth_time with max_age);
//   4. the claims are mapped to roles (claims_to_roles): none means access denied, naming no role;
//   5. the SSO user is created or updated, never merged with a local user or another connector's;
//      a locked user is refused;
//   6. a one-time code (stored as its hash, 60 s; 3 minutes where the connector requires the user's own
//      security key, which the client asks for before redeeming) is issued for the request, and the browser
//      is sent to the client's loopback address with it: never the certificates.
// Every refusal after step 1 sends the browser to the client's address with the error, so the client says
// it; a caller without a valid state gets only a page.
import { KeyportError } from '../../proto/errors';
import { compileClaimMappings, mapClaimsToRoles } from '../../proto/resources/claims-mapping';
import { RESOURCE_NAME } from '../../proto/resources/fields';
import type { OidcConnector } from '../../proto/resources/schema';
import { SSO_CODE_TTL_MS, SSO_LOCAL_MFA_CODE_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import { isLocked, limitAddress, lockedError } from '../lockout';
import { loadRoles } from '../policy';
import type { SsoRequestRow } from '../storage/sso-requests';
import { IdTokenRefused } from './relying-party';
import type { IdTokenClaims } from './relying-party';
import { auditSso, loadConnector, newToken, tokenHash } from './requests';
import type { SsoIdentity } from './requests';

/** Teleport's path for the OIDC callback. */
export const OIDC_CALLBACK_PATH = '/v1/webapi/oidc/callback';

/** Where the browser goes next: the client's loopback address, or a page of keyport-auth's own. */
export type CallbackOutcome =
  { redirect: string } | { page: { status: number; title: string; message: string } };

/** The claim an SSO user is named by (Teleport's default username claim). */
const USERNAME_CLAIM = 'email';

export async function oidcCallback(
  ctx: ServiceContext,
  url: URL,
  clientAddr: string,
): Promise<CallbackOutcome> {
  await limitAddress(ctx, clientAddr);
  // 1. The state: the request it names, spent once.
  const state = url.searchParams.get('state') ?? '';
  const request = state ? await ctx.store.sso.spendState(tokenHash(state), ctx.now()) : undefined;
  if (request === undefined) return unknownState(ctx, state, clientAddr);

  const toClient = (params: Record<string, string>) => {
    const target = new URL(request.client_redirect_url);
    for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
    return { redirect: target.href };
  };
  const refuse = async (error: KeyportError, reason: string, subject?: string, actor = 'unknown') => {
    await auditSso(ctx, {
      actor,
      clientAddr,
      success: false,
      message: reason,
      step: 'callback',
      connector: request.connector,
      ...(subject === undefined ? {} : { subject }),
    });
    return toClient({ error: error.code, message: error.message });
  };

  // 2. The IdP's own refusal (RFC 6749 §4.1.2.1).
  const idpError = url.searchParams.get('error');
  if (idpError !== null) {
    const description = url.searchParams.get('error_description') ?? '';
    return refuse(
      new KeyportError(
        'ACCESS_DENIED',
        `The identity provider refused the sign-in (${idpError.slice(0, 64)}${description ? `: ${description.slice(0, 256)}` : ''}).`,
      ),
      `identity provider error: ${idpError.slice(0, 64)}`,
    );
  }

  // 3. The code exchanged, the ID token checked.
  let connector: OidcConnector;
  let claims: IdTokenClaims;
  try {
    connector = await loadConnector(ctx, request.connector);
    claims = await ctx.sso.exchange(connector, url, {
      state,
      nonce: request.nonce,
      pkceVerifier: request.pkce_verifier,
    });
  } catch (error) {
    if (!(error instanceof KeyportError)) throw error;
    return refuse(
      error,
      error instanceof IdTokenRefused ? `ID token refused: ${error.reason}` : error.message,
    );
  }
  const subject = claims.sub;
  const name = claims[USERNAME_CLAIM];
  if (typeof name !== 'string' || name.length > 253 || !RESOURCE_NAME.test(name)) {
    return refuse(
      new KeyportError(
        'ACCESS_DENIED',
        `The identity provider's ID token has no usable "${USERNAME_CLAIM}" claim to name the user; ask an admin to add the email scope.`,
      ),
      `no ${USERNAME_CLAIM} claim`,
      subject,
    );
  }

  // 4. The claims mapped to roles that exist; none is a denial that names no role.
  const mapping = mapClaims(connector, claims);
  const roles = await loadRoles(ctx.store, mapping.roles);
  const matches = mapping.matches.map((match) => ({
    claim: match.claim,
    value: match.claimValue,
    roles: match.roles,
  }));
  if (roles.length === 0) {
    return refuse(
      new KeyportError(
        'ACCESS_DENIED',
        `Your identity provider account gives no access to ${ctx.clusterName}; ask an admin to map your groups to a role.`,
      ),
      mapping.matches.length === 0 ? 'no claims_to_roles mapping matched' : 'the mapped roles do not exist',
      subject,
      name,
    );
  }
  const roleNames = roles.map((role) => role.metadata.name);

  // 5. The SSO user: created or updated from the claims, never a local user or another connector's.
  const existing = await ctx.store.getUser(name);
  const owner = existing === undefined ? undefined : existing.sso_connector;
  if (existing !== undefined && (owner !== request.connector || existing.sso_subject !== subject)) {
    return refuse(
      sameNameRefusal(name, owner ?? null, ctx.clusterName),
      `user name taken by ${owner ? `connector ${owner}` : 'a local user'}`,
      subject,
      name,
    );
  }
  if (existing !== undefined && isLocked(existing, ctx.now())) {
    return refuse(lockedError(existing), 'user is locked', subject, name);
  }
  const spec = JSON.stringify({ roles: roleNames });
  const written = await ctx.store.sso.upsertSsoUser(
    name,
    spec,
    { connector: request.connector, subject },
    ctx.now(),
  );
  if (!written) {
    return refuse(
      sameNameRefusal(name, null, ctx.clusterName),
      'user name taken (written meanwhile)',
      subject,
      name,
    );
  }

  // 6. A one-time code for the client that started the request.
  const code = newToken();
  const localMfa = connector.spec.require_local_mfa === true;
  const identity: SsoIdentity = {
    connector: request.connector,
    subject,
    roles: roleNames,
    ...(localMfa ? { requireLocalMfa: true } : {}),
  };
  const authorized = await ctx.store.sso.authorize(request.id, {
    codeHash: tokenHash(code),
    codeExpiresMs: ctx.now() + (localMfa ? SSO_LOCAL_MFA_CODE_TTL_MS : SSO_CODE_TTL_MS),
    user: name,
    identityJson: JSON.stringify(identity),
  });
  if (!authorized) throw new KeyportError('INTERNAL', 'The SSO request changed during its callback.');
  await ctx.audit.recordAll([
    {
      type: 'sso.login',
      actor: name,
      clientAddr,
      success: true,
      message: `claims mapped by ${request.connector}: roles ${roleNames.join(', ')} granted`,
      fields: {
        step: 'callback',
        connector: request.connector,
        idp_subject: subject,
        claims_matched: matches,
        roles: roleNames,
        ...(mapping.warnings.length > 0 ? { warnings: mapping.warnings.slice(0, 16) } : {}),
      },
    },
    {
      type: existing === undefined ? 'user.create' : 'user.update',
      actor: name,
      clientAddr,
      success: true,
      message: `SSO user of ${request.connector}`,
      fields: { connector: request.connector, idp_subject: subject, roles: roleNames },
    },
  ]);
  return toClient({ code });
}

function mapClaims(connector: OidcConnector, claims: IdTokenClaims) {
  const compiled = compileClaimMappings(connector.spec.claims_to_roles);
  // Checked when the connector was loaded: a mapping that no longer compiles maps nothing.
  return compiled.ok ? mapClaimsToRoles(compiled.value, claims) : { roles: [], matches: [], warnings: [] };
}

function sameNameRefusal(name: string, owner: string | null, cluster: string): KeyportError {
  return new KeyportError(
    'ALREADY_EXISTS',
    owner === null
      ? `A local user named "${name}" exists on ${cluster}; an SSO login never signs in as a local user. Ask an admin to rename or remove one of them.`
      : `The user "${name}" on ${cluster} belongs to another SSO identity (${owner}); ask an admin.`,
  );
}

/** No request for this state: unknown, already called back, or expired. Said on a page, and audited. */
async function unknownState(
  ctx: ServiceContext,
  state: string,
  clientAddr: string,
): Promise<CallbackOutcome> {
  const row: SsoRequestRow | undefined = state
    ? await ctx.store.sso.findByStateHash(tokenHash(state))
    : undefined;
  const expired = row !== undefined && row.stage === 'started' && row.expires_ms <= ctx.now();
  const reason =
    row === undefined ? 'unknown state' : expired ? 'expired request' : 'request already called back';
  await auditSso(ctx, {
    actor: row?.user ?? 'unknown',
    clientAddr,
    success: false,
    message: reason,
    step: 'callback',
    connector: row?.connector ?? 'unknown',
  });
  return {
    page: {
      status: 400,
      title: 'Sign-in not completed',
      message: expired
        ? 'This sign-in took longer than 5 minutes. Start it again from Keyport.'
        : 'This sign-in link is unknown or was already used. Start the sign-in again from Keyport.',
    },
  };
}
