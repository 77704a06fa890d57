// MFA challenges and their answers, shared by AuthService (login, passwordless, signup) and UserService
// (managing devices). A challenge is stored server side with its scope and user, is spent by the first
// answer whatever its outcome, and expires: 5 minutes for MFA, 1 minute for passwordless (passwordless.ts).
import { randomBytes } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { ChallengeScope } from '../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../proto/gen/keyport/v1/mfa';
import { createChallenge, newChallengeBytes, spendOrThrow } from './challenges';
import { MFA_CHALLENGE_TTL_MS } from './context';
import type { DevicePayload } from './device-trust/payloads';
import type { ServiceContext } from './context';
import { loadCap } from './policy';
import type { ClusterPolicy } from './policy';
import type { MfaDeviceRow, Store, UserRow } from './storage/store';
import type { CounterAdvance } from './storage/login';
import type { PasskeyRead } from './passwordless';
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

/** A new WebAuthn user handle: 32 random bytes, base64url; stored once per user. */
export const newUserHandle = (): string => randomBytes(32).toString('base64url');

/** An MFA challenge for `user`'s devices: OTP when allowed, WebAuthn options for their keys. */
export async function createMfaChallenge(
  ctx: ServiceContext,
  user: UserRow,
  scope: ChallengeScope,
  cap: ClusterPolicy,
  /** Login only: the device part of this login (device-trust/login.ts), kept with the challenge. */
  device?: DevicePayload,
): Promise<MFAAuthenticateChallenge> {
  const devices = await ctx.store.listDevices(user.name);
  const totpAllowed = cap.secondFactors.includes('otp') && devices.some((d) => d.type === 'totp');
  const keys = devices.filter((d) => d.type === 'webauthn');
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
  const payload = { totpAllowed, ...(webauthnChallenge ? { webauthnChallenge } : {}) };
  const { id, expiresMs } =
    scope === ChallengeScope.CHALLENGE_SCOPE_LOGIN
      ? await createChallenge(
          ctx,
          'CHALLENGE_SCOPE_LOGIN',
          user.name,
          { ...payload, ...(device ? { device } : {}) },
          { ttlMs: MFA_CHALLENGE_TTL_MS },
        )
      : await createChallenge(ctx, 'CHALLENGE_SCOPE_MANAGE_DEVICES', user.name, payload, {
          ttlMs: MFA_CHALLENGE_TTL_MS,
        });
  return {
    challengeId: id,
    scope,
    totpAllowed,
    webauthnRequestOptionsJson: optionsJson,
    expiresMs,
    // Managing devices proves an existing one: a user with none (an SSO user before their first key) has
    // nothing to prove, whatever the cluster requires at login (their first device's rule is
    // device-trust/first-device.ts).
    mfaRequired:
      devices.length > 0 || (scope === ChallengeScope.CHALLENGE_SCOPE_LOGIN && cap.secondFactorRequired),
  };
}

/** Another assertion with the same sign counter won (a double submit, or a cloned key). */
export const concurrentUse = () =>
  new KeyportError('MFA_FAILED', 'The security key was used concurrently; try again.');

export const passwordlessDisabled = () =>
  new KeyportError(
    'PASSWORDLESS_DISABLED',
    'Passwordless login is disabled on this cluster; sign in with your user name and password.',
  );

/**
 * Verifies a WebAuthn assertion answering `row`. For passwordless the user handle names the user; for
 * MFA the credential must be one of the challenge's user's keys. Returns the user and the device.
 */
export async function verifyWebauthnAnswer(
  ctx: ServiceContext,
  input: {
    /** The challenge's user; null for passwordless, where the user handle names the user. */
    challengeUser: string | null;
    /** The WebAuthn challenge it carries, if it accepts a security key at all. */
    webauthnChallenge: string | undefined;
    passwordless: boolean;
    json: string;
    cap: ClusterPolicy;
    clientAddr: string;
    /** Passwordless: the answer as readPasskey parsed and read it (else it is parsed and read here). */
    passkey?: PasskeyRead;
    /** The exact origins accepted (the web UI's); the gRPC API's rule otherwise (webauthn.ts). */
    origins?: readonly string[];
    /**
     * The new sign counter is returned, not written: the caller writes it with the login's audit once the
     * login is made (storage/login.ts acceptCounterWithAudit), and refuses the login if it did not move.
     */
    deferCounter?: boolean;
  },
): Promise<{ user: string; device: MfaDeviceRow; owner?: UserRow; counter?: CounterAdvance }> {
  const { cap, passwordless } = input;
  const rp = relyingParty(cap, ctx.clusterName, input.origins);
  if (!input.webauthnChallenge) {
    throw new KeyportError('MFA_FAILED', 'This challenge does not accept a security key.');
  }
  const assertion = input.passkey?.assertion ?? parseAssertion(input.json);
  const device = input.passkey
    ? input.passkey.found?.device
    : await ctx.store.getDeviceByCredentialId(assertion.id);
  let user: string;
  let owner: UserRow | undefined;
  if (passwordless) {
    const handle = assertion.response.userHandle;
    if (!handle) {
      throw new KeyportError(
        'ACCESS_DENIED',
        'Passwordless login needs a discoverable credential (a passkey) on the security key.',
      );
    }
    // The device's owner must be the user the handle names.
    owner = input.passkey ? input.passkey.found?.owner : await ctx.store.getUserByWebauthnHandle(handle);
    if (
      !owner ||
      !device ||
      owner.webauthn_user_handle !== handle ||
      device.user !== owner.name ||
      device.type !== 'webauthn'
    ) {
      throw new KeyportError('ACCESS_DENIED', 'This security key is not registered with this cluster.');
    }
    user = owner.name;
  } else {
    const challengeUser = input.challengeUser;
    if (!device || device.type !== 'webauthn' || challengeUser === null || device.user !== challengeUser) {
      throw new KeyportError('ACCESS_DENIED', 'This security key is not registered for this user.');
    }
    user = challengeUser;
  }
  const outcome = await verifyAssertion({
    rp,
    response: assertion,
    expectedChallenge: input.webauthnChallenge,
    device,
    requireUserVerification: passwordless,
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
  const counter = { deviceId: device.id, previous: stored, counter: outcome.newCounter };
  if (input.deferCounter) return { user, device, ...(owner ? { owner } : {}), counter };
  if (!(await ctx.store.acceptWebauthnCounter(device.id, stored, outcome.newCounter, ctx.now()))) {
    throw concurrentUse();
  }
  // Passwordless: the owner's row as read above, so the login need not read it again.
  return { user, device, ...(owner ? { owner } : {}) };
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
  const { payload } = await spendOrThrow(ctx, response.challengeId, ['CHALLENGE_SCOPE_MANAGE_DEVICES'], user);
  const cap = await loadCap(ctx.store);
  const answer = response.response;
  if (answer?.$case === 'webauthnJson') {
    await verifyWebauthnAnswer(ctx, {
      challengeUser: user,
      webauthnChallenge: payload.webauthnChallenge,
      passwordless: false,
      json: answer.value,
      cap,
      clientAddr,
    });
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
