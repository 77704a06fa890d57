import { join } from 'node:path';
import { FileStore } from './file-store';
import { KeychainStore } from './keychain-store';
import type { KeyStore, KeyStoreKind } from './key-store';

export { FileStore, fileNameForId } from './file-store';
export { KEYCHAIN_SERVICE, KeychainStore } from './keychain-store';
export { KeyStoreError } from './key-store';
export type { KeyStore, KeyStoreErrorCode, KeyStoreKind } from './key-store';
export {
  encodeSshPublicKeyBlob,
  formatSshPublicKey,
  generateSessionKey,
  sshPublicKeyFromPrivatePem,
  sshPublicKeyParts,
} from './session-key';
export type { SessionKey, SessionKeyAlgorithm, SshPublicKeyParts } from './session-key';
export { createSoftwareSigner, openSoftwareSigner, signerAlgorithm } from './signer';
export type { SessionSigner, SignerSource } from './signer';

/** The directory `--keystore file` keeps keys in, under the Keyport home (e.g. ~/.keyport/keys). */
export function fileKeyStoreDir(homeDir: string): string {
  return join(homeDir, 'keys');
}

/** `homeDir` is the Keyport home directory (where profiles live), not the user's $HOME. */
export function openKeyStore(kind: KeyStoreKind, homeDir: string): KeyStore {
  return kind === 'keychain' ? new KeychainStore() : new FileStore(fileKeyStoreDir(homeDir));
}
