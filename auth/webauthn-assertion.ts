// A WebAuthn assertion verified with node:crypto directly, for ES256 passkeys (COSE alg -7, P-256, the
// key every security key and platform authenticator makes by default). It runs, in the same order and
// with the same wording, every check of @simplewebauthn/server's verifyAuthenticationResponse (WebAuthn
// L3 §7.2): credential id present and base64url, type public-key, clientData type webauthn.get, the
// challenge, crossOrigin/topOrigin, the origin, base64url authenticatorData and signature, tokenBinding,
// the authenticator data parsed strictly (the library's parser), rpIdHash, UP, UV when required, the
// backup flags, and the signature over authenticatorData ‖ SHA-256(clientDataJSON). What differs is only
// how: SHA-256 by createHash instead of WebCrypto's asynchronous digest (each one a trip through the
// thread pool), and the public key imported once per credential and kept (keyed by credential id, checked
// against the stored key's bytes, bounded). Keys of any other algorithm (RS256, EdDSA, ES384 …) return
// undefined and go through the library. The sign counter and allowCredentials/user handle are the
// caller's (auth/webauthn.ts verifyAssertion and the ceremonies), as with the library.
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { verifyInPool } from './ca/crypto-pool';
import {
  cose,
  decodeClientDataJSON,
  decodeCredentialPublicKey,
  isoBase64URL,
  parseAuthenticatorData,
} from '@simplewebauthn/server/helpers';

export interface FastAssertionInput {
  response: AuthenticationResponseJSON;
  expectedChallenge: string;
  expectedOrigin: string;
  expectedRPID: string;
  credentialId: string;
  /** The stored COSE public key, base64url. */
  publicKey: string;
  requireUserVerification: boolean;
}

export interface FastAssertionResult {
  verified: boolean;
  newCounter: number;
  userVerified: boolean;
}

const MAX_CACHED_KEYS = 10_000;
const keys = new Map<string, { publicKey: string; key: KeyObject | null }>();
const rpIdHashes = new Map<string, Buffer>();

/** The ES256 key of this credential, imported once; null when the stored key is not ES256 on P-256. */
function es256Key(credentialId: string, publicKey: string): KeyObject | null {
  const cached = keys.get(credentialId);
  if (cached && cached.publicKey === publicKey) return cached.key;
  let key: KeyObject | null = null;
  // The library types a COSE map per key kind; here any map is looked at, and only ES256 kept.
  const decoded = decodeCredentialPublicKey(isoBase64URL.toBuffer(publicKey)) as unknown as Map<
    number,
    unknown
  >;
  const x = decoded.get(cose.COSEKEYS.x);
  const y = decoded.get(cose.COSEKEYS.y);
  if (
    decoded.get(cose.COSEKEYS.kty) === cose.COSEKTY.EC2 &&
    decoded.get(cose.COSEKEYS.alg) === cose.COSEALG.ES256 &&
    decoded.get(cose.COSEKEYS.crv) === cose.COSECRV.P256 &&
    x instanceof Uint8Array &&
    y instanceof Uint8Array &&
    x.length === 32 &&
    y.length === 32
  ) {
    key = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(x).toString('base64url'),
        y: Buffer.from(y).toString('base64url'),
      },
      format: 'jwk',
    });
  }
  if (keys.size >= MAX_CACHED_KEYS) keys.clear();
  keys.set(credentialId, { publicKey, key });
  return key;
}

function rpIdHash(rpId: string): Buffer {
  let hash = rpIdHashes.get(rpId);
  if (!hash) {
    hash = createHash('sha256').update(rpId, 'ascii').digest();
    if (rpIdHashes.size < 64) rpIdHashes.set(rpId, hash);
  }
  return hash;
}

/**
 * The assertion verified as the library would, the signature on the thread pool; undefined when the
 * credential's key is not ES256 (the caller then asks the library). Throws plain Errors, as the library does.
 */
export async function verifyEs256Assertion(
  input: FastAssertionInput,
): Promise<FastAssertionResult | undefined> {
  const key = es256Key(input.credentialId, input.publicKey);
  if (!key) return undefined;
  const { id, rawId, type: credentialType, response: assertion } = input.response;
  if (!id) throw new Error('Missing credential ID');
  if (id !== rawId) throw new Error('Credential ID was not base64url-encoded');
  if (credentialType !== 'public-key') {
    throw new Error(`Unexpected credential type ${String(credentialType)}, expected "public-key"`);
  }
  if (typeof assertion?.clientDataJSON !== 'string') {
    throw new Error('Credential response clientDataJSON was not a string');
  }
  const clientData = decodeClientDataJSON(assertion.clientDataJSON);
  const { type, origin, challenge, tokenBinding, crossOrigin, topOrigin } = clientData;
  if (type !== 'webauthn.get') throw new Error(`Unexpected authentication response type: ${type}`);
  if (challenge !== input.expectedChallenge) {
    throw new Error(
      `Unexpected authentication response challenge "${challenge}", expected "${input.expectedChallenge}"`,
    );
  }
  // No expected top origin is configured: a cross-origin response naming one is refused, and a top
  // origin without crossOrigin is a client's violation.
  if (topOrigin) {
    throw new Error(
      crossOrigin
        ? `Detected cross-origin authentication response from top origin of "${topOrigin}"`
        : `Unexpected top origin of "${topOrigin}" within a non-cross-origin authentication response`,
    );
  }
  if (origin !== input.expectedOrigin) {
    throw new Error(
      `Unexpected authentication response origin "${origin}", expected "${input.expectedOrigin}"`,
    );
  }
  if (
    typeof assertion.authenticatorData !== 'string' ||
    !isoBase64URL.isBase64URL(assertion.authenticatorData)
  ) {
    throw new Error('Credential response authenticatorData was not a base64url string');
  }
  if (typeof assertion.signature !== 'string' || !isoBase64URL.isBase64URL(assertion.signature)) {
    throw new Error('Credential response signature was not a base64url string');
  }
  if (assertion.userHandle && typeof assertion.userHandle !== 'string') {
    throw new Error('Credential response userHandle was not a string');
  }
  if (tokenBinding) {
    if (typeof tokenBinding !== 'object') throw new Error('ClientDataJSON tokenBinding was not an object');
    if (!['present', 'supported', 'notSupported'].includes(tokenBinding.status)) {
      throw new Error(`Unexpected tokenBinding status ${String(tokenBinding.status)}`);
    }
  }
  const authData = isoBase64URL.toBuffer(assertion.authenticatorData);
  const { rpIdHash: received, flags, counter } = parseAuthenticatorData(authData);
  if (!Buffer.from(received).equals(rpIdHash(input.expectedRPID))) throw new Error('Unexpected RP ID hash');
  if (!flags.up) throw new Error('User not present during authentication');
  if (input.requireUserVerification && !flags.uv) {
    throw new Error('User verification required, but user could not be verified');
  }
  if (!flags.be && flags.bs) {
    throw new Error('Single-device credential indicated that it was backed up, which should be impossible.');
  }
  const clientDataHash = createHash('sha256')
    .update(isoBase64URL.toBuffer(assertion.clientDataJSON))
    .digest();
  const signature = isoBase64URL.toBuffer(assertion.signature);
  let verified: boolean;
  try {
    verified = await verifyInPool('sha256', Buffer.concat([authData, clientDataHash]), key, signature);
  } catch {
    verified = false; // a signature that is not DER
  }
  return { verified, newCounter: counter, userVerified: flags.uv };
}
