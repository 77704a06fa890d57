// PIN/UV auth protocol 2, authenticator side (CTAP 2.1 §6.5.7). Node crypto only.
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import type { CborValue } from './cbor';

export const PIN_PROTOCOL_2 = 2;
const COSE_KTY_EC2 = 2;
const COSE_ALG_ECDH_ES_HKDF_256 = -25;
const COSE_CRV_P256 = 1;

/** The 64-byte shared secret: HMAC key (32) || AES key (32). */
export type SharedSecret = Uint8Array;

export class PinProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PinProtocolError';
  }
}

/** The authenticator's key-agreement key; regenerated at power-up and after a wrong PIN (§6.5.5.7). */
export class KeyAgreement {
  private ecdh = createECDH('prime256v1');

  constructor() {
    this.regenerate();
  }

  regenerate(): void {
    this.ecdh = createECDH('prime256v1');
    this.ecdh.generateKeys();
  }

  /** getPublicKey(): COSE_Key with alg -25 (§6.5.6). */
  coseKey(): Map<CborValue, CborValue> {
    const point = this.ecdh.getPublicKey();
    return new Map<CborValue, CborValue>([
      [1, COSE_KTY_EC2],
      [3, COSE_ALG_ECDH_ES_HKDF_256],
      [-1, COSE_CRV_P256],
      [-2, new Uint8Array(point.subarray(1, 33))],
      [-3, new Uint8Array(point.subarray(33, 65))],
    ]);
  }

  /** decapsulate(peerCoseKey): ECDH, then kdf(Z) of protocol 2. */
  decapsulate(peer: Map<CborValue, CborValue>): SharedSecret {
    const x = peer.get(-2);
    const y = peer.get(-3);
    if (peer.get(1) !== COSE_KTY_EC2 || peer.get(-1) !== COSE_CRV_P256) {
      throw new PinProtocolError('keyAgreement is not a P-256 EC2 key');
    }
    if (!(x instanceof Uint8Array) || !(y instanceof Uint8Array) || x.length !== 32 || y.length !== 32) {
      throw new PinProtocolError('keyAgreement coordinates must be 32 bytes each');
    }
    let z: Buffer;
    try {
      z = this.ecdh.computeSecret(Buffer.concat([Uint8Array.of(4), x, y]));
    } catch {
      throw new PinProtocolError('keyAgreement is not a point on P-256');
    }
    return kdf(z);
  }
}

/** §6.5.7: HKDF-SHA-256 with a zero salt, once for the HMAC key and once for the AES key. */
export function kdf(z: Uint8Array): SharedSecret {
  const salt = new Uint8Array(32);
  const hmacKey = new Uint8Array(hkdfSync('sha256', z, salt, 'CTAP2 HMAC key', 32));
  const aesKey = new Uint8Array(hkdfSync('sha256', z, salt, 'CTAP2 AES key', 32));
  const out = new Uint8Array(64);
  out.set(hmacKey, 0);
  out.set(aesKey, 32);
  return out;
}

/** encrypt(key, plaintext): random IV || AES-256-CBC without padding. */
export function encrypt(secret: SharedSecret, plaintext: Uint8Array): Uint8Array {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', secret.subarray(32, 64), iv).setAutoPadding(false);
  return new Uint8Array(Buffer.concat([iv, cipher.update(plaintext), cipher.final()]));
}

export function decrypt(secret: SharedSecret, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length < 16 || (ciphertext.length - 16) % 16 !== 0) {
    throw new PinProtocolError('ciphertext is not IV plus whole AES blocks');
  }
  const decipher = createDecipheriv('aes-256-cbc', secret.subarray(32, 64), ciphertext.subarray(0, 16));
  decipher.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([decipher.update(ciphertext.subarray(16)), decipher.final()]));
}

/**
 * authenticate(key, message): HMAC-SHA-256, all 32 bytes. The key is the HMAC half of a shared secret,
 * or a whole 32-byte pinUvAuthToken.
 */
export function authenticate(key: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHmac('sha256', key.length === 64 ? key.subarray(0, 32) : key)
      .update(message)
      .digest(),
  );
}

export function verify(key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const expected = authenticate(key, message);
  return signature.length === expected.length && timingSafeEqual(expected, signature);
}
