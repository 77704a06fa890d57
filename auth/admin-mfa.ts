// MFA for admin actions (seed "Harden your Cluster Against IdP Compromises", "Require MFA for
// administrative actions"): on a cluster where WebAuthn is the only second factor, every admin write needs
// a security key's answer bound to that very write, so a stolen session certificate alone administers
// nothing. One touch covers one command's writes:
//   1. UserService.CreateAuthenticateChallenge{ADMIN_ACTION, admin_actions}: the command names each write it
//      will make (method path + SHA-256 of the request bytes) → WebAuthn request options for the caller's
//      keys, the actions kept with the challenge (5 minutes).
//   2. Each write carries the answer in its metadata (keyport-admin-mfa-bin). The first to arrive spends the
//      challenge: it must be one of the named actions, and the assertion must verify. Each other named action
//      then gets a grant: a challenge row whose id is derived from the challenge's id and that action.
//   3. A later write with the same answer spends its own grant: that action, that user, once, within
//      ADMIN_ACTION_GRANT_TTL_MS on the service clock. Anything else is refused, audited, before any write.
// Which calls: every admin rule checked by authorize (authorize.ts) with a verb other than read or list, so
// a new admin RPC is covered by calling authorize with its resource and verb. The auth host's super-admin
// identity (`keyport admin --data-dir`) is exempt, as tctl on an auth server is in the seed.
import { createHash } from 'node:crypto';
import { actionKey, invalidAdminActions } from '../proto/admin-mfa';
import { KeyportError } from '../proto/errors';
import { ChallengeScope, MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge } from '../proto/gen/keyport/v1/mfa';
import type { AdminAction } from '../proto/gen/keyport/v1/user';
import { createChallenge, newChallengeBytes, spendChallenge } from './challenges';
import type { Refusal } from './challenges';
import { MFA_CHALLENGE_TTL_MS } from './context';
import type { ServiceContext } from './context';
import type { Identity } from './identity';
import { verifyWebauthnAnswer } from './mfa';
import { loadCap } from './policy';
import type { ClusterPolicy } from './policy';
import type { CallContext } from './rpc';
import { authenticationOptions, relyingParty, webauthnEnabled } from './webauthn';

/** How long the other calls of a command may follow the first one with the same answer. */
export const ADMIN_ACTION_GRANT_TTL_MS = 60_000;

/** Verbs that change nothing; every other verb of an admin rule is a write and needs the answer. */
const READ_VERBS: ReadonlySet<string> = new Set(['read', 'list']);

export function isAdminWrite(verb: string): boolean {
  return !READ_VERBS.has(verb);
}

/**
 * The seed's condition: "automatically enforced for clusters where WebAuthn is the only form of
 * multi-factor allowed" (a second factor required, WebAuthn allowed, OTP not).
 */
export function adminMfaEnforced(
  cap: Pick<ClusterPolicy, 'secondFactorRequired' | 'secondFactors'>,
): boolean {
  return (
    cap.secondFactorRequired && cap.secondFactors.includes('webauthn') && !cap.secondFactors.includes('otp')
  );
}

/** Nothing to answer: the caller is exempt, or the cluster does not enforce MFA for admin actions. */
const notRequired = (): MFAAuthenticateChallenge => ({
  challengeId: '',
  scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
  totpAllowed: false,
  webauthnRequestOptionsJson: '',
  expiresMs: 0,
  mfaRequired: false,
});

/** Step 1: a challenge for these writes, answered by one of the caller's security keys. */
export async function createAdminActionChallenge(
  ctx: ServiceContext,
  identity: Identity,
  actions: readonly AdminAction[],
  clientAddr: string,
): Promise<MFAAuthenticateChallenge> {
  const invalid = invalidAdminActions(actions);
  if (invalid) throw new KeyportError('INVALID_ARGUMENT', invalid.message, { fieldPath: invalid.fieldPath });
  if (identity.builtin) return notRequired();
  const cap = await loadCap(ctx.store);
  if (!adminMfaEnforced(cap) || !webauthnEnabled(cap)) return notRequired();
  const keys = (await ctx.store.listDevices(identity.user)).filter((d) => d.type === 'webauthn');
  if (keys.length === 0) {
    // Audited: an admin's identity without a key is what an IdP that mints claims produces.
    await ctx.audit.record({
      type: 'mfa.admin_action',
      actor: identity,
      clientAddr,
      success: false,
      message: 'admin action challenge refused: no security key',
      fields: { methods: actions.map((action) => action.method), reason: 'no security key' },
    });
    throw new KeyportError(
      'MFA_REQUIRED',
      'Admin actions on this cluster need a touch of a security key, and you have none registered.',
    );
  }
  const options = await authenticationOptions({
    rp: relyingParty(cap, ctx.clusterName),
    challenge: newChallengeBytes(),
    devices: keys,
    userVerification: 'discouraged',
  });
  const { id, expiresMs } = await createChallenge(
    ctx,
    'CHALLENGE_SCOPE_ADMIN_ACTION',
    identity.user,
    {
      webauthnChallenge: options.challenge,
      actions: actions.map(({ method, requestDigest }) => ({ method, requestDigest })),
    },
    { ttlMs: MFA_CHALLENGE_TTL_MS },
  );
  return {
    challengeId: id,
    scope: ChallengeScope.CHALLENGE_SCOPE_ADMIN_ACTION,
    totpAllowed: false,
    webauthnRequestOptionsJson: JSON.stringify(options),
    expiresMs,
    mfaRequired: true,
  };
}

/** The grant of one action of an answered challenge: only that challenge's id and that call give it. */
function grantId(challengeId: string, action: AdminAction): string {
  return createHash('sha256')
    .update(`keyport-admin-action-grant\n${challengeId}\n${actionKey(action)}`)
    .digest('base64url');
}

type AdminMfaRefusal =
  | 'missing'
  | 'malformed'
  | 'used'
  | 'expired'
  | 'another purpose'
  | 'another user'
  | 'another action'
  | 'not a security key'
  | 'security key';

function refusalError(reason: AdminMfaRefusal, method: string): KeyportError {
  const again = 'run the command again and tap your security key';
  switch (reason) {
    case 'missing':
      return new KeyportError(
        'MFA_REQUIRED',
        `MFA for admin actions: ${method} needs a touch of your security key for this very call (keyport admin asks for it).`,
      );
    case 'malformed':
      return new KeyportError('INVALID_ARGUMENT', 'The MFA answer for this admin action is not readable.');
    case 'used':
      return new KeyportError(
        'EXPIRED',
        `This MFA answer was already used for the admin action(s) it was given for; ${again}.`,
      );
    case 'expired':
      return new KeyportError('EXPIRED', `The MFA answer for this admin action expired; ${again}.`);
    case 'another purpose':
      return new KeyportError(
        'ACCESS_DENIED',
        `This MFA answer was given for another purpose, not for an admin action; ${again}.`,
      );
    case 'another user':
      return new KeyportError('ACCESS_DENIED', 'This MFA answer was given to another user.');
    case 'another action':
      return new KeyportError(
        'ACCESS_DENIED',
        `This MFA answer was given for other admin actions, not for ${method} with this request; ${again}.`,
      );
    case 'not a security key':
      return new KeyportError('MFA_FAILED', 'MFA for admin actions takes a security key, not an OTP code.');
    case 'security key':
      return new KeyportError('MFA_FAILED', 'The security key did not answer this admin action.');
  }
}

const fromChallengeRefusal = (reason: Refusal): AdminMfaRefusal =>
  reason === 'unknown or spent' ? 'used' : reason;

/** The calls already checked (createResources asks authorize once per document and verb). */
const checked = new WeakMap<CallContext, Promise<void>>();

/**
 * Steps 2 and 3 for an admin write that authorize allowed: once per call, whatever the number of rules it
 * checks. Refused (and audited) unless the call carries an answer bound to it; nothing is written first.
 */
export function requireAdminActionMfa(
  ctx: ServiceContext,
  call: CallContext,
  identity: Identity,
): Promise<void> {
  let check = checked.get(call);
  if (!check) {
    check = checkAnswer(ctx, call, identity);
    checked.set(call, check);
  }
  return check;
}

async function checkAnswer(ctx: ServiceContext, call: CallContext, identity: Identity): Promise<void> {
  if (identity.builtin) return;
  const cap = await loadCap(ctx.store);
  if (!adminMfaEnforced(cap)) return;
  const action: AdminAction = { method: call.method, requestDigest: call.requestDigest() ?? '' };
  const refuse = async (
    reason: AdminMfaRefusal,
    error: KeyportError = refusalError(reason, call.method),
  ): Promise<never> => {
    await ctx.audit.record({
      type: 'mfa.admin_action',
      actor: identity,
      clientAddr: call.clientAddr,
      success: false,
      message: `${call.method} refused: ${reason}`,
      fields: { method: call.method, request_digest: action.requestDigest, reason },
    });
    throw error;
  };
  if (!call.adminMfaResponse) return refuse('missing');
  let response: MFAAuthenticateResponse;
  try {
    response = MFAAuthenticateResponse.decode(call.adminMfaResponse);
  } catch {
    return refuse('malformed');
  }
  if (!response.challengeId || !action.requestDigest) return refuse('malformed');

  // 3. A later call of the command: its own grant, spent now.
  const grant = await spendChallenge(
    ctx,
    grantId(response.challengeId, action),
    ['ADMIN_ACTION_GRANT'],
    identity.user,
  );
  if (grant.ok) {
    if (grant.challenge.payload.action !== actionKey(action)) return refuse('another action');
    return;
  }
  if (grant.reason !== 'unknown or spent') return refuse(fromChallengeRefusal(grant.reason));

  // 2. The first call: the challenge spent whatever happens next, then its actions, then the assertion.
  const spent = await spendChallenge(
    ctx,
    response.challengeId,
    ['CHALLENGE_SCOPE_ADMIN_ACTION'],
    identity.user,
  );
  if (!spent.ok) return refuse(fromChallengeRefusal(spent.reason));
  const { actions, webauthnChallenge } = spent.challenge.payload;
  const key = actionKey(action);
  if (!actions.some((named) => actionKey(named) === key)) return refuse('another action');
  const answer = response.response;
  if (answer?.$case !== 'webauthnJson') return refuse('not a security key');
  try {
    await verifyWebauthnAnswer(ctx, {
      challengeUser: identity.user,
      webauthnChallenge,
      passwordless: false,
      json: answer.value,
      cap,
      clientAddr: call.clientAddr,
    });
  } catch (error) {
    if (error instanceof KeyportError) return refuse('security key', error);
    throw error;
  }
  // The command's other calls, each once, for a short while.
  for (const other of actions) {
    if (actionKey(other) === key) continue;
    await createChallenge(
      ctx,
      'ADMIN_ACTION_GRANT',
      identity.user,
      { action: actionKey(other) },
      { ttlMs: ADMIN_ACTION_GRANT_TTL_MS, id: grantId(response.challengeId, other) },
    );
  }
}
