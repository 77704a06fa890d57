// PIN/UV auth protocol 2 (CTAP 2.1 §6.5.7), both sides, with node:crypto.
// Platform: encapsulate(authenticator key) → shared secret; encrypt PIN material; authenticate.
// Authenticator: a key-agreement key pair, decapsulate(platform key) → shared secret; decrypt; verify.
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import type { ECDH } from 'node:crypto';
import type { CtapMap } from './cbor';
import { COSE_ALG, ec2CoseKey } from './ctap2';
import type { CoseKey } from './ctap2';

export const PIN_UV_AUTH_PROTOCOL_2 = 2;
const AES_BLOCK = 16;
const COORDINATE = 32;
/** HMAC key (32) followed by AES key (32). */
export const SHARED_SECRET_SIZE = 64;
export const PADDED_PIN_SIZE = 64;

export type PinProtocolErrorCode =
  'INVALID_PUBLIC_KEY' | 'INVALID_CIPHERTEXT' | 'INVALID_KEY' | 'INVALID_PIN';

export class PinProtocolError extends Error {
  override readonly name = 'PinProtocolError';
  constructor(
    readonly code: PinProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function u8(buffer: Buffer | ArrayBuffer): Uint8Array {
  return buffer instanceof ArrayBuffer
    ? new Uint8Array(buffer)
    : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Uncompressed SEC1 point of an EC2 P-256 COSE key; rejects other key types and sizes. */
function peerPoint(peer: CoseKey): Uint8Array {
  // CTAP 2.1 §6.5.4 (getPublicKey): kty EC2, crv P-256. alg is -25 but not every key sends it, so
  // it is not checked.
  if (peer.kty !== 2 || peer.crv !== 1 || !peer.x || !peer.y) {
    throw new PinProtocolError('INVALID_PUBLIC_KEY', 'The key-agreement key is not an EC2 P-256 COSE key.');
  }
  if (peer.x.length !== COORDINATE || peer.y.length !== COORDINATE) {
    throw new PinProtocolError('INVALID_PUBLIC_KEY', 'The key-agreement key coordinates are not 32 bytes.');
  }
  const point = new Uint8Array(1 + 2 * COORDINATE);
  point[0] = 0x04;
  point.set(peer.x, 1);
  point.set(peer.y, 1 + COORDINATE);
  return point;
}

/** Our ECDH key as the COSE_Key CTAP sends (alg -25, ECDH-ES+HKDF-256). */
function coseFromEcdh(ecdh: ECDH): CtapMap {
  const point = u8(ecdh.getPublicKey());
  return ec2CoseKey(point.slice(1, 1 + COORDINATE), point.slice(1 + COORDINATE), COSE_ALG.ECDH_ES_HKDF_256);
}

/** ecdh(): Z = x coordinate of the shared point; kdf(Z) = HKDF(..."CTAP2 HMAC key") || HKDF(..."CTAP2 AES key"). */
function sharedSecretFrom(ecdh: ECDH, peer: CoseKey): Uint8Array {
  let z: Buffer;
  try {
    // Node returns the x coordinate and refuses points not on the curve.
    z = ecdh.computeSecret(peerPoint(peer));
  } catch (error) {
    if (error instanceof PinProtocolError) throw error;
    throw new PinProtocolError('INVALID_PUBLIC_KEY', 'The key-agreement key is not a point on P-256.');
  }
  const salt = new Uint8Array(32); // §6.5.7: salt of 32 zero bytes
  const hmacKey = u8(hkdfSync('sha256', z, salt, 'CTAP2 HMAC key', 32));
  const aesKey = u8(hkdfSync('sha256', z, salt, 'CTAP2 AES key', 32));
  z.fill(0);
  const secret = new Uint8Array(SHARED_SECRET_SIZE);
  secret.set(hmacKey, 0);
  secret.set(aesKey, 32);
  return secret;
}

function aesKeyOf(sharedSecret: Uint8Array): Uint8Array {
  if (sharedSecret.length !== SHARED_SECRET_SIZE) {
    throw new PinProtocolError('INVALID_KEY', 'A protocol 2 shared secret is 64 bytes.');
  }
  return sharedSecret.subarray(32);
}

// ---------------------------------------------------------------- platform side

export interface Encapsulation {
  /** Our COSE key, sent as keyAgreement (0x03). */
  keyAgreement: CtapMap;
  sharedSecret: Uint8Array;
}

/** Platform: a fresh key pair per exchange, ECDH with the authenticator's key, KDF. */
export function encapsulate(authenticatorKey: CoseKey): Encapsulation {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { keyAgreement: coseFromEcdh(ecdh), sharedSecret: sharedSecretFrom(ecdh, authenticatorKey) };
}

/** encrypt(key, plaintext) = IV(16, random) || AES-256-CBC(aesKey, IV, plaintext), no padding. */
export function encrypt(sharedSecret: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (plaintext.length % AES_BLOCK !== 0) {
    throw new PinProtocolError('INVALID_CIPHERTEXT', 'Protocol 2 encrypts whole 16-byte blocks.');
  }
  const iv = randomBytes(AES_BLOCK);
  const cipher = createCipheriv('aes-256-cbc', aesKeyOf(sharedSecret), iv).setAutoPadding(false);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const out = new Uint8Array(AES_BLOCK + body.length);
  out.set(iv, 0);
  out.set(body, AES_BLOCK);
  return out;
}

export function decrypt(sharedSecret: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  // §6.5.7 decrypt: an input shorter than one IV is an error; so is a partial block.
  if (ciphertext.length < AES_BLOCK || ciphertext.length % AES_BLOCK !== 0) {
    throw new PinProtocolError(
      'INVALID_CIPHERTEXT',
      'The ciphertext is not an IV followed by whole AES blocks.',
    );
  }
  const decipher = createDecipheriv('aes-256-cbc', aesKeyOf(sharedSecret), ciphertext.subarray(0, AES_BLOCK));
  decipher.setAutoPadding(false);
  return u8(Buffer.concat([decipher.update(ciphertext.subarray(AES_BLOCK)), decipher.final()]));
}

/**
 * authenticate(key, message) = HMAC-SHA-256 (all 32 bytes). With a 64-byte shared secret the HMAC key
 * is its first 32 bytes; a 32-byte pinUvAuthToken is used whole (§6.5.7).
 */
export function authenticate(key: Uint8Array, message: Uint8Array): Uint8Array {
  let hmacKey: Uint8Array;
  if (key.length === SHARED_SECRET_SIZE) hmacKey = key.subarray(0, 32);
  else if (key.length === 32) hmacKey = key;
  else
    throw new PinProtocolError(
      'INVALID_KEY',
      'Protocol 2 authenticates with a 64-byte secret or 32-byte token.',
    );
  return u8(createHmac('sha256', hmacKey).update(message).digest());
}

/** verify(key, message, signature): constant-time comparison of the full 32-byte HMAC. */
export function verify(key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const expected = authenticate(key, message);
  return signature.length === expected.length && timingSafeEqual(expected, signature);
}

/** LEFT(SHA-256(pin), 16), over the PIN's UTF-8 bytes. */
export function pinHash(pin: string): Uint8Array {
  return u8(createHash('sha256').update(Buffer.from(pin, 'utf8')).digest()).slice(0, 16);
}

/**
 * CTAP 2.1 §6.5 (setPIN): the PIN is at least 4 code points and at most 63 bytes of UTF-8, padded
 * with zeros to 64 bytes. `minLength` is the key's minPINLength, if it reports one.
 */
export function padPin(pin: string, minLength = 4): Uint8Array {
  const bytes = Buffer.from(pin, 'utf8');
  if ([...pin].length < minLength) {
    throw new PinProtocolError('INVALID_PIN', `The PIN must be at least ${minLength} characters long.`);
  }
  if (bytes.length > PADDED_PIN_SIZE - 1) {
    throw new PinProtocolError('INVALID_PIN', 'The PIN must be at most 63 bytes long.');
  }
  if (bytes.includes(0)) throw new PinProtocolError('INVALID_PIN', 'The PIN cannot contain a NUL character.');
  const padded = new Uint8Array(PADDED_PIN_SIZE);
  padded.set(bytes);
  return padded;
}

/** Authenticator side: the PIN from the 64-byte padded form (bytes up to the first zero). */
export function unpadPin(padded: Uint8Array): string {
  if (padded.length !== PADDED_PIN_SIZE) {
    throw new PinProtocolError('INVALID_PIN', 'A padded PIN is 64 bytes.');
  }
  const end = padded.indexOf(0);
  const bytes = end === -1 ? padded : padded.subarray(0, end);
  if (end === -1) throw new PinProtocolError('INVALID_PIN', 'A padded PIN ends with at least one zero byte.');
  return Buffer.from(bytes).toString('utf8');
}

/** Platform: setPIN parameters for a key with no PIN (newPinEnc, pinUvAuthParam). */
export function setPinParams(sharedSecret: Uint8Array, newPin: string, minLength?: number) {
  const newPinEnc = encrypt(sharedSecret, padPin(newPin, minLength));
  return { newPinEnc, pinUvAuthParam: authenticate(sharedSecret, newPinEnc) };
}

/** Platform: pinHashEnc for getPinUvAuthTokenUsingPinWithPermissions. */
export function pinHashEnc(sharedSecret: Uint8Array, pin: string): Uint8Array {
  return encrypt(sharedSecret, pinHash(pin));
}

// ---------------------------------------------------------------- authenticator side

/**
 * The authenticator's key-agreement key (§6.5.4 initialize/regenerate). `decapsulate` derives the
 * shared secret from the platform's keyAgreement parameter.
 */
export class AuthenticatorKeyAgreement {
  #ecdh: ECDH;

  constructor() {
    this.#ecdh = createECDH('prime256v1');
    this.#ecdh.generateKeys();
  }

  /** A new key pair: after each power cycle and when the PIN retry logic calls for it. */
  regenerate(): void {
    this.#ecdh = createECDH('prime256v1');
    this.#ecdh.generateKeys();
  }

  /** The COSE key returned by getKeyAgreement. */
  publicKey(): CtapMap {
    return coseFromEcdh(this.#ecdh);
  }

  decapsulate(platformKey: CoseKey): Uint8Array {
    return sharedSecretFrom(this.#ecdh, platformKey);
  }
}
