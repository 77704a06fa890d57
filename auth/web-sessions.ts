// The web UI's sessions: what a browser holds after signing in. The browser keeps a random token in a
// `__Host-` cookie (HttpOnly, Secure, SameSite=Strict, Path=/); the server keeps only its SHA-256, with the
// user, how they signed in, until when (never longer than the user's certificates would last) and the
// device state (untrusted until a trusted device approves the session). Every request finds the session
// by the hash, with the user's current row: a user deleted or locked since ends the session there.
// The CSRF token is derived from the cookie's token (an HMAC), so it needs no storage and dies with it.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { WEBAPI_CSRF_HEADER } from '../proto/webapi';
import type { WebDeviceState } from '../proto/webapi';
import type { AuditEntry } from './audit';
import type { SessionIdentity } from './certificates';
import type { ServiceContext } from './context';
import { isLocked, lockedError } from './lockout';
import type { WebSessionRow } from './storage/web-sessions';

export const WEB_SESSION_COOKIE = '__Host-keyport_session';
/** The header a state-changing request carries its CSRF token in. */
export const CSRF_HEADER = WEBAPI_CSRF_HEADER.toLowerCase();
const TOKEN_BYTES = 32;
/** A token as the cookie carries it: base64url of 32 bytes. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export type { WebDeviceState as DeviceState } from '../proto/webapi';

/** A session as the web API shows it: nothing here is a secret but the CSRF token, which is the page's. */
export interface WebSession {
  id: string;
  user: string;
  loginMethod: string;
  mfaVerified: boolean;
  createdMs: number;
  expiresMs: number;
  clientAddr: string;
  userAgent: string;
  device: WebDeviceState;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** The CSRF token of the session whose cookie carries `token`. */
export function csrfTokenOf(token: string): string {
  return createHmac('sha256', Buffer.from(token, 'base64url'))
    .update('keyport-web-csrf-v1')
    .digest('base64url');
}

/** Whether `sent` (the header) is the CSRF token of the cookie's session, compared in constant time. */
export function csrfTokenMatches(token: string, sent: string | undefined): boolean {
  if (sent === undefined) return false;
  const expected = Buffer.from(csrfTokenOf(token));
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function viewOf(row: WebSessionRow): WebSession {
  return {
    id: row.id,
    user: row.user,
    loginMethod: row.login_method,
    mfaVerified: row.mfa_verified === 1,
    createdMs: row.created_ms,
    expiresMs: row.expires_ms,
    clientAddr: row.client_addr,
    userAgent: row.user_agent,
    device:
      row.device_id !== null
        ? { trusted: true, deviceId: row.device_id, assetTag: row.device_asset_tag ?? '' }
        : { trusted: false },
  };
}

/**
 * A new session for an identity a login just earned: as long as its certificates would be
 * (`identity.ttlSeconds`, the roles' max_session_ttl), untrusted. Returns the cookie's token once; only its
 * hash is stored.
 */
export async function createWebSession(
  ctx: ServiceContext,
  identity: SessionIdentity,
  facts: { loginMethod: string; clientAddr: string; userAgent: string },
): Promise<{ token: string; session: WebSession }> {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  const now = ctx.now();
  const row: WebSessionRow = {
    id: randomBytes(16).toString('base64url'),
    token_hash: hashToken(token),
    user: identity.user,
    login_method: facts.loginMethod,
    mfa_verified: identity.mfaVerified ? 1 : 0,
    client_addr: facts.clientAddr,
    user_agent: facts.userAgent,
    created_ms: now,
    expires_ms: now + identity.ttlSeconds * 1000,
    device_id: null,
    device_asset_tag: null,
    device_trusted_ms: null,
  };
  await ctx.store.webSessions.insert(row);
  return { token, session: viewOf(row) };
}

/** The `web.session` audit row of a session a login just created (`fields` adds the login's own, e.g. SSO). */
export function webSessionStarted(
  identity: SessionIdentity,
  session: WebSession,
  clientAddr: string,
  fields: Record<string, unknown> = {},
): AuditEntry {
  return {
    type: 'web.session',
    actor: identity.user,
    clientAddr,
    success: true,
    message: `web session started, valid until ${new Date(session.expiresMs).toISOString()}`,
    fields: {
      session_id: session.id,
      roles: identity.roles,
      ttl_seconds: identity.ttlSeconds,
      mfa_verified: identity.mfaVerified,
      device_trusted: false,
      ...fields,
    },
  };
}

const signInAgain = () =>
  new KeyportError('UNAUTHENTICATED', 'You are not signed in, or your session has ended; sign in again.', {
    resolvableByRelogin: true,
  });

/**
 * The session a request's cookie names, checked now: unexpired, its user still there and not locked. A
 * session whose user was deleted or locked is ended here (and audited), so it never comes back.
 */
export async function authenticateWebSession(
  ctx: ServiceContext,
  token: string | undefined,
  clientAddr: string,
): Promise<{ session: WebSession; token: string }> {
  if (token === undefined || !TOKEN_PATTERN.test(token)) throw signInAgain();
  const found = await ctx.store.webSessions.find(hashToken(token), ctx.now());
  if (!found) throw signInAgain();
  const { session, user } = found;
  if (!user || isLocked(user, ctx.now())) {
    // Every session of the user ends, not only this one.
    const reason = user ? 'user is locked' : 'user deleted';
    const ended = await ctx.store.webSessions.deleteForUser(session.user);
    await ctx.audit.record({
      type: 'web.session',
      actor: session.user,
      clientAddr,
      success: true,
      message: `web session ended: ${reason}`,
      fields: { session_id: session.id, reason, sessions_ended: ended },
    });
    throw user ? lockedError(user) : signInAgain();
  }
  return { session: viewOf(session), token };
}

/** Ends a session (sign-out, or its user deleted or locked) and audits why. */
export async function endWebSession(
  ctx: ServiceContext,
  id: string,
  user: string,
  clientAddr: string,
  reason: string,
): Promise<void> {
  if (!(await ctx.store.webSessions.delete(id))) return;
  await ctx.audit.record({
    type: 'web.session',
    actor: user,
    clientAddr,
    success: true,
    message: `web session ended: ${reason}`,
    fields: { session_id: id, reason },
  });
}
