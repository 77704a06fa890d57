// Passwordless login's challenge and its answer's first read: a challenge with no user (any passkey of
// this cluster, user verification required), made in the same round trip as the address's rate-limit count
// when the call has no device part; then, in step two, the challenge spent in the same round trip as the
// passkey it is answered with is read (storage/login.ts). The answer itself is checked by mfa.ts.
import { KeyportError } from '../proto/errors';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge } from '../proto/gen/keyport/v1/mfa';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { challengeRow, createChallenge, newChallengeBytes } from './challenges';
import type { ServiceContext } from './context';
import type { DevicePayload } from './device-trust/payloads';
import { addressRate, refuseOverLimit } from './lockout';
import { passwordlessDisabled } from './mfa';
import { CAP_KIND, capOfStored } from './policy';
import type { ClusterPolicy } from './policy';
import type { ChallengeRow, PasskeyLogin } from './storage/store';
import { authenticationOptions, parseAssertion, relyingParty, webauthnEnabled } from './webauthn';

export const PASSWORDLESS_CHALLENGE_TTL_MS = 60 * 1000;

/** A passwordless challenge: no user, discoverable credentials only, user verification required. */
export async function createPasswordlessChallenge(
  ctx: ServiceContext,
  cap: ClusterPolicy,
  device?: DevicePayload,
): Promise<MFAAuthenticateChallenge> {
  const refusal = passwordlessRefusal(cap);
  if (refusal) throw refusal;
  const bytes = newChallengeBytes();
  const { id, expiresMs } = await createChallenge(
    ctx,
    'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN',
    null,
    {
      webauthnChallenge: Buffer.from(bytes).toString('base64url'),
      passwordless: true,
      ...(device ? { device } : {}),
    },
    { ttlMs: PASSWORDLESS_CHALLENGE_TTL_MS },
  );
  return passwordlessChallenge(ctx, cap, bytes, id, expiresMs);
}

/**
 * createPasswordlessChallenge for a call with no device part, counted against the address's rate limit
 * in the same round trip: the count, the cap and the new challenge in one statement (stored only within
 * the limit; storage/login.ts). The cap is checked once it is read: a refusal removes the challenge again,
 * so it leaves only its count, as before.
 */
export async function createCountedPasswordlessChallenge(
  ctx: ServiceContext,
  clientAddr: string,
): Promise<{ challenge: MFAAuthenticateChallenge; cap: ClusterPolicy }> {
  const bytes = newChallengeBytes();
  const row = challengeRow(
    ctx,
    'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN',
    null,
    { webauthnChallenge: Buffer.from(bytes).toString('base64url'), passwordless: true },
    { ttlMs: PASSWORDLESS_CHALLENGE_TTL_MS },
  );
  const rate = addressRate(ctx, clientAddr);
  const nowMs = ctx.now();
  const hit = await ctx.store.login.hitStoringChallenge(
    { key: rate.key, nowMs, windowMs: ctx.rateLimit.windowMs, limit: rate.limit },
    CAP_KIND,
    row,
  );
  if (!hit.stored) await refuseOverLimit(ctx, { ...rate, ...hit, nowMs }, clientAddr, rate.what);
  const cap = capOfStored(hit.configJson);
  const refusal = passwordlessRefusal(cap);
  if (refusal) {
    await ctx.store.deleteChallenge(row.id);
    throw refusal;
  }
  return { challenge: await passwordlessChallenge(ctx, cap, bytes, row.id, row.expires_ms), cap };
}

/** Why this cluster takes no passwordless login, if it does not. */
function passwordlessRefusal(cap: ClusterPolicy): KeyportError | undefined {
  if (!cap.allowPasswordless) return passwordlessDisabled();
  if (!webauthnEnabled(cap)) {
    return new KeyportError(
      'PRECONDITION_FAILED',
      'Passwordless login needs security keys (WebAuthn), which this cluster does not enable.',
    );
  }
  return undefined;
}

/** The stored passwordless challenge as the client gets it: WebAuthn options over its bytes. */
async function passwordlessChallenge(
  ctx: ServiceContext,
  cap: ClusterPolicy,
  bytes: Uint8Array<ArrayBuffer>,
  id: string,
  expiresMs: number,
): Promise<MFAAuthenticateChallenge> {
  const options = await authenticationOptions({
    rp: relyingParty(cap, ctx.clusterName),
    challenge: bytes,
    devices: [],
    userVerification: 'required',
  });
  return {
    challengeId: id,
    scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
    totpAllowed: false,
    webauthnRequestOptionsJson: JSON.stringify(options),
    expiresMs,
    mfaRequired: true,
  };
}

/** A security key's answer, parsed, with what it names: its passkey and owner, and the cap, read together. */
export interface PasskeyRead {
  assertion: AuthenticationResponseJSON;
  /** Undefined when no key has the assertion's credential id. */
  found?: PasskeyLogin;
  /** The cap, read with the passkey (undefined when no key was found). */
  cap?: ClusterPolicy;
}

/**
 * Login step two's first round trip: challenge `id` spent, and, when the answer is a security key's, the
 * passkey it names, its owner (read now, so a lock holds at once), the cap, and whether the owner has
 * failed sign-ins recorded from `address` (for the lockout to forgive), in one statement on PostgreSQL
 * (storage/login.ts). `passkey` is undefined when there is no such answer or it does not parse:
 * verifyWebauthnAnswer refuses it as it would any other.
 */
export async function spendReadingPasskey(
  ctx: ServiceContext,
  id: string,
  json: string | undefined,
  address: string,
): Promise<{ row?: ChallengeRow; passkey?: PasskeyRead }> {
  if (!id) return {};
  let assertion: AuthenticationResponseJSON | undefined;
  try {
    assertion = json === undefined ? undefined : parseAssertion(json);
  } catch {
    assertion = undefined;
  }
  if (!assertion) {
    const row = await ctx.store.consumeChallenge(id);
    return row ? { row } : {};
  }
  const read = await ctx.store.login.spendReadingPasskey(id, assertion.id, CAP_KIND, address);
  const found = read.passkey;
  return {
    ...(read.challenge ? { row: read.challenge } : {}),
    passkey: { assertion, ...(found ? { found, cap: capOfStored(found.configJson) } : {}) },
  };
}
