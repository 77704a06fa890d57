// The identity a Keyport home's current profile gives its agent: the session's signer and its OpenSSH user
// certificate, read afresh at every request, so a relogin or a logout shows in the very next `ssh-add -L`.
import { now as clockNow } from '../../proto/clock';
import type { Clock } from '../../proto/clock';
import type { Profile, ProfileStore } from '../profiles';
import { profileSigner } from '../session';
import type { SessionSigner } from '../keystore/signer';
import type { AgentIdentity, IdentityProvider } from './server';

export interface ProfileIdentitiesOptions {
  /** Default: the profile's keystore key (profileSigner); a card's signer for a hardware-key session. */
  signerFor?: (profiles: ProfileStore, profile: Profile) => SessionSigner;
  now?: Clock;
}

/**
 * The current profile's session as an agent identity; none when nobody is signed in or the session has
 * expired (its certificate would be refused anyway). One signer is kept per session, so a keychain key is
 * read once, at its first signature, and not at every request.
 */
export function profileIdentities(
  profiles: ProfileStore,
  options: ProfileIdentitiesOptions = {},
): IdentityProvider {
  const signerFor = options.signerFor ?? profileSigner;
  const now = options.now ?? clockNow;
  let cached: { session: string; signer: SessionSigner } | undefined;
  return async (): Promise<AgentIdentity[]> => {
    const profile = await profiles.getProfile();
    if (!profile || profile.expiresMs <= now()) return [];
    const session = [profile.address, profile.keystore, profile.keyId, profile.tlsCertPem].join('\n');
    if (cached?.session !== session) cached = { session, signer: signerFor(profiles, profile) };
    return [
      {
        signer: cached.signer,
        certificate: profile.sshCertificate,
        comment: `${profile.user}@${profile.cluster}`,
      },
    ];
  };
}
