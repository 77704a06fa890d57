// Answering an MFA challenge as the person chooses or can: a security key (every plugged-in key is asked
// at once) or an OTP code. Used by login, device management and, later, per-session MFA.
import { KeyportError } from '../../proto/errors';
import { option } from '../hardware/fido/ctap2';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { perfSteps } from '../perf';
import type { PerfSteps } from '../perf';
import { authenticate, closeKeys, openKeys, register } from '../webauthn';
import type { SecurityKey, SecurityKeyPrompts } from '../webauthn';

export type MfaPreference = 'auto' | 'otp' | 'key';

export interface MfaPrompts {
  otpCode(): Promise<string>;
  securityKey: SecurityKeyPrompts;
}

export interface MfaContext {
  /** `https://<cluster public host[:port]>`, the origin in the client data. */
  origin: string;
  prompts: MfaPrompts;
  preference?: MfaPreference;
  signal?: AbortSignal;
  /** Passwordless for a typed user name: only that user's passkeys on the key count. */
  user?: string;
  /** The keys, opened ahead (openKeysAhead); closed after the ceremony all the same. */
  keys?: Promise<SecurityKey[]>;
}

/**
 * Opens every key and reads its getInfo (kept by its client) while something else is in flight, e.g.
 * a passwordless login's first call (user verification will be asked): nothing is shown to or asked of
 * the person. With a single key with a PIN, its retries are read too (Fido2Client.preparePin), for the
 * PIN prompt; the key-agreement is asked only right before the PIN goes. A failure is left for the ceremony to
 * meet again; the caller hands the promise on (MfaContext.keys) or closes the keys (closeKeysAhead).
 */
export function openKeysAhead(signal?: AbortSignal): Promise<SecurityKey[]> {
  const keys = openKeys().then(async (opened) => {
    const infos = await Promise.all(opened.map((k) => k.client.getInfo({ signal }).catch(() => undefined)));
    const [only] = opened;
    const info = infos[0];
    // With several keys a touch picks one first (and that key's PIN is asked then).
    if (only && opened.length === 1 && info && option(info, 'clientPin') === true) {
      await only.client.preparePin({ signal }).catch(() => undefined);
    }
    return opened;
  });
  keys.catch(() => {});
  return keys;
}

/** Closes keys opened ahead that no ceremony took. */
export async function closeKeysAhead(keys: Promise<SecurityKey[]>): Promise<void> {
  await keys.then(closeKeys, () => {});
}

/** Runs a WebAuthn ceremony over every available key, closing them afterwards. */
async function withKeys<T>(
  work: (keys: SecurityKey[]) => Promise<T>,
  perf?: PerfSteps,
  opened?: Promise<SecurityKey[]>,
): Promise<T> {
  const keys = await (opened ?? openKeys());
  perf?.step('open keys (connect, CTAPHID INIT)');
  try {
    if (keys.length === 0) {
      throw new KeyportError('NOT_FOUND', 'No security key found. Plug in your security key and try again.');
    }
    return await work(keys);
  } finally {
    await closeKeys(keys);
    perf?.step('close keys');
  }
}

export async function answerChallenge(
  challenge: MFAAuthenticateChallenge,
  context: MfaContext,
): Promise<MFAAuthenticateResponse> {
  const response: MFAAuthenticateResponse = { challengeId: challenge.challengeId, response: undefined };
  const keyAllowed = challenge.webauthnRequestOptionsJson !== '';
  const preference = context.preference ?? 'auto';
  if (!challenge.mfaRequired && preference === 'auto') return response;
  if (
    keyAllowed &&
    preference !== 'otp' &&
    (preference === 'key' || !challenge.totpAllowed || (await hasKey()))
  ) {
    const perf = perfSteps('client.securityKey');
    const assertion = await withKeys(
      (keys) =>
        authenticate(challenge.webauthnRequestOptionsJson, {
          origin: context.origin,
          keys,
          prompts: context.prompts.securityKey,
          signal: context.signal,
          user: context.user,
          perf,
        }),
      perf,
      context.keys,
    ).finally(() => perf.end());
    response.response = { $case: 'webauthnJson', value: JSON.stringify(assertion) };
    return response;
  }
  if (challenge.totpAllowed && preference !== 'key') {
    response.response = { $case: 'totp', value: { code: (await context.prompts.otpCode()).trim() } };
    return response;
  }
  throw new KeyportError(
    'MFA_REQUIRED',
    preference === 'otp'
      ? 'OTP is not allowed for this user on this cluster; use a security key.'
      : 'No second factor of yours is allowed here: register a security key or an OTP device.',
  );
}

/** Whether any security key is available right now (lab key or USB), without keeping it open. */
async function hasKey(): Promise<boolean> {
  const keys = await openKeys();
  await closeKeys(keys);
  return keys.length > 0;
}

/** Registers a new security key from creation options; returns RegistrationResponseJSON as the API carries it. */
export function registerKey(
  creationOptionsJson: string,
  context: Omit<MfaContext, 'preference'>,
): Promise<string> {
  return withKeys(async (keys) =>
    JSON.stringify(
      await register(creationOptionsJson, {
        origin: context.origin,
        keys,
        prompts: context.prompts.securityKey,
        signal: context.signal,
        user: context.user,
      }),
    ),
  );
}
