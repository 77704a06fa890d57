export type KeyStoreKind = 'keychain' | 'file';

/** Where the client keeps the private halves of its session keys (docs/architecture.md invariant 2). */
export interface KeyStore {
  readonly kind: KeyStoreKind;
  /**
   * Resolves when the store can take a key now, rejects as `put` would (a missing or locked keychain);
   * writes nothing. Login asks it before step 1 and writes its key only once step 1 says the key is not
   * one on a PIV card.
   */
  ready(): Promise<void>;
  put(id: string, privateKeyPem: string): Promise<void>;
  /** Rejects with KEY_NOT_FOUND when there is no key: never resolves to an empty value. */
  get(id: string): Promise<string>;
  /** Resolves false when there was no key to delete. */
  delete(id: string): Promise<boolean>;
}

export type KeyStoreErrorCode = 'KEYCHAIN_UNAVAILABLE' | 'KEYCHAIN_LOCKED' | 'KEY_NOT_FOUND' | 'KEYSTORE_IO';

export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';

  constructor(
    readonly code: KeyStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const HEADLESS_HINT = 'or use --keystore file on a headless machine';

export function keychainUnavailable(detail?: string, cause?: unknown): KeyStoreError {
  return new KeyStoreError(
    'KEYCHAIN_UNAVAILABLE',
    'No OS keychain is reachable (Secret Service over D-Bus). Unlock or start your keychain, ' +
      `${HEADLESS_HINT}.` +
      (detail ? ` Details: ${detail}` : ''),
    { cause },
  );
}

export function keychainLocked(detail?: string, cause?: unknown): KeyStoreError {
  return new KeyStoreError(
    'KEYCHAIN_LOCKED',
    'The OS keychain is locked. Unlock it (log in to your desktop session or unlock the "Login" keyring ' +
      `in your keyring manager) and try again, ${HEADLESS_HINT}.` +
      (detail ? ` Details: ${detail}` : ''),
    { cause },
  );
}

export function keyNotFound(id: string, where: string): KeyStoreError {
  return new KeyStoreError(
    'KEY_NOT_FOUND',
    `No private key "${id}" in ${where}. Log in again to create a new session key.`,
  );
}

/** Ids become keychain account names and file names; keep them printable and bounded. */
export function assertValidKeyId(id: string): void {
  // eslint-disable-next-line no-control-regex
  if (id.length === 0 || id.length > 200 || /[\u0000-\u001f\u007f]/.test(id)) {
    throw new KeyStoreError(
      'KEYSTORE_IO',
      `Invalid key id ${JSON.stringify(id)}: use 1 to 200 printable characters.`,
    );
  }
}
