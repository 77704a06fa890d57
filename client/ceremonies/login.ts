// Login in two round trips:
//   1. CreateAuthenticateChallenge{user, password, scope LOGIN} (or {PASSWORDLESS_LOGIN}) → which factors
//      may answer, with WebAuthn request options
//   2. Login{answer (security key or OTP), public keys, ttl} → SSH + X.509 certificates
// The session key is created first and put in the keystore before the password leaves, so a locked or
// missing keychain fails the login without spending a password attempt or an OTP code.
import { randomBytes } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { formatClusterAddress } from '../cluster-trust';
import type { ClusterAddress } from '../cluster-trust';
import { generateSessionKey, openKeyStore } from '../keystore';
import type { KeyStoreKind } from '../keystore';
import type { ClusterApi } from '../api';
import type { Profile, ProfileStore } from '../profiles';
import { connectTrusted, ensureTrustedCluster, webauthnOrigin } from '../session';
import type { TrustPrompt } from '../session';
import type { SecurityKeyPrompts } from '../webauthn';
import { answerChallenge } from './mfa';
import type { MfaPreference } from './mfa';
import { now } from '../../proto/clock';
import type { DeviceChallenge, DeviceLoginHello } from '../../proto/gen/keyport/v1/device';
import type { DeviceTrustOptions } from '../device-trust/device';
import { answerDeviceChallenge, startDeviceLogin } from '../device-trust/login';
import type { DeviceLoginStart } from '../device-trust/login';

export interface LoginPrompts extends TrustPrompt {
  password(user: string): Promise<string>;
  otpCode(): Promise<string>;
  /** Security-key prompts (tap, PIN); without them only OTP can answer. */
  securityKey?: SecurityKeyPrompts;
}

export interface LoginOptions {
  profiles: ProfileStore;
  address: ClusterAddress;
  user: string;
  caPin?: string;
  ttlSeconds?: number;
  keystore: KeyStoreKind;
  prompts: LoginPrompts;
  /** Which second factor to use when several may answer (default: a plugged-in key, else OTP). */
  mfa?: MfaPreference;
  signal?: AbortSignal;
  onCall?: (method: string) => void;
  /** This machine's TPM for device trust (default: KEYPORT_TPM_TCTI or /dev/tpmrm0); false: never. */
  device?: DeviceTrustOptions | false;
}

/** Step 1's outcome: the answer to the MFA challenge, and the device challenge that came with it. */
interface FirstStep {
  mfaResponse: MFAAuthenticateResponse;
  deviceChallenge?: DeviceChallenge;
}

const noKeyPrompts: SecurityKeyPrompts = {
  tap: () => {},
  pin: () => Promise.reject(new KeyportError('CANCELLED', 'This client cannot ask for a security key PIN.')),
  newPin: () => Promise.reject(new KeyportError('CANCELLED', 'This client cannot set a security key PIN.')),
};

/** Login with a password, then the second factor the cluster asks for. */
export function loginWithPassword(options: LoginOptions): Promise<Profile> {
  if (!options.user) {
    throw new KeyportError('INVALID_ARGUMENT', 'Give a user name (--user).', { fieldPath: 'user' });
  }
  return login(options, async (api, origin, device) => {
    const password = await options.prompts.password(options.user);
    const challenge = await api.auth.createAuthenticateChallenge({
      user: options.user,
      password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
      device,
    });
    const mfaResponse = await answerChallenge(challenge, {
      origin,
      preference: options.mfa,
      signal: options.signal,
      prompts: { otpCode: options.prompts.otpCode, securityKey: options.prompts.securityKey ?? noKeyPrompts },
    });
    return { mfaResponse, deviceChallenge: challenge.deviceChallenge };
  });
}

/**
 * Passwordless and usernameless: a discoverable credential with user verification (the key's PIN); the
 * user handle the key returns names the user. With `user` given, only that user's passkeys on the key
 * count (as tsh does with --user); the server is still asked without a name, so it says nothing about
 * which users exist.
 */
export function loginPasswordless(
  options: Omit<LoginOptions, 'user' | 'mfa'> & { user?: string },
): Promise<Profile> {
  return login({ ...options, user: options.user ?? '' }, async (api, origin, device) => {
    const challenge = await api.auth.createAuthenticateChallenge({
      user: '',
      password: '',
      scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
      device,
    });
    const mfaResponse = await answerChallenge(challenge, {
      origin,
      preference: 'key',
      signal: options.signal,
      user: options.user || undefined,
      prompts: {
        otpCode: options.prompts.otpCode,
        securityKey: options.prompts.securityKey ?? noKeyPrompts,
      },
    });
    return { mfaResponse, deviceChallenge: challenge.deviceChallenge };
  });
}

/**
 * The steps every login shares: the session key first (in the keystore before anything leaves, so a
 * locked or missing keychain fails the login without spending a password attempt or a code), then trust,
 * then `firstStep` (the MFA answer), then Login for certificates, then the profile.
 */
async function login(
  options: LoginOptions,
  firstStep: (api: ClusterApi, origin: string, device: DeviceLoginHello | undefined) => Promise<FirstStep>,
): Promise<Profile> {
  const { profiles, prompts } = options;
  const address = formatClusterAddress(options.address);

  // The keystore goes first: a missing or locked keychain fails the login before anything is trusted,
  // sent or saved.
  const keystore = openKeyStore(options.keystore, profiles.home);
  const sessionKey = generateSessionKey('ecdsa-p256');
  const keyId = `${address}/${options.user || 'passwordless'}/${randomBytes(6).toString('hex')}`;
  await keystore.put(keyId, sessionKey.privateKeyPem);

  let api: ClusterApi | undefined;
  let device: DeviceLoginStart = {};
  try {
    const trusted = await ensureTrustedCluster(profiles, options.address, {
      caPin: options.caPin,
      prompt: prompts,
      onCall: options.onCall,
    });
    api = connectTrusted(trusted, options.onCall);
    // This machine's TPM, when the cluster uses device trust: offered in step 1, answered in step 2.
    device = await startDeviceLogin(trusted, options.device);
    const { mfaResponse, deviceChallenge } = await firstStep(api, webauthnOrigin(trusted), device.hello);
    const deviceResponse = await answerDeviceChallenge(device, deviceChallenge);
    const issued = await api.auth.login({
      mfaResponse,
      sshPublicKey: sessionKey.sshPublicKey,
      tlsPublicKey: sessionKey.publicKeyPem,
      ttlSeconds: options.ttlSeconds ?? 0,
      deviceResponse,
    });
    const previous = await profiles.getProfile(address);
    const profile: Profile = {
      address,
      cluster: issued.clusterName,
      user: issued.user,
      roles: issued.roles,
      logins: issued.logins,
      mfaVerified: issued.mfaVerified,
      validAfterMs: now(),
      expiresMs: issued.expiresMs,
      keystore: options.keystore,
      keyId,
      tlsCertPem: issued.tlsCertificate,
      sshCertificate: issued.sshCertificate,
      ...(issued.device ? { device: { ...issued.device } } : {}),
    };
    await profiles.saveProfile(profile);
    // Remembered with the cluster: the name (a sign-out, here or in the app, leaves it to sign in again),
    // the cluster's device trust settings and whether it recognised this device, for the next login.
    const trustedNow = await profiles.getTrustedCluster(options.address);
    if (trustedNow) {
      const { deviceCredentialId: _previous, ...rest } = trustedNow;
      await profiles.trustCluster({
        ...rest,
        lastUser: issued.user,
        deviceTrust: { mode: issued.deviceTrustMode || 'off', autoEnroll: issued.deviceAutoEnroll },
        ...(issued.device ? { deviceCredentialId: issued.device.credentialId } : {}),
      });
    }
    if (previous && previous.keyId !== keyId) {
      await openKeyStore(previous.keystore, profiles.home)
        .delete(previous.keyId)
        .catch(() => false);
    }
    return profile;
  } catch (error) {
    await keystore.delete(keyId).catch(() => false);
    throw error;
  } finally {
    api?.close();
    await device.device?.close().catch(() => {});
  }
}

/** Removes the session: certificates and profile, and the private key from the keystore. */
export async function logout(profiles: ProfileStore, address?: string): Promise<Profile | undefined> {
  const profile = await profiles.getProfile(address);
  if (!profile) return undefined;
  await openKeyStore(profile.keystore, profiles.home).delete(profile.keyId);
  await profiles.removeProfile(profile.address);
  return profile;
}
