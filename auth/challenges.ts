// Challenges: each made for one purpose, with the payload that purpose needs (typed, and checked again
// when it is read back), stored server side, and spent by the first answer whatever its outcome. A
// purpose is a ChallengeScope of the API (login, passwordless login, managing devices, admin actions) or an
// internal one (registering a device, at signup or later; enrolling or authenticating a trusted device; the
// calls left of an answered admin-action challenge).
import { z } from 'zod';
import { KeyportError } from '../proto/errors';
import { MAX_ADMIN_ACTIONS } from '../proto/admin-mfa';
import type { ServiceContext } from './context';
import type { ChallengeRow } from './storage/store';
import {
  authPayloadSchema,
  devicePayloadSchema,
  enrollPayloadSchema,
  webApprovalPayloadSchema,
} from './device-trust/payloads';
import { randomPooled } from './random';

const webauthnChallenge = z.string().min(1);

/** What each purpose's challenge carries. The JSON field names are the stored ones: keep them. */
const payloadSchemas = {
  /** Login after a password: OTP when the user has it and the cluster allows it; their keys. */
  /** `device`: this login also authenticates (or auto-enrolls) the device's TPM. */
  CHALLENGE_SCOPE_LOGIN: z.object({
    totpAllowed: z.boolean(),
    webauthnChallenge: webauthnChallenge.optional(),
    device: devicePayloadSchema.optional(),
  }),
  /** No user yet: any passkey of this cluster, with user verification. */
  CHALLENGE_SCOPE_PASSWORDLESS_LOGIN: z.object({
    webauthnChallenge,
    passwordless: z.literal(true),
    device: devicePayloadSchema.optional(),
  }),
  /** Proof of an existing device before adding or removing one. */
  CHALLENGE_SCOPE_MANAGE_DEVICES: z.object({
    totpAllowed: z.boolean(),
    webauthnChallenge: webauthnChallenge.optional(),
  }),
  /**
   * MFA for admin actions: a security key's answer, good for exactly these calls of one command (each
   * its method path and request digest), once each.
   */
  CHALLENGE_SCOPE_ADMIN_ACTION: z.object({
    webauthnChallenge,
    actions: z
      .array(z.object({ method: z.string().min(1), requestDigest: z.string().min(1) }))
      .min(1)
      .max(MAX_ADMIN_ACTIONS),
  }),
  /**
   * One call left of an answered ADMIN_ACTION challenge (auth/admin-mfa.ts): its id derived from the
   * challenge's id and the call, so only that call finds it; spent by it, and short-lived.
   */
  ADMIN_ACTION_GRANT: z.object({ action: z.string().min(1) }),
  /** Per-session MFA: a touch for one connection to one node as one login (auth/nodes). */
  CHALLENGE_SCOPE_USER_SESSION: z.object({
    webauthnChallenge,
    node: z.string().min(1),
    login: z.string().min(1),
  }),
  /**
   * A new device for a signed-in user: a key's creation options, or an OTP seed (sealed). `firstDevice`:
   * issued without an existing device's answer, as the user had none; good only while they still have none.
   */
  REGISTER_DEVICE: z.discriminatedUnion('deviceType', [
    z.object({
      deviceType: z.literal('webauthn'),
      webauthnChallenge,
      passwordless: z.boolean(),
      firstDevice: z.boolean().optional(),
    }),
    z.object({
      deviceType: z.literal('totp'),
      totpSecret: z.string().min(1),
      firstDevice: z.boolean().optional(),
    }),
  ]),
  /** The first device, at signup: bound to the signup token (its hash). */
  SIGNUP_REGISTER_DEVICE: z.object({
    deviceType: z.literal('webauthn'),
    webauthnChallenge,
    passwordless: z.boolean(),
    tokenHash: z.string().min(1),
  }),
  /** SSO with require_local_mfa: the user's keys, for one SSO request (its id) only (auth/sso/local-mfa.ts). */
  SSO_LOCAL_MFA: z.object({ requestId: z.string().min(1), webauthnChallenge }),
  /** SSO with require_local_mfa, a user with no key yet: their first, registered with that request's redemption. */
  SSO_REGISTER_DEVICE: z.object({ requestId: z.string().min(1), webauthnChallenge }),
  /** Device trust: a sealed credential-activation secret (its hash) and a quote nonce, to enroll a device. */
  DEVICE_ENROLL: enrollPayloadSchema,
  /** Device trust: a quote nonce for an enrolled device's credential (signup's first MFA device). */
  DEVICE_AUTH: authPayloadSchema,
  /** Device trust: a quote nonce for an enrolled device approving one web session (bound to its web token). */
  WEB_APPROVAL: webApprovalPayloadSchema,
} as const;

export type ChallengePurpose = keyof typeof payloadSchemas;
export type PayloadOf<P extends ChallengePurpose> = z.infer<(typeof payloadSchemas)[P]>;

export interface Challenge<P extends ChallengePurpose> {
  id: string;
  purpose: P;
  /** Whom it was issued to; null when no user is known yet (passwordless). */
  user: string | null;
  payload: PayloadOf<P>;
  expiresMs: number;
}

export function newChallengeBytes(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(randomPooled(32));
}

/**
 * Stores a new challenge for `purpose`; it lives `ttlMs`, or until `notAfterMs` when that is sooner. Its id
 * is random unless `id` is given (an admin-action grant's, derived from its challenge and call).
 */
export async function createChallenge<P extends ChallengePurpose>(
  ctx: ServiceContext,
  purpose: P,
  user: string | null,
  payload: PayloadOf<P>,
  lifetime: { ttlMs: number; notAfterMs?: number; id?: string },
): Promise<{ id: string; expiresMs: number }> {
  const row = challengeRow(ctx, purpose, user, payload, lifetime);
  await ctx.store.insertChallenge(row);
  return { id: row.id, expiresMs: row.expires_ms };
}

/** A new challenge's row, as createChallenge stores it, for a caller that stores it with other writes. */
export function challengeRow<P extends ChallengePurpose>(
  ctx: ServiceContext,
  purpose: P,
  user: string | null,
  payload: PayloadOf<P>,
  lifetime: { ttlMs: number; notAfterMs?: number; id?: string },
): ChallengeRow {
  const id = lifetime.id ?? Buffer.from(newChallengeBytes()).toString('base64url');
  const now = ctx.now();
  return {
    id,
    user,
    scope: purpose,
    payload_json: JSON.stringify(payloadSchemas[purpose].parse(payload)),
    created_ms: now,
    expires_ms: Math.min(now + lifetime.ttlMs, lifetime.notAfterMs ?? Number.POSITIVE_INFINITY),
    used: 0,
  };
}

export type Spent<P extends ChallengePurpose> =
  | { ok: true; challenge: Challenge<P> }
  /** Why it cannot be used; `user` is whom it was issued to, when it existed, for the audit log. */
  | {
      ok: false;
      reason: 'unknown or spent' | 'another purpose' | 'another user' | 'expired';
      user: string | null;
    };

/**
 * Spends challenge `id`, then checks it was made for one of `purposes` (and for `user`, when given) and
 * has not expired. Spent even when a check fails: a challenge is never tried twice.
 */
export async function spendChallenge<P extends ChallengePurpose>(
  ctx: ServiceContext,
  id: string,
  purposes: readonly P[],
  user?: string,
): Promise<Spent<P>> {
  return checkSpent(ctx, id ? await ctx.store.consumeChallenge(id) : undefined, purposes, user);
}

/** spendChallenge's checks on a row its caller spent (undefined: unknown or spent before). */
export function checkSpent<P extends ChallengePurpose>(
  ctx: ServiceContext,
  row: ChallengeRow | undefined,
  purposes: readonly P[],
  user?: string,
): Spent<P> {
  if (!row) return { ok: false, reason: 'unknown or spent', user: null };
  const purpose = purposes.find((p) => p === row.scope);
  if (!purpose) return { ok: false, reason: 'another purpose', user: row.user };
  if (user !== undefined && row.user !== user) return { ok: false, reason: 'another user', user: row.user };
  if (row.expires_ms <= ctx.now()) return { ok: false, reason: 'expired', user: row.user };
  let payload: PayloadOf<P>;
  try {
    payload = payloadSchemas[purpose].parse(JSON.parse(row.payload_json)) as PayloadOf<P>;
  } catch {
    // Written by this service for this purpose, so only a tampered row lands here.
    return { ok: false, reason: 'another purpose', user: row.user };
  }
  return { ok: true, challenge: { id: row.id, purpose, user: row.user, payload, expiresMs: row.expires_ms } };
}

export type Refusal = Exclude<Spent<ChallengePurpose>, { ok: true }>['reason'];

/**
 * The refusal of an unusable challenge, in words that say what to do next (`next`: "start again", or
 * "sign in again" for a login), never "wrong password".
 */
export function challengeRefusal(reason: Refusal, next = 'start again'): KeyportError {
  switch (reason) {
    // Not resolvable by relogin: the session is fine, only this ceremony must start again (a relogin
    // prompt for a slow touch would send the person the wrong way; clients retry the ceremony instead).
    case 'unknown or spent':
      return new KeyportError('EXPIRED', `This challenge was already used or is unknown; ${next}.`);
    case 'expired':
      return new KeyportError('EXPIRED', `The challenge expired; ${next}.`);
    case 'another purpose':
      return new KeyportError('ACCESS_DENIED', `This challenge was issued for another purpose; ${next}.`);
    case 'another user':
      return new KeyportError('ACCESS_DENIED', 'This challenge was issued to another user.');
  }
}

/** Narrows a challenge spent for several purposes to the one it was made for. */
export function isPurpose<P extends ChallengePurpose>(
  challenge: Challenge<ChallengePurpose>,
  purpose: P,
): challenge is Challenge<P> {
  return challenge.purpose === purpose;
}

/** spendChallenge for callers with nothing to audit: the challenge, or its refusal thrown. */
export async function spendOrThrow<P extends ChallengePurpose>(
  ctx: ServiceContext,
  id: string,
  purposes: readonly P[],
  user?: string,
): Promise<Challenge<P>> {
  const spent = await spendChallenge(ctx, id, purposes, user);
  if (!spent.ok) throw challengeRefusal(spent.reason);
  return spent.challenge;
}
