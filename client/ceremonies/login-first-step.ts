// Step 1 of a login and its second factor (client/ceremonies/login.ts runs it, then Login): with a password
// (then the second factor the cluster asks for), or passwordless (a discoverable credential, opened while
// step 1 is in flight). Each says the private-key policy of step 1's answer as soon as it is in, so the
// software session key is written alongside the second factor (or never, when it goes on the card).
import { KeyportError } from '../../proto/errors';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import type { DeviceChallenge, DeviceLoginHello } from '../../proto/gen/keyport/v1/device';
import type { ClusterApi } from '../api';
import type { PerfSteps } from '../perf';
import type { SecurityKeyPrompts } from '../webauthn';
import { stepOneKeyPolicy } from './hardware-key';
import type { StepOneKeyPolicy } from './hardware-key';
import { answerChallenge, closeKeysAhead, openKeysAhead } from './mfa';
import type { MfaPreference } from './mfa';

export interface StepOnePrompts {
  password(user: string): Promise<string>;
  otpCode(): Promise<string>;
  /** Security-key prompts (tap, PIN); without them only OTP can answer. */
  securityKey?: SecurityKeyPrompts;
}

/**
 * Step 1's outcome: the answer to the MFA challenge, the device challenge that came with it, and the
 * private-key policy the session key must meet, when the cluster said.
 */
export interface FirstStep {
  mfaResponse: MFAAuthenticateResponse;
  deviceChallenge?: DeviceChallenge;
  keyPolicy?: StepOneKeyPolicy;
}

const noKeyPrompts: SecurityKeyPrompts = {
  tap: () => {},
  pin: () => Promise.reject(new KeyportError('CANCELLED', 'This client cannot ask for a security key PIN.')),
  newPin: () => Promise.reject(new KeyportError('CANCELLED', 'This client cannot set a security key PIN.')),
};

/** What step 1 tells the login of the session key, and when. */
export interface SessionKeyTurns {
  /** Settles once the keystore is known to take a key (it rejects for a missing or locked keychain). */
  ready(): Promise<void>;
  /**
   * Step 1's answer is in: the software key is made and written now (alongside the second factor) unless
   * this policy, or one the login knows already, puts the session key on the PIV card.
   */
  policyKnown(policy: StepOneKeyPolicy | undefined): void;
}

/** Step 1 (and the second factor). */
export type FirstStepFn = (
  api: ClusterApi,
  origin: string,
  device: DeviceLoginHello | undefined,
  perf: PerfSteps,
  key: SessionKeyTurns,
) => Promise<FirstStep>;

/** Step 1 with a password, then the second factor the cluster asks for. */
export function passwordStep(options: {
  user: string;
  prompts: StepOnePrompts;
  mfa?: MfaPreference;
  signal?: AbortSignal;
}): FirstStepFn {
  // Asked once: a ceremony restarted on another replica sends it again (a code or a touch is asked anew).
  let given: Promise<string> | undefined;
  return async (api, origin, device, perf, key) => {
    // The keystore is ready (login awaits it before trust).
    given ??= options.prompts.password(options.user);
    given.catch(() => (given = undefined));
    const password = await given;
    perf.step('prompt password');
    const challenge = await api.auth.createAuthenticateChallenge({
      user: options.user,
      password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      device,
    });
    perf.step('call 1 (CreateAuthenticateChallenge)');
    const keyPolicy = stepOneKeyPolicy(challenge);
    key.policyKnown(keyPolicy);
    const mfaResponse = await answerChallenge(challenge, {
      origin,
      preference: options.mfa,
      signal: options.signal,
      prompts: { otpCode: options.prompts.otpCode, securityKey: options.prompts.securityKey ?? noKeyPrompts },
    });
    perf.step('second factor');
    return { mfaResponse, deviceChallenge: challenge.deviceChallenge, keyPolicy };
  };
}

/**
 * Passwordless step 1: only a key can answer, with a discoverable credential; `user`, when given, limits the
 * key's passkeys to that user's (the server is still asked without a name).
 */
export function passwordlessStep(options: {
  user?: string;
  prompts: StepOnePrompts;
  signal?: AbortSignal;
}): FirstStepFn {
  return async (api, origin, device, perf, key) => {
    // Only a key can answer: it is opened (and asked its getInfo and PIN retries) while
    // step 1 is in flight. The ceremony closes it; so does this, whatever happens (closing twice is
    // harmless).
    const keys = openKeysAhead(options.signal);
    try {
      const call = api.auth.createAuthenticateChallenge({
        user: '',
        password: '',
        scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
        device,
      });
      call.catch(() => {});
      // The keystore is checked while step 1 (which carries nothing the person gave) is in flight, before
      // the PIN is asked: a missing or locked keychain fails the login here.
      await key.ready();
      const challenge = await call;
      perf.step('call 1 (CreateAuthenticateChallenge), keystore check alongside');
      const keyPolicy = stepOneKeyPolicy(challenge);
      key.policyKnown(keyPolicy);
      const mfaResponse = await answerChallenge(challenge, {
        origin,
        preference: 'key',
        signal: options.signal,
        user: options.user || undefined,
        keys,
        prompts: {
          otpCode: options.prompts.otpCode,
          securityKey: options.prompts.securityKey ?? noKeyPrompts,
        },
      });
      perf.step('security key assertion');
      return { mfaResponse, deviceChallenge: challenge.deviceChallenge, keyPolicy };
    } finally {
      await closeKeysAhead(keys);
    }
  };
}
