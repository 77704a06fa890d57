// Keyport's own security-key check after the IdP's login, for a connector with `require_local_mfa: true`
// (Keyport's field; Teleport's users ask for it, their issues #41614 and #69567). The IdP vouches for the
// person; their key registered with Keyport must agree, so an attacker who controls the IdP but lacks the key
// gets no session. One more round trip, between the browser's return and the redemption:
//   CreateSSOChallenge{request, code, key signature}: the code's request (read, not spent) and its key's
//     proof, then a WebAuthn challenge for the user's keys, bound to that request (its id in the payload),
//     single use, living as long as the code at most;
//   RedeemSSOLogin{…, mfa_response}: the answer, checked before anything is issued (verifyLocalMfa).
// A user with no key yet gets the creation options of their first instead, registered with the redemption
// (new_device): where device trust is required, only when that redemption's device is trusted (the first
// MFA device's rule, device-trust/first-device.ts), so the IdP alone never registers a key.
import { randomUUID } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type { CreateSSOChallengeRequest, SSOMFAChallenge } from '../../proto/gen/keyport/v1/auth';
import { ChallengeScope, MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateResponse, MFARegisterResponse } from '../../proto/gen/keyport/v1/mfa';
import { ssoMfaSignedBytes } from '../../proto/sso';
import { challengeRefusal, createChallenge, newChallengeBytes, spendChallenge } from '../challenges';
import { MFA_CHALLENGE_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import { firstDeviceDecision } from '../device-trust/first-device';
import type { SessionDevice } from '../device-trust/policy';
import { limitAddress } from '../lockout';
import { newUserHandle, verifyWebauthnAnswer } from '../mfa';
import { loadCap } from '../policy';
import type { ClusterPolicy } from '../policy';
import type { CallContext } from '../rpc';
import { parseTlsPublicKey } from '../session-keys';
import type { MfaDeviceRow, UserRow } from '../storage/store';
import type { SsoRequestRow } from '../storage/sso-requests';
import {
  authenticationOptions,
  registrationOptions,
  relyingParty,
  verifyRegistration,
  webauthnDeviceRow,
  webauthnEnabled,
} from '../webauthn';
import { auditSso, checkRequestCode, parseStoredKeys, signedByRequestKey, tokenHash } from './requests';
import type { SsoIdentity } from './requests';

/** The first key's name, when the redemption names none. */
const FIRST_KEY_NAME = 'security-key';
const DEVICE_NAME = /^[\p{L}\p{N}._ -]{1,64}$/u;

export async function createSsoChallenge(
  ctx: ServiceContext,
  request: CreateSSOChallengeRequest,
  call: CallContext,
): Promise<SSOMFAChallenge> {
  await limitAddress(ctx, call.clientAddr);
  checkRequestCode(request);
  // 1. The code's authorized request, read (not spent), and the proof that this client holds its key.
  const found = await ctx.store.sso.findAuthorized(request.requestId, tokenHash(request.ssoCode), ctx.now());
  const refuse = async (reason: string, error: KeyportError): Promise<never> => {
    await auditSso(ctx, {
      actor: found?.user ?? 'unknown',
      clientAddr: call.clientAddr,
      success: false,
      message: reason,
      step: 'mfa',
      connector: found?.connector ?? 'unknown',
      ...(found?.identity_json ? { subject: (JSON.parse(found.identity_json) as SsoIdentity).subject } : {}),
    });
    throw error;
  };
  if (found === undefined) {
    return refuse(
      'unknown, spent or expired code',
      new KeyportError(
        'ACCESS_DENIED',
        'This sign-in code is unknown, expired or was already used; sign in again.',
      ),
    );
  }
  const tls = parseTlsPublicKey(parseStoredKeys(found.keys_json).tls);
  const signed = ssoMfaSignedBytes(request.requestId, request.ssoCode);
  if (!signedByRequestKey(tls, signed, request.keySignature)) {
    return refuse(
      'security-key check asked without the request key',
      new KeyportError('ACCESS_DENIED', 'Only the client that started the sign-in can continue it.'),
    );
  }
  const identity = JSON.parse(found.identity_json ?? '{}') as SsoIdentity;
  if (!identity.requireLocalMfa) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `The connector "${found.connector}" asks for no security-key check; redeem the code.`,
    );
  }
  const user = await ctx.store.getUser(found.user ?? '');
  const cap = await loadCap(ctx.store);
  if (!user)
    return refuse(
      'user deleted during login',
      new KeyportError('ACCESS_DENIED', 'This user no longer exists; sign in again.'),
    );
  if (!webauthnEnabled(cap)) {
    return refuse(
      'security keys are not enabled',
      new KeyportError(
        'PRECONDITION_FAILED',
        `The connector "${found.connector}" requires a security key, and this cluster does not enable WebAuthn; ask an admin.`,
      ),
    );
  }
  // 2. The challenge lives as long as the code at most, and answers for this request only.
  const lifetime = { ttlMs: MFA_CHALLENGE_TTL_MS, notAfterMs: found.code_expires_ms ?? ctx.now() };
  const challengeFor = (kind: 'SSO_LOCAL_MFA' | 'SSO_REGISTER_DEVICE', webauthnChallenge: string) =>
    createChallenge(ctx, kind, user.name, { requestId: found.id, webauthnChallenge }, lifetime);
  const devices = await ctx.store.listDevices(user.name);
  const keys = devices.filter((device) => device.type === 'webauthn');
  const rp = relyingParty(cap, ctx.clusterName);
  if (keys.length > 0) {
    const options = await authenticationOptions({
      rp,
      challenge: newChallengeBytes(),
      devices: keys,
      userVerification: 'discouraged',
    });
    const { id, expiresMs } = await challengeFor('SSO_LOCAL_MFA', options.challenge);
    return {
      authenticate: {
        challengeId: id,
        scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
        totpAllowed: false,
        webauthnRequestOptionsJson: JSON.stringify(options),
        expiresMs,
        mfaRequired: true,
      },
      register: undefined,
    };
  }
  // 3. No key yet: their first, which where device trust is required needs this request's device trusted.
  //    Said now, before a touch, when the request offered no device at all; checked for good at redemption.
  if (!found.device_json) {
    const decision = await firstDeviceDecision(ctx, cap, user, undefined);
    if (!decision.allowed) return refuse(`first security key: ${decision.error.message}`, decision.error);
  }
  const options = await registrationOptions({
    rp,
    userName: user.name,
    userHandle: await ctx.store.webauthnUserHandle(user.name, newUserHandle),
    challenge: newChallengeBytes(),
    existing: devices,
    passwordless: false,
  });
  const { id, expiresMs } = await challengeFor('SSO_REGISTER_DEVICE', options.challenge);
  return {
    authenticate: undefined,
    register: {
      challengeId: id,
      type: MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN,
      totp: undefined,
      webauthnCreationOptionsJson: JSON.stringify(options),
      expiresMs,
    },
  };
}

/** What the security-key check of a redemption established. */
export type LocalMfaOutcome =
  | { kind: 'asserted' }
  /** A first key, verified and waiting for the device check before it is stored (registerFirstKey). */
  | { kind: 'first-key'; row: ReturnType<typeof webauthnDeviceRow> };

/**
 * The redemption's security-key check: the answer to this request's challenge by one of the user's keys, or
 * their first key's registration. Throws a typed refusal; stores nothing (a key's counter aside).
 */
export async function verifyLocalMfa(
  ctx: ServiceContext,
  input: {
    row: SsoRequestRow;
    user: UserRow;
    cap: ClusterPolicy;
    mfaResponse: MFAAuthenticateResponse | undefined;
    newDevice: MFARegisterResponse | undefined;
    clientAddr: string;
  },
): Promise<LocalMfaOutcome> {
  const { row, user, cap } = input;
  const answered = input.mfaResponse?.challengeId ? input.mfaResponse : undefined;
  const registered = !answered && input.newDevice?.challengeId ? input.newDevice : undefined;
  if (!answered && !registered) {
    throw new KeyportError(
      'MFA_REQUIRED',
      `The connector "${row.connector}" requires your security key after the identity provider's sign-in; sign in again with your key plugged in.`,
    );
  }
  const challengeId = (answered ?? registered)!.challengeId;
  const purpose = answered ? 'SSO_LOCAL_MFA' : 'SSO_REGISTER_DEVICE';
  const spent = await spendChallenge(ctx, challengeId, [purpose], user.name);
  if (!spent.ok) throw challengeRefusal(spent.reason, 'sign in again');
  if (spent.challenge.payload.requestId !== row.id) {
    throw new KeyportError('ACCESS_DENIED', 'This security-key challenge was issued for another sign-in.');
  }
  if (answered) {
    const answer = answered.response;
    if (answer?.$case !== 'webauthnJson') {
      throw new KeyportError('MFA_FAILED', 'This sign-in needs your security key, not an OTP code.');
    }
    await verifyWebauthnAnswer(ctx, {
      challengeUser: user.name,
      webauthnChallenge: spent.challenge.payload.webauthnChallenge,
      passwordless: false,
      json: answer.value,
      cap,
      clientAddr: input.clientAddr,
    });
    return { kind: 'asserted' };
  }
  const name = (registered!.deviceName || FIRST_KEY_NAME).trim();
  if (!DEVICE_NAME.test(name)) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'A device name is 1 to 64 letters, digits, spaces, dots, dashes or underscores.',
      { fieldPath: 'new_device.device_name' },
    );
  }
  if (registered!.response?.$case !== 'webauthnJson') {
    throw new KeyportError('INVALID_ARGUMENT', 'The first key is registered with a security key response.', {
      fieldPath: 'new_device.webauthn_json',
    });
  }
  const credential = await verifyRegistration({
    rp: relyingParty(cap, ctx.clusterName),
    responseJson: registered!.response.value,
    expectedChallenge: spent.challenge.payload.webauthnChallenge,
    passwordless: false,
  });
  if (await ctx.store.getDeviceByCredentialId(credential.credentialId)) {
    throw new KeyportError('ALREADY_EXISTS', 'This security key is already registered.');
  }
  return {
    kind: 'first-key',
    row: webauthnDeviceRow(credential, { id: randomUUID(), user: user.name, name, nowMs: ctx.now() }),
  };
}

/**
 * Stores a first key registered in the redemption, once the device part is known: where device trust is
 * required, only with this redemption's device trusted; and only while the user still has no key.
 */
export async function registerFirstKey(
  ctx: ServiceContext,
  input: { user: UserRow; cap: ClusterPolicy; row: MfaDeviceRowInsert; device: SessionDevice | undefined },
): Promise<void> {
  const decision = await firstDeviceDecision(ctx, input.cap, input.user, input.device);
  if (!decision.allowed) throw decision.error;
  const devices = await ctx.store.listDevices(input.user.name);
  if (devices.some((device: MfaDeviceRow) => device.type === 'webauthn')) {
    throw new KeyportError(
      'MFA_REQUIRED',
      'A security key was registered for you since this sign-in started; sign in again and use it.',
    );
  }
  if (!(await ctx.store.insertDevice(input.row))) {
    throw new KeyportError('ALREADY_EXISTS', `You already have an MFA device named "${input.row.name}".`);
  }
}

type MfaDeviceRowInsert = ReturnType<typeof webauthnDeviceRow>;
