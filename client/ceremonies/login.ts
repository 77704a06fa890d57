// Login with a password and a second factor, in two round trips:
//   1. CreateAuthenticateChallenge{user, password, scope LOGIN} → which factors may answer
//   2. Login{answer, public keys, ttl} → SSH + X.509 certificates
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
import { connectTrusted, ensureTrustedCluster } from '../session';
import type { TrustPrompt } from '../session';

export interface LoginPrompts extends TrustPrompt {
  password(user: string): Promise<string>;
  otpCode(): Promise<string>;
}

export interface LoginOptions {
  profiles: ProfileStore;
  address: ClusterAddress;
  user: string;
  caPin?: string;
  ttlSeconds?: number;
  keystore: KeyStoreKind;
  prompts: LoginPrompts;
  onCall?: (method: string) => void;
}

export async function loginWithPassword(options: LoginOptions): Promise<Profile> {
  const { profiles, prompts } = options;
  if (!options.user)
    throw new KeyportError('INVALID_ARGUMENT', 'Give a user name (--user).', { fieldPath: 'user' });
  const address = formatClusterAddress(options.address);

  // The keystore goes first: a missing or locked keychain fails the login before anything is trusted,
  // sent or saved.
  const keystore = openKeyStore(options.keystore, profiles.home);
  const sessionKey = generateSessionKey('ecdsa-p256');
  const keyId = `${address}/${options.user}/${randomBytes(6).toString('hex')}`;
  await keystore.put(keyId, sessionKey.privateKeyPem);

  let api: ClusterApi | undefined;
  try {
    const trusted = await ensureTrustedCluster(profiles, options.address, {
      caPin: options.caPin,
      prompt: prompts,
      onCall: options.onCall,
    });
    api = connectTrusted(trusted, options.onCall);
    const password = await prompts.password(options.user);
    const challenge = await api.auth.createAuthenticateChallenge({
      user: options.user,
      password,
      scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN,
    });
    const mfaResponse: MFAAuthenticateResponse = { challengeId: challenge.challengeId, response: undefined };
    if (challenge.mfaRequired) {
      if (!challenge.totpAllowed) {
        throw new KeyportError(
          'MFA_REQUIRED',
          'This cluster requires a security key, which this client cannot use yet.',
        );
      }
      mfaResponse.response = { $case: 'totp', value: { code: (await prompts.otpCode()).trim() } };
    }
    const issued = await api.auth.login({
      mfaResponse,
      sshPublicKey: sessionKey.sshPublicKey,
      tlsPublicKey: sessionKey.publicKeyPem,
      ttlSeconds: options.ttlSeconds ?? 0,
    });
    const previous = await profiles.getProfile(address);
    const profile: Profile = {
      address,
      cluster: issued.clusterName,
      user: issued.user,
      roles: issued.roles,
      logins: issued.logins,
      mfaVerified: issued.mfaVerified,
      validAfterMs: Date.now(),
      expiresMs: issued.expiresMs,
      keystore: options.keystore,
      keyId,
      tlsCertPem: issued.tlsCertificate,
      sshCertificate: issued.sshCertificate,
    };
    await profiles.saveProfile(profile);
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
