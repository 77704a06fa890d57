// Verification of what a TPM presents: its attestation key (a restricted signing key), a quote signed
// by that key over a server nonce, and its EK certificate. Malformed bytes are TpmFormatErrors
// (INVALID_ARGUMENT); everything well-formed but unacceptable is a TpmRefusal (ACCESS_DENIED) with a
// reason — see errors.ts.
import { X509Certificate, constants, createHash, timingSafeEqual, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { TpmFormatError, TpmRefusal } from './errors';
import {
  HASHES,
  TPMA_OBJECT,
  TPM_ALG,
  TPM_ECC,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_QUOTE,
  curveSize,
  parseTpmsAttest,
  parseTpmtPublic,
  parseTpmtSignature,
  publicKeyOf,
  tpmName,
} from './structures';
import type { TpmsAttest, TpmtPublic } from './structures';

export interface AttestationKey {
  public: TpmtPublic;
  /** The marshalled TPMT_PUBLIC it was read from. */
  publicBytes: Uint8Array;
  name: Uint8Array;
  key: KeyObject;
}

const REQUIRED_AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.sign;
const AK_NAME_ALGS = new Set<number>([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
const AK_SIGNING_HASHES = AK_NAME_ALGS;

/**
 * Accepts a marshalled TPMT_PUBLIC as an attestation key: a restricted signing key that never left its
 * TPM (fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign; not decrypt), being
 * ECC NIST P-256/P-384 with ECDSA, or RSA ≥ 2048 with RSASSA/RSAPSS, hashed with SHA-256/384/512.
 */
export function checkAttestationKey(publicBytes: Uint8Array, fieldPath = 'ak_public'): AttestationKey {
  const p = parseTpmtPublic(publicBytes, fieldPath);
  const a = p.objectAttributes;
  if ((a & REQUIRED_AK_ATTRIBUTES) !== REQUIRED_AK_ATTRIBUTES || (a & TPMA_OBJECT.decrypt) !== 0) {
    throw new TpmRefusal(
      'not-restricted-signing-key',
      'the attestation key is not a restricted signing key bound to its TPM',
      fieldPath,
    );
  }
  const unsupported = (what: string): never => {
    throw new TpmRefusal(
      'unsupported-algorithm',
      `the attestation key's ${what} is not supported`,
      fieldPath,
    );
  };
  if (!AK_NAME_ALGS.has(p.nameAlg)) unsupported('nameAlg');
  if (p.scheme.hashAlg === undefined || !AK_SIGNING_HASHES.has(p.scheme.hashAlg)) unsupported('signing hash');
  if (p.type === TPM_ALG.ECC) {
    if (p.curveId !== TPM_ECC.NIST_P256 && p.curveId !== TPM_ECC.NIST_P384) unsupported('curve');
    if (p.scheme.scheme !== TPM_ALG.ECDSA) unsupported('signature scheme');
  } else {
    if (p.keyBits < 2048 || p.keyBits > 4096 || p.unique.length * 8 !== p.keyBits)
      unsupported('RSA key size');
    if (p.scheme.scheme !== TPM_ALG.RSASSA && p.scheme.scheme !== TPM_ALG.RSAPSS)
      unsupported('signature scheme');
  }
  const key = publicKeyOf(p, fieldPath);
  return { public: p, publicBytes: Uint8Array.from(publicBytes), name: tpmName(publicBytes, fieldPath), key };
}

function unpad(value: Uint8Array, size: number): Buffer | undefined {
  let v = value;
  while (v.length > size && v[0] === 0) v = v.subarray(1);
  if (v.length > size) return undefined;
  const out = Buffer.alloc(size);
  out.set(v, size - v.length);
  return out;
}

/** Whether `signature` (marshalled TPMT_SIGNATURE) is the AK's signature over `message`. */
function signatureVerifies(ak: AttestationKey, message: Uint8Array, signature: Uint8Array): boolean {
  const sig = parseTpmtSignature(signature, 'signature');
  const p = ak.public;
  if (sig.sigAlg !== p.scheme.scheme || sig.hashAlg !== p.scheme.hashAlg) return false;
  const hash = HASHES.get(sig.hashAlg)!.name;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      const size = p.type === TPM_ALG.ECC ? curveSize(p.curveId) : undefined;
      const r = size === undefined ? undefined : unpad(sig.r, size);
      const s = size === undefined ? undefined : unpad(sig.s, size);
      if (!r || !s) return false;
      return verify(hash, message, { key: ak.key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
    }
    const padding =
      sig.sigAlg === TPM_ALG.RSAPSS
        ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
        : { padding: constants.RSA_PKCS1_PADDING };
    return verify(hash, message, { key: ak.key, ...padding }, sig.sig);
  } catch {
    return false;
  }
}

export interface VerifyQuoteInput {
  /** The AK: its marshalled TPMT_PUBLIC, or the result of checkAttestationKey. */
  akPublic: Uint8Array | AttestationKey;
  /** Marshalled TPMS_ATTEST (contents of TPM2B_ATTEST). */
  attest: Uint8Array;
  /** Marshalled TPMT_SIGNATURE. */
  signature: Uint8Array;
  /** The nonce the server issued; must equal extraData. */
  nonce: Uint8Array;
}

/**
 * Verifies a TPM2_Quote: the AK is a restricted signing key, the attest starts with TPM_GENERATED_VALUE,
 * the signature over the raw attest verifies with the AK (before any parsing), it is a quote, and
 * extraData equals the nonce. Returns the parsed TPMS_ATTEST (the caller judges pcrSelect/pcrDigest
 * and clockInfo).
 */
export function verifyQuote(input: VerifyQuoteInput): TpmsAttest {
  const ak = input.akPublic instanceof Uint8Array ? checkAttestationKey(input.akPublic) : input.akPublic;
  const a = input.attest;
  if (a.length < 4 || ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0 !== TPM_GENERATED_VALUE) {
    throw new TpmRefusal('bad-magic', 'the attestation was not generated by a TPM', 'attest');
  }
  // The signature first, over the raw bytes: anything tampered with is a bad signature, and only bytes
  // the AK signed are parsed.
  if (!signatureVerifies(ak, a, input.signature)) {
    throw new TpmRefusal(
      'bad-signature',
      'the quote signature does not verify with the attestation key',
      'signature',
    );
  }
  const attest = parseTpmsAttest(a, 'attest');
  if (attest.type !== TPM_ST_ATTEST_QUOTE || attest.attested.kind !== 'quote') {
    throw new TpmRefusal('not-a-quote', 'the attestation is not a quote', 'attest');
  }
  const extra = attest.extraData;
  const nonceMatches = extra.length === input.nonce.length && timingSafeEqual(extra, input.nonce);
  if (!nonceMatches) throw new TpmRefusal('nonce-mismatch', 'the quote is not over this challenge', 'attest');
  return attest;
}

export interface VerifiedEk {
  key: KeyObject;
  /** `sha256:<hex>` of the certificate's SubjectPublicKeyInfo (DER). */
  fingerprint: string;
}

/** sha256:<hex> of a public key's SubjectPublicKeyInfo. */
export function spkiFingerprint(key: KeyObject): string {
  return `sha256:${createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
}

function within(cert: X509Certificate, now: Date): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= now.getTime() && now.getTime() <= to;
}

/**
 * Verifies an EK certificate (DER) against the allowed manufacturer CAs (PEM): issued and signed by one
 * of them (the direct issuer; a CA certificate, valid at `now`), itself valid at `now`, with an RSA key of
 * 2048 bits or more. Returns the EK public key and its SPKI fingerprint. OpenSSL parses it, which takes
 * TPM EK certificates as they are (empty subject, critical SAN with a directoryName, TCG extensions).
 */
export function verifyEkCertificate(der: Uint8Array, allowedCasPem: string[], now: Date): VerifiedEk {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der));
  } catch {
    throw new TpmFormatError('ek_certificate', 'not a DER X.509 certificate');
  }
  const refuse = (why: string): never => {
    throw new TpmRefusal('ek-certificate-untrusted', `the EK certificate ${why}`, 'ek_certificate');
  };
  const issuer = allowedCasPem
    .map((pem) => new X509Certificate(pem))
    .find((ca) => {
      try {
        return ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey) && within(ca, now);
      } catch {
        return false;
      }
    });
  if (!issuer) refuse('is not issued by an allowed TPM manufacturer CA');
  if (!within(cert, now)) refuse('is outside its validity period');
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    refuse('does not carry an RSA key of 2048 bits or more');
  }
  return { key, fingerprint: spkiFingerprint(key) };
}
