// The software session key of a login in progress (the key-write part of client/ceremonies/login.ts): the
// keystore is checked from the start, the key is made and written at most once (only when the session key
// need not be on a PIV card), and it is the login's to take back until the profile that names it is being
// saved. A process that must end now (a second Ctrl-C) calls abandonLogins first, so no key is left behind.
import { randomBytes } from 'node:crypto';
import { createSoftwareSigner, openKeyStore } from '../keystore';
import type { KeyStoreKind, SessionSigner } from '../keystore';
import type { Profile } from '../profiles';

/** The take-backs of the logins in progress whose key no saved profile names yet. */
const unsavedKeys = new Set<() => Promise<void>>();

/** Takes back the session key of every login in progress (waiting for a write in flight to end first). */
export async function abandonLogins(): Promise<void> {
  await Promise.all([...unsavedKeys].map((takeBack) => takeBack()));
}

export interface LoginSessionKey {
  readonly keyId: string;
  /** Started at once: settles when the keystore is known to take a key (rejects for a missing or locked keychain). */
  readonly ready: Promise<void>;
  /** Makes the key at once and writes it (once); settles when the keystore holds it. Its signer gives public keys only. */
  store(): Promise<SessionSigner>;
  /** From now until `release`, abandonLogins takes the key back. */
  hold(): void;
  /** The profile that names the key is being saved, or the login is over: abandonLogins leaves it. */
  release(): void;
  /** Deletes the key if it was written (waiting for a write in flight to end first). */
  takeBack(): Promise<void>;
}

/** A login's software session key, `<keyPrefix>/<random>` in the `kind` keystore. */
export function loginSessionKey(kind: KeyStoreKind, home: string, keyPrefix: string): LoginSessionKey {
  const keystore = openKeyStore(kind, home);
  const keyId = `${keyPrefix}/${randomBytes(6).toString('hex')}`;
  let stored: Promise<SessionSigner> | undefined;
  const takeBack = async (): Promise<void> => {
    const written = await stored?.then(
      () => true,
      () => false,
    );
    if (written) await keystore.delete(keyId).catch(() => false);
  };
  const ready = keystore.ready();
  ready.catch(() => {});
  return {
    keyId,
    ready,
    store: () => {
      if (!stored) {
        stored = createSoftwareSigner(keystore, keyId, 'ecdsa-p256');
        stored.catch(() => {});
      }
      return stored;
    },
    hold: () => void unsavedKeys.add(takeBack),
    release: () => void unsavedKeys.delete(takeBack),
    takeBack,
  };
}

/**
 * Once the new profile is saved: the previous session's software key goes unless the new profile names it
 * (a card's key stays on the card, where the next login reuses it).
 */
export async function retirePreviousKey(
  previous: Profile | undefined,
  keyId: string,
  home: string,
): Promise<void> {
  if (previous && !previous.hardwareKey && previous.keyId !== keyId) {
    await openKeyStore(previous.keystore, home)
      .delete(previous.keyId)
      .catch(() => false);
  }
}
