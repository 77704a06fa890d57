// SSO for the web UI: the same request, IdP and callback as the CLI's ceremony (callback.ts), ending in a
// web session instead of a one-time code. Its own steps:
//   start (POST /v1/webapi/sso/start, from the web UI's page): the connector; no client keys. The request
//     is stored as kind 'web' (state, nonce, PKCE verifier; single use; 5 minutes) with the SHA-256 of a
//     random value the browser keeps in a `__Host-keyport_sso` cookie, and the IdP's authorization URL is
//     the answer;
//   at the callback, only the browser holding that cookie spends the state (a callback URL replayed in
//     another browser spends nothing and signs nothing in); after the ID token, the claims and the SSO user
//     (callback.ts), the roles must allow a web session at all (no hardware-key policy: a browser holds no
//     session key; no `require_local_mfa`: the web UI has no security-key step after the IdP's yet, so it
//     fails closed), and the web session is made as the local web login makes it: untrusted, not
//     MFA-verified (the IdP's MFA counted for the login, as the seed says; per-session MFA and MFA for
//     admin actions still ask for the person's own key), as long as the roles' max_session_ttl.
import { KeyportError } from '../../proto/errors';
import { requiredKeyPolicy } from '../../proto/resources/private-key-policy';
import type { OidcConnector, Role } from '../../proto/resources/schema';
import { sessionIdentityOf } from '../certificates';
import { SSO_REQUEST_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import type { AuditEntry } from '../audit';
import { limitAddress } from '../lockout';
import { loadCap } from '../policy';
import type { SsoRequestRow } from '../storage/sso-requests';
import type { UserRow } from '../storage/store';
import { createWebSession, webSessionStarted } from '../web-sessions';
import type { CallbackOutcome } from './callback';
import { auditSso, authorizeAtIdp, loadConnector, newToken, tokenHash } from './requests';
import type { SsoIdentity } from './requests';

/** The cookie that binds a web SSO request to the browser that started it. */
export const SSO_BINDING_COOKIE = '__Host-keyport_sso';
/** A binding value as the cookie carries it: base64url of 32 random bytes. */
const BINDING_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const isBindingToken = (value: string | undefined): value is string =>
  value !== undefined && BINDING_PATTERN.test(value);

/** Step one: the web request stored, bound to the browser; the IdP's authorization URL to go to. */
export async function startWebSso(
  ctx: ServiceContext,
  request: { connectorName: string; browserBinding: string | undefined; clientAddr: string },
): Promise<{ authorizationUrl: string; browserBinding: string; expiresMs: number }> {
  await limitAddress(ctx, request.clientAddr);
  const connector = await loadConnector(ctx, request.connectorName);
  const name = connector.metadata.name;
  // A browser that already holds a binding keeps it, so two sign-ins started in two tabs both finish.
  const browserBinding = isBindingToken(request.browserBinding) ? request.browserBinding : newToken();
  const { state, nonce, pkceVerifier, authorizationUrl } = await authorizeAtIdp(ctx, connector, {
    clientAddr: request.clientAddr,
    web: true,
  });
  const nowMs = ctx.now();
  const expiresMs = nowMs + SSO_REQUEST_TTL_MS;
  await ctx.store.sso.insert({
    id: newToken(),
    kind: 'web',
    browser_binding_hash: tokenHash(browserBinding),
    state_hash: tokenHash(state),
    connector: name,
    nonce,
    pkce_verifier: pkceVerifier,
    client_redirect_url: '/',
    keys_json: '{}',
    client_addr: request.clientAddr,
    created_ms: nowMs,
    expires_ms: expiresMs,
  });
  await auditSso(ctx, {
    actor: 'unknown',
    clientAddr: request.clientAddr,
    success: true,
    message: `SSO login to the web UI started through ${name}`,
    step: 'start',
    connector: name,
    fields: { kind: 'web' },
  });
  return { authorizationUrl: authorizationUrl.href, browserBinding, expiresMs };
}

/** Why these roles get no web session through this connector, or undefined (checked before any write). */
export async function webSessionRefusal(
  ctx: ServiceContext,
  connector: OidcConnector,
  roles: Role[],
): Promise<{ error: KeyportError; reason: string } | undefined> {
  const required = requiredKeyPolicy(await loadCap(ctx.store), roles);
  if (required !== 'none') {
    return {
      reason: `private key policy "${required}": no web session`,
      error: new KeyportError(
        'PRIVATE_KEY_POLICY_NOT_MET',
        `Your roles require a hardware key (${required}) for every session; the web UI cannot hold one. Sign in with "keyport login --auth=${connector.metadata.name}" and your hardware key instead.`,
        { privateKeyPolicy: required },
      ),
    };
  }
  if (connector.spec.require_local_mfa === true) {
    return {
      reason: 'require_local_mfa: no security-key step on the web UI',
      error: new KeyportError(
        'MFA_REQUIRED',
        `"${connector.spec.display ?? connector.metadata.name}" requires your security key after the identity provider's sign-in, which the web UI does not ask for yet. Sign in with "keyport login --auth=${connector.metadata.name}" or Keyport Connect.`,
      ),
    };
  }
  return undefined;
}

/**
 * The callback's last step for a web request: the web session made for the SSO user, the request marked
 * signed in (once), and the login audited with what the callback mapped, in one statement.
 */
export async function finishWebSso(
  ctx: ServiceContext,
  done: {
    request: SsoRequestRow;
    connector: OidcConnector;
    user: UserRow;
    roles: Role[];
    identity: SsoIdentity;
    clientAddr: string;
    userAgent: string;
    mapped: AuditEntry[];
  },
): Promise<{ token: string; expiresMs: number }> {
  const identity = await sessionIdentityOf(ctx, done.user, { mfaVerified: false, roles: done.roles });
  if (
    !(await ctx.store.sso.signedIn(done.request.id, {
      user: identity.user,
      identityJson: JSON.stringify(done.identity),
    }))
  ) {
    throw new KeyportError('INTERNAL', 'The SSO request changed during its callback.');
  }
  const display = done.connector.spec.display ?? done.connector.metadata.name;
  const created = await createWebSession(ctx, identity, {
    loginMethod: `SSO (${display})`,
    clientAddr: done.clientAddr,
    userAgent: done.userAgent.slice(0, 512),
  });
  const sso = { connector: done.identity.connector, idp_subject: done.identity.subject };
  await ctx.audit.recordAll([
    ...done.mapped,
    {
      type: 'user.login',
      actor: identity.user,
      clientAddr: done.clientAddr,
      success: true,
      message: `sso (${done.identity.connector}) (web)`,
      fields: sso,
    },
    webSessionStarted(identity, created.session, done.clientAddr, sso),
  ]);
  return { token: created.token, expiresMs: created.session.expiresMs };
}

/** A web request's refusal, said on a page of keyport-auth's own with the way back to the sign-in. */
export function webRefusalPage(error: KeyportError): CallbackOutcome {
  return {
    page: {
      status: error.code === 'UNAVAILABLE' ? 503 : 403,
      title: 'Sign-in refused',
      message: error.message,
      link: { href: '/', text: 'Back to sign in' },
    },
  };
}
