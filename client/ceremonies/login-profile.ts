// The last step of a login (client/ceremonies/login.ts): the profile that names the session key (the card's
// or the software one) and the cluster remembered with it, written side by side; then the previous session's
// software key goes, and so does a software key written before the login went to the card.
import { now } from '../../proto/clock';
import type { LoginResponse } from '../../proto/gen/keyport/v1/auth';
import type { ClusterAddress } from '../cluster-trust';
import type { KeyStoreKind } from '../keystore';
import type { Profile, ProfileStore, TrustedCluster } from '../profiles';
import { withLastReplica } from '../replicas';
import { cardKeyId } from './hardware-key';
import type { LoginCardKey } from './login-card-key';
import { retirePreviousKey } from './login-session-key';
import type { LoginSessionKey } from './login-session-key';

export interface IssuedSession {
  profiles: ProfileStore;
  /** The profile and trusted cluster as stored before this login (read while it ran). */
  stored: Promise<[Profile | undefined, TrustedCluster | undefined]>;
  address: string;
  keystore: KeyStoreKind;
  issued: LoginResponse;
  /** The replica that answered Login, tried first next time. */
  answeredBy: ClusterAddress;
  /** Whether this login offered a device (a TPM) in step 1. */
  deviceOffered: boolean;
  key: LoginSessionKey;
  card: LoginCardKey;
  /** An SSO login: the oidc connector it went through (the profile remembers it for a relogin). */
  ssoConnector?: string;
}

export async function saveSession(session: IssuedSession): Promise<Profile> {
  const { profiles, issued, key, card } = session;
  const [previous, trustedNow] = await session.stored;
  const hardwareKey = card.record();
  const keyId = hardwareKey ? cardKeyId(hardwareKey) : key.keyId;
  const profile: Profile = {
    address: session.address,
    cluster: issued.clusterName,
    user: issued.user,
    roles: issued.roles,
    logins: issued.logins,
    mfaVerified: issued.mfaVerified,
    validAfterMs: now(),
    expiresMs: issued.expiresMs,
    keystore: session.keystore,
    keyId,
    ...(hardwareKey ? { hardwareKey } : {}),
    tlsCertPem: issued.tlsCertificate,
    sshCertificate: issued.sshCertificate,
    ...(issued.device ? { device: { ...issued.device } } : {}),
    ...(session.ssoConnector ? { ssoConnector: session.ssoConnector } : {}),
  };
  // Remembered with the cluster: the name (a sign-out, here or in the app, leaves it to sign in again),
  // the cluster's device trust settings and whether it recognised this device, for the next login, and
  // the replica that answered, tried first next time.
  // A login that offered no device (none here, or device trust off) leaves the recognised one as it was.
  const remembered = trustedNow && {
    ...withLastReplica(
      session.deviceOffered ? withoutCredential(trustedNow) : trustedNow,
      session.answeredBy,
    ),
    lastUser: issued.user,
    deviceTrust: { mode: issued.deviceTrustMode || 'off', autoEnroll: issued.deviceAutoEnroll },
    ...(issued.device ? { deviceCredentialId: issued.device.credentialId } : {}),
    privateKeyPolicy: card.required,
  };
  // The key is no longer the login's to take back: the profile that names it is being saved.
  key.release();
  await Promise.all([
    profiles.saveProfile(profile).then(async () => {
      await retirePreviousKey(previous, keyId, profiles.home);
      if (hardwareKey) await key.takeBack();
    }),
    remembered && profiles.trustCluster(remembered),
  ]);
  return profile;
}

function withoutCredential<T extends { deviceCredentialId?: string }>(
  trusted: T,
): Omit<T, 'deviceCredentialId'> {
  const { deviceCredentialId: _previous, ...rest } = trusted;
  return rest;
}
