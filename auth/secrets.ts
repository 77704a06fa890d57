// Secrets at rest: TOTP seeds in the database and the CA private keys in the data dir are sealed with
// AES-256-GCM under a key-encryption key (KEK) that lives outside the data dir, in a file of its own
// (0600, checked on every read). A copy of the data dir or of the database alone opens neither.
//
// A sealed value is `kp-sealed:v1:<base64url(nonce ‖ ciphertext ‖ tag)>`, with a fresh 96-bit nonce per
// seal. Each value is bound to what it is (the AAD, e.g. "totp-seed:alice"), so a sealed seed moved into
// another user's row, or a CA key file swapped for another, does not open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { PRIVATE_FILE_MODE, readPrivateFile, writeFileIfAbsent } from './ca/key-files';
import type { Store } from './storage/store';

/** Every sealed value starts so, whatever its version: SQL looks for plain values with `NOT LIKE`. */
export const SEALED_FAMILY = 'kp-sealed:';
const PREFIX = `${SEALED_FAMILY}v1:`;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface Sealer {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** A sealed value that does not open under this KEK (another key, another context, or not sealed). */
export class SealedSecretRefused extends KeyportError {
  constructor(context: string) {
    super(
      'INTERNAL',
      `A sealed secret (${context.split(':')[0]}) does not open with this key-encryption key: the KEK file does not belong to this data.`,
    );
  }
}

/** Sealing under one 256-bit key. */
export class SecretBox implements Sealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a key-encryption key has ${KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
  }

  seal(plaintext: string, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
  }

  open(sealed: string, context: string): string {
    const refused = () => new SealedSecretRefused(context);
    if (!isSealed(sealed)) throw refused();
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64url');
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw refused();
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw refused();
    }
  }
}

/**
 * The KEK from its file (base64 of 32 bytes), created on first start. The file must be the owner's only
 * (readPrivateFile refuses group or other access), and two first starts at once agree on one key.
 */
export async function openKeyEncryptionKey(path: string): Promise<SecretBox> {
  let text = await readPrivateFile(path);
  if (text === undefined) {
    await writeFileIfAbsent(path, `${randomBytes(KEY_BYTES).toString('base64')}\n`, PRIVATE_FILE_MODE);
    text = await readPrivateFile(path);
  }
  const key = Buffer.from((text ?? '').trim(), 'base64');
  if (key.length !== KEY_BYTES) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `${path} does not hold a key-encryption key (base64 of ${KEY_BYTES} bytes).`,
    );
  }
  return new SecretBox(key);
}

/** What a TOTP seed is bound to. */
export const totpSeedContext = (user: string) => `totp-seed:${user}`;

/**
 * Seals the TOTP seeds a data dir from before sealing still holds in plain text (devices, and signups
 * in progress), in one transaction. Challenges waiting for a new device expire within minutes.
 */
export async function sealPlainTotpSeeds(store: Store, box: Sealer): Promise<number> {
  return store.transaction(async (tx) => {
    let sealed = 0;
    for (const device of await tx.listTotpDevicesWithPlainSeeds()) {
      await tx.setTotpSeed(device.id, box.seal(device.totp_secret, totpSeedContext(device.user)));
      sealed++;
    }
    for (const token of await tx.listSignupTokensWithPlainSeeds()) {
      await tx.setSignupTotpSeed(
        token.token_hash,
        box.seal(token.pending_totp_secret, totpSeedContext(token.user)),
      );
      sealed++;
    }
    return sealed;
  });
}
