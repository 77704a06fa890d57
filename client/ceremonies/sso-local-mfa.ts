// The client's side of require_local_mfa (auth/sso/local-mfa.ts): once the browser is back with the code,
// CreateSSOChallenge (signed by the session key: the code alone is not enough) → the user's security keys
// are asked (every plugged-in key at once; first touch wins), or, when the person has no key with Keyport
// yet, a new key is registered (their first; where device trust is required, this login's device must be
// trusted, which the redemption checks). The answer goes with RedeemSSOLogin.
import type { MFAAuthenticateResponse, MFARegisterResponse } from '../../proto/gen/keyport/v1/mfa';
import { ssoMfaSignedBytes } from '../../proto/sso';
import type { ClusterApi } from '../api';
import type { SessionSigner } from '../keystore/signer';
import type { SecurityKeyPrompts } from '../webauthn';
import { answerChallenge, registerKey } from './mfa';

export interface LocalMfaAnswer {
  mfaResponse?: MFAAuthenticateResponse;
  newDevice?: MFARegisterResponse;
}

/** The name a first key registered at an SSO login gets (`keyport mfa ls` shows it; `mfa add` adds more). */
export const FIRST_SSO_KEY_NAME = 'security-key';

export async function answerLocalMfa(
  api: ClusterApi,
  input: {
    requestId: string;
    code: string;
    signer: SessionSigner;
    /** `https://<cluster public host>`, the WebAuthn origin. */
    origin: string;
    connector: string;
    prompts: { securityKey: SecurityKeyPrompts; notice?(message: string): void };
    signal?: AbortSignal;
  },
): Promise<LocalMfaAnswer> {
  const keySignature = await input.signer.sign(ssoMfaSignedBytes(input.requestId, input.code));
  const challenge = await api.auth.createSsoChallenge({
    requestId: input.requestId,
    ssoCode: input.code,
    keySignature,
  });
  const mfaPrompts = {
    securityKey: input.prompts.securityKey,
    otpCode: () => Promise.reject(new Error('This sign-in needs a security key, not an OTP code.')),
  };
  if (challenge.authenticate) {
    input.prompts.notice?.(
      `${input.connector} requires your security key after the identity provider's sign-in.`,
    );
    return {
      mfaResponse: await answerChallenge(challenge.authenticate, {
        origin: input.origin,
        prompts: mfaPrompts,
        preference: 'key',
        signal: input.signal,
      }),
    };
  }
  const register = challenge.register!;
  input.prompts.notice?.(
    `${input.connector} requires a security key after the identity provider's sign-in, and you have none registered yet: tap a new one to register it as "${FIRST_SSO_KEY_NAME}".`,
  );
  const registration = await registerKey(register.webauthnCreationOptionsJson, {
    origin: input.origin,
    prompts: mfaPrompts,
    signal: input.signal,
  });
  return {
    newDevice: {
      challengeId: register.challengeId,
      deviceName: FIRST_SSO_KEY_NAME,
      response: { $case: 'webauthnJson', value: registration },
    },
  };
}
