// MFA challenges and their answers, shared by AuthService (login, passwordless, signup) and UserService
// (managing devices). A challenge is stored server side with its scope and user, is spent by the first
// answer whatever its outcome, and expires: 5 minutes for MFA, 1 minute for passwordless.
import { randomBytes } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import { MFA_CHALLENGE_TTL_MS } from './context';
import type { ServiceContext } from './context';
import { loadCap } from './policy';
import type { ClusterPolicy } from './policy';
import type { ChallengeRow, MfaDeviceRow, Store, UserRow } from './storage/store';
import { totpStepOf } from './totp';
import {
  authenticationOptions,
  parseAssertion,
  relyingParty,
  verifyAssertion,
  webauthnEnabled,
} from './webauthn';
import { totpSeedContext } from './secrets';
import type { Sealer } from './secrets';

export const PASSWORDLESS_CHALLENGE_TTL_MS = 60 * 1000;
/** Scope names of challenges that are not MFAAuthenticateChallenges: registering a new device. */
export const REGISTER_SCOPE = 'REGISTER_DEVICE';
export const SIGNUP_REGISTER_SCOPE = 'SIGNUP_REGISTER_DEVICE';

export interface ChallengePayload {
  totpAllowed?: boolean;
  /** base64url WebAuthn challenge the response's clientDataJSON must carry. */
  webauthnChallenge?: string;
  passwordless?: boolean;
  /** Register challenges: what is being registered. */
  deviceType?: 'totp' | 'webauthn';
  totpSecret?: string;
  /** Signup register challenges: the signup token (hash) they belong to. */
  tokenHash?: string;
}

export const scopeName = (scope: ChallengeScope): string => ChallengeScope[scope];

export function newChallengeBytes(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(randomBytes(32));
}

/** A new WebAuthn user handle: 32 random bytes, base64url; stored once per user. */
export const newUserHandle = (): string => randomBytes(32).toString('base64url');

export function payloadOf(row: ChallengeRow): ChallengePayload {
  try {
    return JSON.parse(row.payload_json) as ChallengePayload;
  } catch {
    return {};
  }
}

/** An MFA challenge for `user`'s devices: OTP when allowed, WebAuthn options for their keys. */
export async function createMfaChallenge(
  ctx: ServiceContext,
  user: UserRow,
  scope: ChallengeScope,
  cap: ClusterPolicy,
): Promise<MFAAuthenticateChallenge> {
  const devices = await ctx.store.listDevices(user.name);
  const totpAllowed = cap.secondFactors.includes('otp') && devices.some((d) => d.type === 'totp');
  const keys = devices.filter((d) => d.type === 'webauthn');
  const id = Buffer.from(newChallengeBytes()).toString('base64url');
  let optionsJson = '';
  let webauthnChallenge: string | undefined;
  if (webauthnEnabled(cap) && keys.length > 0) {
    const options = await authenticationOptions({
      rp: relyingParty(cap, ctx.clusterName),
      challenge: newChallengeBytes(),
      devices: keys,
      userVerification: 'discouraged',
    });
    webauthnChallenge = options.challenge;
    optionsJson = JSON.stringify(options);
  }
  const now = ctx.now();
  const expiresMs = now + MFA_CHALLENGE_TTL_MS;
  const payload: ChallengePayload = { totpAllowed, webauthnChallenge, passwordless: false };
  await ctx.store.insertChallenge({
    id,
    user: user.name,
    scope: scopeName(scope),
    payload_json: JSON.stringify(payload),
    created_ms: now,
    expires_ms: expiresMs,
    used: 0,
  });
  return {
    challengeId: id,
    scope,
    totpAllowed,
    webauthnRequestOptionsJson: optionsJson,
    expiresMs,
    mfaRequired: cap.secondFactorRequired || devices.length > 0,
  };
}

/** A passwordless challenge: no user, discoverable credentials only, user verification required. */
export async function createPasswordlessChallenge(
  ctx: ServiceContext,
  cap: ClusterPolicy,
): Promise<MFAAuthenticateChallenge> {
  if (!cap.allowPasswordless) throw passwordlessDisabled();
  if (!webauthnEnabled(cap)) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      'Passwordless login needs security keys (WebAuthn), which this cluster does not enable.',
    );
  }
  const options = await authenticationOptions({
    rp: relyingParty(cap, ctx.clusterName),
    challenge: newChallengeBytes(),
    devices: [],
    userVerification: 'required',
  });
  const id = Buffer.from(newChallengeBytes()).toString('base64url');
  const now = ctx.now();
  const expiresMs = now + PASSWORDLESS_CHALLENGE_TTL_MS;
  const payload: ChallengePayload = { webauthnChallenge: options.challenge, passwordless: true };
  await ctx.store.insertChallenge({
    id,
    user: null,
    scope: scopeName(ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN),
    payload_json: JSON.stringify(payload),
    created_ms: now,
    expires_ms: expiresMs,
    used: 0,
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

export const passwordlessDisabled = () =>
  new KeyportError(
    'PASSWORDLESS_DISABLED',
    'Passwordless login is disabled on this cluster; sign in with your user name and password.',
  );

/**
 * Spends the challenge `id` and checks it was issued for `scope` (a ChallengeScope name or a register
 * scope) and, when `user` is given, for that user. Spent even when a check fails: never reusable.
 */
export async function spendChallenge(
  store: Store,
  id: string,
  scope: string,
  user: string | undefined,
  nowMs: number,
): Promise<{ row: ChallengeRow; payload: ChallengePayload }> {
  const row = id ? await store.consumeChallenge(id) : undefined;
  if (!row) {
    throw new KeyportError('ACCESS_DENIED', 'The challenge is unknown or was already used; start again.');
  }
  if (row.scope !== scope) {
    throw new KeyportError('ACCESS_DENIED', 'This challenge was issued for another purpose; start again.');
  }
  if (user !== undefined && row.user !== user) {
    throw new KeyportError('ACCESS_DENIED', 'This challenge was issued to another user.');
  }
  if (row.expires_ms <= nowMs) {
    throw new KeyportError('EXPIRED', 'The challenge expired; start again.');
  }
  return { row, payload: payloadOf(row) };
}

/**
 * Verifies a WebAuthn assertion answering `row`. For passwordless the user handle names the user; for
 * MFA the credential must be one of the challenge's user's keys. Returns the user and the device.
 */
export async function verifyWebauthnAnswer(
  ctx: ServiceContext,
  input: {
    row: ChallengeRow;
    payload: ChallengePayload;
    json: string;
    cap: ClusterPolicy;
    clientAddr: string;
  },
): Promise<{ user: string; device: MfaDeviceRow }> {
  const { row, payload, cap } = input;
  const rp = relyingParty(cap, ctx.clusterName);
  if (!payload.webauthnChallenge) {
    throw new KeyportError('MFA_FAILED', 'This challenge does not accept a security key.');
  }
  const assertion = parseAssertion(input.json);
  const device = await ctx.store.getDeviceByCredentialId(assertion.id);
  let user: string;
  if (payload.passwordless) {
    const handle = assertion.response.userHandle;
    if (!handle) {
      throw new KeyportError(
        'ACCESS_DENIED',
        'Passwordless login needs a discoverable credential (a passkey) on the security key.',
      );
    }
    const owner = await ctx.store.getUserByWebauthnHandle(handle);
    if (!owner || !device || device.user !== owner.name || device.type !== 'webauthn') {
      throw new KeyportError('ACCESS_DENIED', 'This security key is not registered with this cluster.');
    }
    user = owner.name;
  } else {
    if (!device || device.type !== 'webauthn' || row.user === null || device.user !== row.user) {
      throw new KeyportError('ACCESS_DENIED', 'This security key is not registered for this user.');
    }
    user = row.user;
  }
  const outcome = await verifyAssertion({
    rp,
    response: assertion,
    expectedChallenge: payload.webauthnChallenge,
    device,
    requireUserVerification: payload.passwordless === true,
  });
  if (!outcome.ok) {
    await ctx.audit.record({
      type: 'mfa.counter_regression',
      actor: user,
      clientAddr: input.clientAddr,
      success: false,
      message: `security key "${device.name}" sent sign counter ${outcome.counterRegression.received}, not above ${outcome.counterRegression.stored}: possibly a cloned key; refused`,
      fields: {
        user,
        device: device.name,
        credential_id: device.webauthn_credential_id,
        stored_counter: outcome.counterRegression.stored,
        received_counter: outcome.counterRegression.received,
      },
    });
    throw new KeyportError(
      'MFA_FAILED',
      `The security key "${device.name}" reported a sign counter that did not increase; it may have been cloned. Ask an admin.`,
    );
  }
  const stored = Number(device.webauthn_sign_count ?? 0);
  if (!(await ctx.store.acceptWebauthnCounter(device.id, stored, outcome.newCounter, ctx.now()))) {
    throw new KeyportError('MFA_FAILED', 'The security key was used concurrently; try again.');
  }
  return { user, device };
}

/** Verifies a TOTP code against the user's devices, spending the code's time step. */
export async function verifyTotpCode(
  store: Store,
  secrets: Sealer,
  user: string,
  code: string,
  nowMs: number,
): Promise<'ok' | 'replayed' | 'wrong'> {
  for (const device of await store.listDevices(user)) {
    if (device.type !== 'totp' || !device.totp_secret) continue;
    const step = totpStepOf(secrets.open(device.totp_secret, totpSeedContext(user)), code, nowMs);
    if (step === undefined) continue;
    return (await store.acceptTotpStep(device.id, step, nowMs)) ? 'ok' : 'replayed';
  }
  return 'wrong';
}

/**
 * Verifies an answer to a MANAGE_DEVICES challenge of `user` (UserService). A user without any device
 * answers with the challenge id alone, unless the cluster requires a second factor.
 */
export async function verifyManageDevicesAnswer(
  ctx: ServiceContext,
  user: string,
  response: MFAAuthenticateResponse | undefined,
  clientAddr: string,
): Promise<void> {
  if (!response?.challengeId) {
    throw new KeyportError(
      'MFA_REQUIRED',
      'Managing MFA devices needs an MFA check with an existing device: answer a MANAGE_DEVICES challenge.',
      { fieldPath: 'existing_mfa_response.challenge_id' },
    );
  }
  const { row, payload } = await spendChallenge(
    ctx.store,
    response.challengeId,
    scopeName(ChallengeScope.CHALLENGE_SCOPE_MANAGE_DEVICES),
    user,
    ctx.now(),
  );
  const cap = await loadCap(ctx.store);
  const answer = response.response;
  if (answer?.$case === 'webauthnJson') {
    await verifyWebauthnAnswer(ctx, { row, payload, json: answer.value, cap, clientAddr });
    return;
  }
  if (answer?.$case === 'totp') {
    if (!payload.totpAllowed) throw new KeyportError('MFA_FAILED', 'This challenge does not accept OTP.');
    const outcome = await verifyTotpCode(ctx.store, ctx.secrets, user, answer.value.code, ctx.now());
    if (outcome !== 'ok') {
      throw new KeyportError(
        'MFA_FAILED',
        outcome === 'replayed' ? 'This OTP code was already used.' : 'The OTP code is wrong.',
      );
    }
    return;
  }
  const devices = await ctx.store.listDevices(user);
  if (devices.length > 0) {
    throw new KeyportError('MFA_REQUIRED', 'Answer the MFA challenge with one of your devices.');
  }
}

/**
 * A new OTP device's row, once the person proved they hold its seed: the code they typed matches the
 * sealed seed offered to them. The seed is stored sealed as it is; its first accepted step is spent.
 */
export function totpDeviceRow(
  secrets: Sealer,
  device: { id: string; user: string; name: string; sealedSeed: string; code: string; nowMs: number },
) {
  const step = totpStepOf(
    secrets.open(device.sealedSeed, totpSeedContext(device.user)),
    device.code,
    device.nowMs,
  );
  if (step === undefined) {
    throw new KeyportError(
      'MFA_FAILED',
      'The OTP code is wrong; check the time on your device and try again.',
    );
  }
  return {
    id: device.id,
    user: device.user,
    name: device.name,
    type: 'totp' as const,
    added_ms: device.nowMs,
    last_used_ms: device.nowMs,
    totp_secret: device.sealedSeed,
    totp_last_step: step,
    passkey: 0,
  };
}
