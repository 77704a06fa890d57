// The session key seam: a session key is its public key plus sign(). Callers never see private key bytes
// (docs/architecture.md invariant 2). Sources: the OS keychain and the `--keystore file` opt-in (software
// keys, here), and a PIV slot (client/hardware/piv: a key generated on the card that never leaves it).
//
// A software signer reads its key from the KeyStore on first use and keeps it as a KeyObject held in this
// module's closures, never on the signer object: JSON.stringify, util.inspect or a walk of the object's
// properties find no key. The one way out is tlsClientKeyPem, for grpc-js's TLS client handshake alone.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as signWith } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { keyNotFound, KeyStoreError } from './key-store';
import type { KeyStore, KeyStoreKind } from './key-store';
import { formatSshPublicKey, sshPublicKeyParts } from './session-key';
import type { SessionKeyAlgorithm } from './session-key';

export type SignerSource = KeyStoreKind | 'piv';

export interface SessionSigner {
  /** Where the private key lives. */
  readonly source: SignerSource;
  readonly algorithm: SessionKeyAlgorithm;
  /** SPKI PEM: for the X.509 client certificate request. */
  readonly publicKeyPem: string;
  /** authorized_keys form: for the OpenSSH user certificate request. */
  readonly sshPublicKey: string;
  /**
   * ECDSA P-256 over SHA-256 of `data`, DER encoded (what a PIV card answers for a SHA-256 digest), or
   * Ed25519 over `data`.
   */
  sign(data: Buffer): Promise<Buffer>;
  /**
   * Whether the key can be handed to a TLS stack (a software key: mTLS works). False for a card: its
   * calls carry a proof of possession instead (client/api.ts).
   */
  readonly exportable: boolean;
}

/** A software signer's key, loaded on demand: reachable only through this module. */
const softwareKeys = new WeakMap<SessionSigner, () => Promise<KeyObject>>();

/** The signer's algorithm, from its public key; a key of any other kind is refused. */
export function signerAlgorithm(publicKey: KeyObject): SessionKeyAlgorithm {
  if (publicKey.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return 'ecdsa-p256';
  }
  throw new TypeError(
    `Unsupported session key type ${publicKey.asymmetricKeyType ?? 'unknown'}: expected Ed25519 or ECDSA P-256.`,
  );
}

function storeName(store: KeyStore): string {
  return store.kind === 'keychain' ? 'the OS keychain' : 'the file keystore';
}

function spki(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

function softwareSigner(
  store: KeyStore,
  publicKey: KeyObject,
  loadKey: () => Promise<KeyObject>,
): SessionSigner {
  const algorithm = signerAlgorithm(publicKey);
  const signer: SessionSigner = Object.freeze({
    source: store.kind,
    algorithm,
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sshPublicKey: formatSshPublicKey(sshPublicKeyParts(publicKey)),
    exportable: true,
    async sign(data: Buffer): Promise<Buffer> {
      // node:crypto signs ECDSA as DER by default (dsaEncoding 'der'); Ed25519 takes no digest.
      return signWith(algorithm === 'ed25519' ? null : 'sha256', data, await loadKey());
    },
  });
  softwareKeys.set(signer, loadKey);
  return signer;
}

/**
 * The signer for the key `id` in `store`, whose public half is `publicKey` (from the session's certificate).
 * Nothing is read until the first signature (or the TLS layer's tlsClientKeyPem): then the key is read
 * once and kept in memory. A missing key is KEY_NOT_FOUND, as the store says it; a locked keychain is
 * KEYCHAIN_LOCKED, and a later use tries the store again. A stored key that is not the certificate's is
 * KEY_NOT_FOUND too (the session's key is not there: log in again).
 */
export function openSoftwareSigner(
  store: KeyStore,
  id: string,
  publicKey: KeyObject | string,
): SessionSigner {
  const expected = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  let loading: Promise<KeyObject> | undefined;
  const load = async (): Promise<KeyObject> => {
    const pem = await store.get(id);
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (cause) {
      throw new KeyStoreError(
        'KEYSTORE_IO',
        `The entry "${id}" in ${storeName(store)} is not a private key. Log in again to create a new session key.`,
        { cause },
      );
    }
    if (!spki(createPublicKey(key)).equals(spki(expected))) {
      throw keyNotFound(id, `${storeName(store)} for this session's certificate`);
    }
    return key;
  };
  return softwareSigner(store, expected, () => {
    loading ??= load();
    // A failure is not kept: the keychain may be unlocked by the next use.
    loading.catch(() => (loading = undefined));
    return loading;
  });
}

/**
 * A fresh session key (made now, synchronously), put in `store` under `id`; resolves to its signer once the
 * store holds it. The key stays in memory for this signer: nothing is read back.
 */
export async function createSoftwareSigner(
  store: KeyStore,
  id: string,
  algorithm: SessionKeyAlgorithm,
): Promise<SessionSigner> {
  const { privateKey, publicKey } =
    algorithm === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await store.put(id, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
  return softwareSigner(store, publicKey, () => Promise.resolve(privateKey));
}

/**
 * The signer's private key as PKCS#8 PEM, for grpc-js `credentials.createSsl` (a TLS client handshake needs
 * the key in process). Its one caller is client/api.ts, where the channel's credentials are made
 * (client/keystore/signer.test.ts checks that no other file calls it). A signer whose key cannot leave it
 * (a card) is refused: its calls carry a proof of possession instead.
 */
export async function tlsClientKeyPem(signer: SessionSigner): Promise<string> {
  const load = softwareKeys.get(signer);
  if (!signer.exportable || !load) {
    throw new TypeError(
      `A ${signer.source} session key cannot do a TLS client handshake: connect with proofOfPossession.`,
    );
  }
  return (await load()).export({ format: 'pem', type: 'pkcs8' }).toString();
}
