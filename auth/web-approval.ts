// The web-session approval ceremony: a browser signed in to the web UI is verified by the person's trusted
// device, through Keyport Connect. One module for both transports (the web API's two ends, api.ts; Keyport
// Connect's three calls, services/web-session-service.ts), in the ceremony's order:
//   1. request: the signed-in, untrusted web session asks; a web token (32 random bytes, stored hashed, 5
//      minutes, bound to that session) and the short code derived from it go into a keyport:// link.
//   2. describe: Keyport Connect, signed in as the session's user, reads what its screen shows.
//   3. begin: a nonce for the user's enrolled, unlocked device, kept with the request and the token's hash.
//   4. approve: the device's TPM quote over SHA-256(label ‖ nonce ‖ SHA-256(web token)) by its enrolled AK;
//      the challenge and then the web token are spent (one UPDATE … RETURNING), and a confirmation token
//      (stored hashed, 2 minutes, bound to the same session) is the answer.
//   5. confirm: the browser opens the confirm URL; the cookie's session must be the one that asked; the
//      confirmation token is spent and the session takes the device's identity.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { WEB_DEVICE_CONFIRM_PATH, webApprovalQuoteData, webTokenDigest } from '../proto/web-approval';
import type { DeviceChallengeResponse } from '../proto/gen/keyport/v1/device';
import { challengeRefusal, createChallenge, spendChallenge } from './challenges';
import type { ServiceContext } from './context';
import { verifyDeviceQuote } from './device-trust/ceremony';
import { deviceTrustDecision } from './device-trust/policy';
import { loadCap, loadRoles } from './policy';
import type { DeviceRow } from './storage/devices';
import type { WebApprovalRow } from './storage/web-approvals';
import type { WebSession } from './web-sessions';

export const WEB_TOKEN_TTL_MS = 5 * 60 * 1000;
export const CONFIRMATION_TTL_MS = 2 * 60 * 1000;
/** A request id and a token as this module makes them (base64url of 16 and 32 bytes). */
const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const MAX_REDIRECT = 1024;

const hashOf = (token: string): string => webTokenDigest(token).toString('base64url');

/** The short code both screens show ("123-456"): derived from the web token, so it names this request. */
export function shortCodeOf(token: string): string {
  const digest = createHash('sha256').update('keyport-web-approval-code-v1\0').update(token).digest();
  const n = digest.readUInt32BE(0) % 1_000_000;
  const text = n.toString().padStart(6, '0');
  return `${text.slice(0, 3)}-${text.slice(3)}`;
}

export type WebDeviceTrust = 'off' | 'optional' | 'required';

/** Whether this user's web sessions need a trusted device (the cap, or a role of the user). */
export async function webDeviceTrustFor(ctx: ServiceContext, user: string): Promise<WebDeviceTrust> {
  const cap = await loadCap(ctx.store);
  if (cap.device_trust.mode === 'off') return 'off';
  const row = await ctx.store.getUser(user);
  const spec = JSON.parse(row?.spec_json ?? '{}') as { roles?: string[] };
  const roles = await loadRoles(ctx.store, spec.roles ?? []);
  return deviceTrustDecision(cap.device_trust.mode, { roles }, { kind: 'web_session' }).required
    ? 'required'
    : 'optional';
}

/**
 * The redirect a confirmation goes on to: a path on the web UI itself. One leading `/` not followed by `/`
 * or `\`, printable ASCII without `\` or whitespace, resolving to the web UI's own origin; `/` when none.
 */
export function checkRedirect(redirect: string | undefined, origin: string): string {
  if (redirect === undefined || redirect === '') return '/';
  const refused = () =>
    new KeyportError(
      'INVALID_ARGUMENT',
      'The redirect must be a path on this web UI (such as /), never another site.',
      { fieldPath: 'redirect' },
    );
  if (
    redirect.length > MAX_REDIRECT ||
    !/^\/(?![/\\])[\x21-\x7e]*$/.test(redirect) ||
    redirect.includes('\\')
  ) {
    throw refused();
  }
  let resolved: URL;
  try {
    resolved = new URL(redirect, origin);
  } catch {
    throw refused();
  }
  if (resolved.origin !== origin) throw refused();
  return resolved.pathname + resolved.search;
}

// Refusals, worded for the person who sees them.
const invalidLink = () =>
  new KeyportError(
    'ACCESS_DENIED',
    'This verification request is not valid or was already used; start again from the web page.',
    { fieldPath: 'token' },
  );
const expiredLink = () =>
  new KeyportError('EXPIRED', 'This verification request has expired; start again from the web page.', {
    fieldPath: 'token',
  });
const sessionEnded = () =>
  new KeyportError(
    'EXPIRED',
    "The browser's web session has ended; sign in on the web page again and start again.",
  );
const notYours = () =>
  new KeyportError(
    'ACCESS_DENIED',
    'This browser session belongs to another user: sign in to Keyport Connect as the user signed in on the web page.',
  );
const alreadyTrusted = () =>
  new KeyportError('PRECONDITION_FAILED', 'This browser session is already verified by a trusted device.');

/** Why a request cannot be used, for the audit log: the refusal thrown carries the words for the person. */
export class ApprovalRefusal extends KeyportError {
  constructor(
    readonly reason: string,
    error: KeyportError,
  ) {
    super(error.code, error.message, error.fields);
  }
}
const refuse = (reason: string, error: KeyportError) => new ApprovalRefusal(reason, error);

/** Step 1: a request for this untrusted session; the token is returned once, only its hash is stored. */
export async function requestApproval(
  ctx: ServiceContext,
  session: WebSession,
): Promise<{ id: string; token: string; code: string; link: string; expiresMs: number }> {
  if (session.device.trusted) throw refuse('already trusted', alreadyTrusted());
  if ((await webDeviceTrustFor(ctx, session.user)) === 'off') {
    throw refuse(
      'device trust off',
      new KeyportError(
        'PRECONDITION_FAILED',
        'Device trust is off on this cluster: there is nothing to verify.',
      ),
    );
  }
  const id = randomBytes(16).toString('base64url');
  const token = randomBytes(32).toString('base64url');
  const now = ctx.now();
  const expiresMs = Math.min(now + WEB_TOKEN_TTL_MS, session.expiresMs);
  await ctx.store.webApprovals.insert({
    id,
    web_session_id: session.id,
    user: session.user,
    token_hash: hashOf(token),
    created_ms: now,
    expires_ms: expiresMs,
    token_used: 0,
    confirm_used: 0,
  });
  const query = new URLSearchParams({ id, token, redirect: '/' });
  const link = `keyport://${ctx.clusterName}/authorize-web-session?${query.toString()}`;
  return { id, token, code: shortCodeOf(token), link, expiresMs };
}

/** The request `id` whose web token is `token`, unspent, unexpired, for a live untrusted session of `user`. */
async function usableRequest(
  ctx: ServiceContext,
  user: string,
  id: string,
  token: string,
): Promise<{ request: WebApprovalRow; session: WebSession }> {
  if (!ID_PATTERN.test(id)) throw refuse('malformed id', invalidLink());
  if (!TOKEN_PATTERN.test(token)) throw refuse('malformed token', invalidLink());
  const request = await ctx.store.webApprovals.get(id);
  const expected = Buffer.from(request?.token_hash ?? '', 'base64url');
  const given = webTokenDigest(token);
  if (!request || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw refuse('unknown request or wrong token', invalidLink());
  }
  if (request.token_used) throw refuse('token already used', invalidLink());
  if (request.expires_ms <= ctx.now()) throw refuse('token expired', expiredLink());
  if (request.user !== user) throw refuse('another user', notYours());
  const sessions = await ctx.store.webSessions.listForUser(request.user);
  const row = sessions.find((s) => s.id === request.web_session_id && s.expires_ms > ctx.now());
  if (!row) throw refuse('web session ended', sessionEnded());
  if (row.device_id !== null) throw refuse('already trusted', alreadyTrusted());
  return {
    request,
    session: {
      id: row.id,
      user: row.user,
      loginMethod: row.login_method,
      mfaVerified: row.mfa_verified === 1,
      createdMs: row.created_ms,
      expiresMs: row.expires_ms,
      clientAddr: row.client_addr,
      userAgent: row.user_agent,
      device: { trusted: false },
    },
  };
}

/** Step 2: what Keyport Connect's screen shows. Spends nothing. */
export async function describeApproval(ctx: ServiceContext, user: string, id: string, token: string) {
  const { request, session } = await usableRequest(ctx, user, id, token);
  return {
    cluster: ctx.clusterName,
    user: session.user,
    browserAddr: session.clientAddr,
    userAgent: session.userAgent,
    code: shortCodeOf(token),
    expiresMs: request.expires_ms,
    webSessionId: session.id,
  };
}

/** The user's device by credential, enrolled, unlocked and theirs: an untrusted device cannot approve. */
async function approvingDevice(ctx: ServiceContext, user: string, credentialId: string): Promise<DeviceRow> {
  const device = credentialId ? await ctx.store.devices.byCredential(credentialId) : undefined;
  if (!device || device.enroll_status !== 'enrolled' || device.locked || device.owner !== user) {
    throw refuse(
      device ? (device.locked ? 'device locked' : 'device not enrolled to this user') : 'device not enrolled',
      new KeyportError(
        'DEVICE_TRUST_REQUIRED',
        'Only a trusted device can verify a browser: enroll this device (`keyport device enroll`) and try again.',
        { fieldPath: 'credential_id' },
      ),
    );
  }
  return device;
}

/** Step 3: a nonce for the device, kept with the request and its token's hash. */
export async function beginApproval(
  ctx: ServiceContext,
  user: string,
  input: { id: string; token: string; credentialId: string },
): Promise<{ challengeId: string; nonce: Buffer; expiresMs: number; deviceId: string }> {
  const { request } = await usableRequest(ctx, user, input.id, input.token);
  const device = await approvingDevice(ctx, user, input.credentialId);
  const nonce = randomBytes(32);
  const { id: challengeId, expiresMs } = await createChallenge(
    ctx,
    'WEB_APPROVAL',
    user,
    {
      approvalId: request.id,
      deviceId: device.id,
      credentialId: input.credentialId,
      nonce: nonce.toString('base64'),
      tokenHash: request.token_hash,
    },
    { ttlMs: WEB_TOKEN_TTL_MS, notAfterMs: request.expires_ms },
  );
  return { challengeId, nonce, expiresMs, deviceId: device.id };
}

/**
 * Step 4: the quote, bound to this request's web token; then the web token is spent, once, and a
 * confirmation token for the session that asked is the answer.
 */
export async function approve(
  ctx: ServiceContext,
  user: string,
  input: { id: string; token: string; challengeId: string; response?: DeviceChallengeResponse | undefined },
  webOrigin: string,
) {
  // The challenge is spent first, whatever follows: a quote is tried once.
  const spent = await spendChallenge(ctx, input.challengeId, ['WEB_APPROVAL'], user);
  if (!spent.ok) throw refuse(`challenge ${spent.reason}`, challengeRefusal(spent.reason, 'authorize again'));
  const payload = spent.challenge.payload;
  const { request, session } = await usableRequest(ctx, user, input.id, input.token);
  if (payload.approvalId !== request.id || payload.tokenHash !== request.token_hash) {
    throw refuse(
      'challenge for another request',
      new KeyportError('ACCESS_DENIED', 'This device challenge was made for another verification request.', {
        fieldPath: 'challenge_id',
      }),
    );
  }
  const device = await approvingDevice(ctx, user, payload.credentialId);
  const quoted = webApprovalQuoteData(Buffer.from(payload.nonce, 'base64'), webTokenDigest(input.token));
  try {
    verifyDeviceQuote(
      device.ak_public ?? '',
      {
        kind: 'auth',
        deviceId: device.id,
        credentialId: payload.credentialId,
        nonce: quoted.toString('base64'),
      },
      input.response,
      'response',
    );
  } catch (error) {
    throw refuse('quote refused', error as KeyportError);
  }
  const confirmation = randomBytes(32).toString('base64url');
  const now = ctx.now();
  const confirmExpiresMs = Math.min(now + CONFIRMATION_TTL_MS, session.expiresMs);
  const webSessionId = await ctx.store.webApprovals.spendToken(request.id, request.token_hash, now, {
    confirmHash: hashOf(confirmation),
    confirmExpiresMs,
    deviceId: device.id,
    assetTag: device.asset_tag,
  });
  // Another approval spent it between the read and here.
  if (webSessionId === undefined) throw refuse('token already used', invalidLink());
  const query = new URLSearchParams({ id: request.id, token: confirmation });
  return {
    confirmationToken: confirmation,
    expiresMs: confirmExpiresMs,
    confirmUrl: `${webOrigin}${WEB_DEVICE_CONFIRM_PATH}?${query.toString()}`,
    deviceId: device.id,
    assetTag: device.asset_tag,
    webSessionId,
  };
}

/**
 * Step 5: the browser's confirmation. `session` is the cookie's (already authenticated); the confirmation
 * token must be this session's, unspent and unexpired. The session then carries the device.
 */
export async function confirm(
  ctx: ServiceContext,
  session: WebSession,
  id: string,
  token: string,
): Promise<{ deviceId: string; assetTag: string }> {
  if (!ID_PATTERN.test(id)) throw refuse('malformed id', invalidLink());
  if (!TOKEN_PATTERN.test(token)) throw refuse('malformed token', invalidLink());
  const now = ctx.now();
  const device = await ctx.store.webApprovals.spendConfirmation(id, hashOf(token), session.id, now);
  if (!device) {
    const request = await ctx.store.webApprovals.get(id);
    const given = webTokenDigest(token);
    const expected = Buffer.from(request?.confirm_hash ?? '', 'base64url');
    if (!request || expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw refuse('unknown request or wrong confirmation token', invalidLink());
    }
    if (request.web_session_id !== session.id) {
      throw refuse(
        'another browser session',
        new KeyportError(
          'ACCESS_DENIED',
          'This confirmation belongs to the browser session that asked for it: open it in that browser.',
        ),
      );
    }
    if (request.confirm_used) throw refuse('confirmation already used', invalidLink());
    throw refuse('confirmation expired', expiredLink());
  }
  const row = await ctx.store.devices.get(device.deviceId);
  if (!row || row.locked || row.enroll_status !== 'enrolled') {
    throw refuse(
      'device removed or locked',
      new KeyportError('DEVICE_TRUST_REQUIRED', 'The approving device was removed or locked; start again.'),
    );
  }
  if (!(await ctx.store.webSessions.trust(session.id, device, now))) {
    throw refuse('already trusted', alreadyTrusted());
  }
  return device;
}
