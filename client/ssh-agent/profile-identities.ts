// The identity a Keyport home's current profile gives its agent: the session's signer and its OpenSSH user
// certificate, read afresh at every request, so a relogin or a logout shows in the very next `ssh-add -L`.
import { now as clockNow } from '../../proto/clock';
import type { Clock } from '../../proto/clock';
import type { Profile, ProfileStore } from '../profiles';
import { profileSigner } from '../session';
import type { SessionSigner } from '../keystore/signer';
import type { AgentIdentity, IdentityProvider } from './server';

/** A signer that holds something until closed (a card's PC/SC session). */
export interface OpenedSigner {
  signer: SessionSigner;
  close(): Promise<void> | void;
}

export interface ProfileIdentitiesOptions {
  /**
   * The session's signer. Default: the key in the profile's keystore (`profileSigner`), which is right for a
   * software key only; a session whose key is on a PIV card needs the card's signer (with its PIN and touch
   * prompts) given here.
   */
  signerFor?: (profiles: ProfileStore, profile: Profile) => SessionSigner | OpenedSigner;
  now?: Clock;
}

export interface ProfileIdentityProvider extends IdentityProvider {
  /** Closes the signer it holds, if it holds one that needs closing. */
  close(): Promise<void>;
}

/**
 * The current profile's session as an agent identity; none when nobody is signed in or the session has
 * expired (its certificate would be refused anyway). One signer is kept per session, so a keychain key is
 * read once, at its first signature, not at every request; it is closed when the session changes.
 */
export function profileIdentities(
  profiles: ProfileStore,
  options: ProfileIdentitiesOptions = {},
): ProfileIdentityProvider {
  const signerFor = options.signerFor ?? profileSigner;
  const now = options.now ?? clockNow;
  let cached: { session: string; opened: OpenedSigner } | undefined;

  const release = async (): Promise<void> => {
    const previous = cached;
    cached = undefined;
    await previous?.opened.close();
  };

  const current = async (): Promise<AgentIdentity[]> => {
    const profile = await profiles.getProfile();
    if (!profile || profile.expiresMs <= now()) {
      await release();
      return [];
    }
    const session = [profile.address, profile.keystore, profile.keyId, profile.tlsCertPem].join('\n');
    if (cached?.session !== session) {
      await release();
      const made = signerFor(profiles, profile);
      cached = { session, opened: 'sign' in made ? { signer: made, close: () => {} } : made };
    }
    return [
      {
        signer: cached.opened.signer,
        certificate: profile.sshCertificate,
        comment: `${profile.user}@${profile.cluster}`,
      },
    ];
  };
  // One call at a time: two connections asking across a relogin must not both open a signer for it.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(step: () => Promise<T>): Promise<T> => {
    const result = queue.then(step, step);
    queue = result.catch(() => {});
    return result;
  };
  return Object.assign(() => serialized(current), { close: () => serialized(release) });
}
