// A client's public key as SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): the key a session certificate
// names. Read once per login: the DER goes into the certificate as it came, and the key is checked to be a
// P-256 point on the curve or a 32-byte Ed25519 key.
//
// The two encodings a client sends have fixed DER headers (RFC 5480 §2 with an uncompressed point, and
// RFC 8410 §4), so the point is taken from behind the header. A P-256 point is checked to be on the curve
// (isP256Point: its coordinates below p and the curve's equation, in BigInt, about 0.003 ms where OpenSSL's
// ECDH.convertKey took 0.02–0.05 ms, most of it making the group; P-256's cofactor is 1, so a point on the
// curve is in the group), and its KeyObject is made only when something asks for it (a JWK import, about 0.08 ms, which a
// login without a hardware key never needs); an Ed25519 key is imported at once, as that checks nothing
// more than its length. OpenSSL's general decoder (createPublicKey on PEM or DER, about 0.3 ms) then
// export (0.25 ms) is only the fallback for any other well-formed encoding, which is re-encoded
// canonically.
import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CaError } from './errors';
import { isP256Point } from './p256';

export type ClientKeyKind = 'ecdsa-p256' | 'ed25519';

export interface ClientPublicKey {
  readonly kind: ClientKeyKind;
  /** The key as a KeyObject (for a P-256 key read from its fixed header, made at the first ask). */
  readonly key: KeyObject;
  /** The SPKI DER, canonical: what the certificate carries. */
  readonly spkiDer: Buffer;
  /** The key's own bytes, as SSH carries them: the uncompressed P-256 point, or the 32 Ed25519 bytes. */
  readonly publicBytes: Buffer;
}

// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits, 0x04 ‖ X ‖ Y) }
const P256_SPKI_HEADER = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_POINT_LENGTH = 65;
// SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (0 unused bits, 32 bytes) }
const ED25519_SPKI_HEADER = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_KEY_LENGTH = 32;

const invalid = (message: string, cause?: unknown) =>
  new CaError('INVALID_ARGUMENT', message, cause === undefined ? undefined : { cause });

/** The DER inside one "PUBLIC KEY" PEM block, or undefined when the text is not exactly that. */
export function spkiDerOfPem(pem: string): Buffer | undefined {
  const match = /^\s*-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----\s*$/.exec(
    pem,
  );
  if (!match) return undefined;
  const body = (match[1] ?? '').replace(/\r?\n/g, '');
  if (body.length === 0 || body.length % 4 !== 0) return undefined;
  return Buffer.from(body, 'base64');
}

/** The key behind a fixed header, checked on its curve by a JWK import; undefined for any other DER. */
function fromKnownHeader(der: Buffer): ClientPublicKey | undefined {
  const behind = (header: Buffer, length: number) =>
    der.length === header.length + length && der.subarray(0, header.length).equals(header)
      ? der.subarray(header.length)
      : undefined;
  const point = behind(P256_SPKI_HEADER, P256_POINT_LENGTH);
  if (point && point[0] === 0x04) {
    if (!isP256Point(point)) throw invalid('the public key is not a point of its curve');
    const publicBytes = Buffer.from(point);
    let key: KeyObject | undefined;
    return {
      kind: 'ecdsa-p256',
      get key() {
        key ??= importJwk({
          kty: 'EC',
          crv: 'P-256',
          x: publicBytes.subarray(1, 33).toString('base64url'),
          y: publicBytes.subarray(33).toString('base64url'),
        });
        return key;
      },
      spkiDer: Buffer.from(der),
      publicBytes,
    };
  }
  const raw = behind(ED25519_SPKI_HEADER, ED25519_KEY_LENGTH);
  if (raw) {
    const key = importJwk({ kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') });
    return { kind: 'ed25519', key, spkiDer: Buffer.from(der), publicBytes: Buffer.from(raw) };
  }
  return undefined;
}

function importJwk(jwk: Record<string, string>): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    throw invalid('the public key is not a point of its curve', cause);
  }
}

/** Any other encoding OpenSSL reads as a public key: only P-256 and Ed25519, re-encoded canonically. */
function fromGeneralDecoder(pem: string): ClientPublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (cause) {
    throw invalid('publicKeyPem is not a readable public key', cause);
  }
  const isP256 = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  if (!isP256 && key.asymmetricKeyType !== 'ed25519') {
    throw invalid(`client key must be ECDSA P-256 or Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  const jwk = key.export({ format: 'jwk' });
  const coordinate = (value: string | undefined) => Buffer.from(value ?? '', 'base64url');
  return {
    kind: isP256 ? 'ecdsa-p256' : 'ed25519',
    key,
    spkiDer: key.export({ type: 'spki', format: 'der' }),
    publicBytes: isP256
      ? Buffer.concat([Buffer.of(0x04), coordinate(jwk.x), coordinate(jwk.y)])
      : coordinate(jwk.x),
  };
}

/**
 * A client's SPKI PEM ("BEGIN PUBLIC KEY"), checked: ECDSA P-256 or Ed25519, on its curve. A private key
 * is refused (createPublicKey would derive its public half; a client never sends one).
 */
export function parseClientPublicKey(pem: string): ClientPublicKey {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN PUBLIC KEY-----')) {
    throw invalid('publicKeyPem must be an SPKI "PUBLIC KEY" PEM');
  }
  const der = spkiDerOfPem(pem);
  return (der && fromKnownHeader(der)) ?? fromGeneralDecoder(pem);
}
