import { AsyncEntry } from '@napi-rs/keyring';
import type { EntryOptions } from '@napi-rs/keyring';
import {
  assertValidKeyId,
  keychainLocked,
  keychainUnavailable,
  keyNotFound,
  KeyStoreError,
} from './key-store';
import type { KeyStore } from './key-store';
import { defaultCollectionState } from './secret-service-state';

export const KEYCHAIN_SERVICE = 'keyport';
/** The account name ready() reads: never written. */
const READY_PROBE_ID = 'keyport-keychain-ready';

// Pinned so that a missing bus is an error rather than a silent fallback to the kernel keyring, which
// forgets everything at reboot and is invisible to the desktop's keyring tools.
const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

const usesSecretService = process.platform !== 'darwin' && process.platform !== 'win32';

/*
 * Behaviour of @napi-rs/keyring 2.1.2 against gnome-keyring 42.1, observed with lab/keyring.ts
 * (every error is a plain Error with code 'GenericFailure'; only the message tells them apart):
 *
 * - Collection locked, item present: get, set and delete reject with
 *   "Couldn't access platform storage: Secret Service: unlock prompt was dismissed"
 *   (keyring-rs NoStorageAccess). The library first asks for an unlock prompt: on a desktop the person
 *   can unlock there and the call succeeds; with no display the prompter exits at once (~30 ms).
 * - Collection locked, item absent: get resolves null and delete resolves false. Item attributes stay
 *   searchable while locked, so nothing signals the lock; only asking the collection does.
 * - gnome-keyring started by D-Bus activation (no --unlock, no login keyring yet): get resolves null;
 *   set rejects with "Couldn't access platform storage: Secret Service: no result found".
 * - Bus address set but nothing listening: reject with "Platform failure: DBus error: Failed to connect
 *   to socket …" (keyring-rs PlatformFailure). A bus with no Secret Service to activate: "Platform
 *   failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files".
 *   Without the pinned store, both of these quietly resolve null from the kernel keyring instead.
 * - DBUS_SESSION_BUS_ADDRESS unset: zbus falls back to $XDG_RUNTIME_DIR/bus and may well reach a bus;
 *   we refuse up front instead (see assertSessionBus).
 */
const NO_STORAGE_ACCESS = "Couldn't access platform storage";
const PLATFORM_FAILURE = 'Platform failure';

export class KeychainStore implements KeyStore {
  readonly kind = 'keychain';

  constructor(private readonly service: string = KEYCHAIN_SERVICE) {}

  async put(id: string, privateKeyPem: string): Promise<void> {
    const entry = this.entry(id);
    await callKeychain(() => entry.setPassword(privateKeyPem));
    // Read back: a write that the keychain accepted but cannot return is as good as lost.
    const stored = await callKeychain(() => entry.getPassword());
    if (stored === privateKeyPem) return;
    if (stored === null) await throwIfLocked();
    throw new KeyStoreError(
      'KEYSTORE_IO',
      `The OS keychain accepted private key "${id}" but did not return it when read back. ` +
        `Check your keyring manager for a conflicting "${this.service}" entry.`,
    );
  }

  /**
   * A read of an entry no one writes: it reaches the bus and the Secret Service (an error if either is
   * missing), and a null answer is checked against the default collection's lock, as every null is.
   */
  async ready(): Promise<void> {
    const entry = this.entry(READY_PROBE_ID);
    if ((await callKeychain(() => entry.getPassword())) === null) await throwIfLocked();
  }

  async get(id: string): Promise<string> {
    const entry = this.entry(id);
    const stored = await callKeychain(() => entry.getPassword());
    if (stored !== null) return stored;
    await throwIfLocked();
    throw keyNotFound(id, 'the OS keychain');
  }

  async delete(id: string): Promise<boolean> {
    const entry = this.entry(id);
    const deleted = await callKeychain(() => entry.deleteCredential());
    if (!deleted) await throwIfLocked();
    return deleted;
  }

  private entry(id: string): AsyncEntry {
    assertValidKeyId(id);
    assertSessionBus();
    // The pinned store connects to the bus right here, so a dead bus throws from the constructor.
    try {
      return new AsyncEntry(this.service, id, ENTRY_OPTIONS);
    } catch (error) {
      throw classifyKeychainError(error);
    }
  }
}

function assertSessionBus(): void {
  if (usesSecretService && !process.env.DBUS_SESSION_BUS_ADDRESS) {
    throw keychainUnavailable('DBUS_SESSION_BUS_ADDRESS is not set.');
  }
}

/**
 * A null read or a false delete from a locked (or absent) default collection must not pass for
 * "no key": some Secret Service providers also hide locked items from searches entirely.
 */
async function throwIfLocked(): Promise<void> {
  if (!usesSecretService) return;
  const state = await defaultCollectionState();
  if (state === 'locked') throw keychainLocked();
  if (state === 'missing')
    throw keychainLocked('The Secret Service has no default keyring (no "Login" keyring).');
}

async function callKeychain<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw classifyKeychainError(error);
  }
}

export function classifyKeychainError(error: unknown): KeyStoreError {
  if (error instanceof KeyStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith(NO_STORAGE_ACCESS) || /IsLocked|locked/i.test(message)) {
    return keychainLocked(message, error);
  }
  if (message.startsWith(PLATFORM_FAILURE) || /DBus|D-Bus|zbus/i.test(message)) {
    return keychainUnavailable(message, error);
  }
  return new KeyStoreError('KEYSTORE_IO', `The OS keychain failed: ${message}`, { cause: error });
}
