// The TPM side of device trust on the server, shared by enrollment (DeviceTrustService, and
// auto-enrollment inside a login) and by device authentication at login:
//
// Enrollment (TPM 2.0 Part 1 §24, credential protection):
//   1. The device sends its EK (certificate, or public area) and its AK's public area.
//   2. The EK certificate must chain to `device_trust.ekcert_allowed_cas` when that is set (and a TPM
//      without a certificate is then refused); the AK must be a restricted signing key.
//   3. MakeCredential seals a random secret to that EK for the AK's name: only the TPM holding both can
//      activate it. A nonce for a quote goes with it.
//   4. The device answers with the activated secret and a quote over the nonce, signed by the AK.
// Authentication: a nonce; the device answers with a quote by its enrolled AK.
//
// What step 4 needs from step 1 travels in the challenge payload (auth/challenges.ts), stored server side.
import { createHash, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type { DeviceChallenge, DeviceChallengeResponse, DeviceData } from '../../proto/gen/keyport/v1/device';
import { checkAttestationKey, spkiFingerprint, verifyEkCertificate, verifyQuote } from '../tpm/attestation';
import { makeCredential } from '../tpm/credential';
import { TpmFormatError } from '../tpm/errors';
import { parseTpmtPublic, publicKeyOf } from '../tpm/structures';
import type { AuthPayload, EnrollPayload } from './payloads';

export const OS_TYPES = ['linux', 'macos', 'windows'] as const;
export type OsType = (typeof OS_TYPES)[number];

/** A credential's id: base64url(SHA-256(the AK's TPMT_PUBLIC)), the same on client and server. */
export function credentialIdOf(akPublic: Uint8Array): string {
  return createHash('sha256').update(akPublic).digest('base64url');
}

const ASSET_TAG = /^[\x21-\x7e]{1,64}$/;

export function checkAssetTag(value: string, fieldPath: string): string {
  if (!ASSET_TAG.test(value)) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'An asset tag is 1 to 64 printable ASCII characters without spaces (`keyport device asset-tag`).',
      { fieldPath },
    );
  }
  return value;
}

export function checkOsType(value: string, fieldPath: string): OsType {
  const os = value.toLowerCase();
  if (!(OS_TYPES as readonly string[]).includes(os)) {
    throw new KeyportError('INVALID_ARGUMENT', `The OS must be one of ${OS_TYPES.join(', ')}.`, {
      fieldPath,
    });
  }
  return os as OsType;
}

interface EnrollmentStart {
  challenge: DeviceChallenge;
  payload: EnrollPayload;
}

/**
 * Steps 2 and 3: checks the device's EK and AK and seals a secret to them. `fieldPrefix` names where the
 * DeviceData sits in the request (`device`, or `device.enroll` in a login).
 */
export function beginTpmEnrollment(
  data: DeviceData,
  options: {
    deviceId: string;
    allowedEkCas: string[];
    now: number;
    fieldPrefix: string;
    tokenHash?: string;
    register?: { assetTag: string; osType: string };
  },
): EnrollmentStart {
  const at = (field: string) => `${options.fieldPrefix}.${field}`;
  if (data.akPublic.length === 0) {
    throw new KeyportError('INVALID_ARGUMENT', 'The attestation key is missing.', {
      fieldPath: at('ak_public'),
    });
  }
  // The AK: a restricted signing key that never left its TPM.
  const ak = checkAttestationKey(data.akPublic, at('ak_public'));
  // The EK: its certificate when the TPM has one (checked against the allowed CAs when they are set).
  const ek = endorsementKey(data, options.allowedEkCas, options.now, at);
  // MakeCredential for that EK and the AK's name, and a nonce for the quote.
  const secret = randomBytes(32);
  const nonce = randomBytes(32);
  const made = makeCredential({ ekPublic: ek.key, akName: ak.name, credential: secret });
  return {
    challenge: {
      nonce,
      credentialBlob: Buffer.from(made.credential),
      encryptedSecret: Buffer.from(made.secret),
    },
    payload: {
      kind: 'enroll',
      deviceId: options.deviceId,
      credentialId: credentialIdOf(data.akPublic),
      akPublic: Buffer.from(data.akPublic).toString('base64'),
      ekFingerprint: ek.fingerprint,
      ekCertificatePem: ek.certificatePem,
      secretHash: createHash('sha256').update(secret).digest('base64'),
      nonce: nonce.toString('base64'),
      ...(options.tokenHash ? { tokenHash: options.tokenHash } : {}),
      ...(options.register ? { register: options.register } : {}),
    },
  };
}

function endorsementKey(
  data: DeviceData,
  allowedCas: string[],
  now: number,
  at: (field: string) => string,
): { key: ReturnType<typeof publicKeyOf>; fingerprint: string; certificatePem: string | null } {
  if (data.ekCertificate.length > 0) {
    if (allowedCas.length > 0) {
      const verified = verifyEkCertificate(data.ekCertificate, allowedCas, new Date(now));
      return { ...verified, certificatePem: toPem(data.ekCertificate) };
    }
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(data.ekCertificate));
    } catch {
      throw new TpmFormatError(at('ek_certificate'), 'not a DER X.509 certificate');
    }
    return {
      key: cert.publicKey,
      fingerprint: spkiFingerprint(cert.publicKey),
      certificatePem: cert.toString(),
    };
  }
  if (allowedCas.length > 0) {
    throw new KeyportError(
      'ACCESS_DENIED',
      'This cluster accepts only TPMs with an EK certificate from an allowed manufacturer, and this TPM has none.',
      { fieldPath: at('ek_certificate') },
    );
  }
  if (data.ekPublic.length === 0) {
    throw new KeyportError('INVALID_ARGUMENT', 'The endorsement key is missing.', {
      fieldPath: at('ek_public'),
    });
  }
  const key = publicKeyOf(parseTpmtPublic(data.ekPublic, at('ek_public')), at('ek_public'));
  return { key, fingerprint: spkiFingerprint(key), certificatePem: null };
}

function toPem(der: Uint8Array): string {
  return new X509Certificate(Buffer.from(der)).toString();
}

const refusal = (message: string, fieldPath: string) =>
  new KeyportError('ACCESS_DENIED', message, { fieldPath });

/** Step 4 of enrollment: the activated secret matches, and the quote is the AK's over the nonce. */
export function finishTpmEnrollment(
  payload: EnrollPayload,
  response: DeviceChallengeResponse | undefined,
  fieldPrefix: string,
): void {
  const secret = response?.activatedSecret ?? new Uint8Array();
  const expected = Buffer.from(payload.secretHash, 'base64');
  const actual = createHash('sha256').update(secret).digest();
  if (secret.length === 0 || !timingSafeEqual(expected, actual)) {
    throw refusal(
      'The TPM did not activate the enrollment credential: this is not the TPM whose keys were sent.',
      `${fieldPrefix}.activated_secret`,
    );
  }
  checkQuote(payload.akPublic, payload.nonce, response, fieldPrefix);
}

/** Device authentication: a quote over the nonce by the enrolled AK. */
export function verifyDeviceQuote(
  akPublic: string,
  payload: AuthPayload,
  response: DeviceChallengeResponse | undefined,
  fieldPrefix: string,
): void {
  checkQuote(akPublic, payload.nonce, response, fieldPrefix);
}

function checkQuote(
  akPublic: string,
  nonce: string,
  response: DeviceChallengeResponse | undefined,
  fieldPrefix: string,
): void {
  const quote = response?.quote;
  if (!quote || quote.attest.length === 0 || quote.signature.length === 0) {
    throw new KeyportError('INVALID_ARGUMENT', 'The device did not answer with a TPM quote.', {
      fieldPath: `${fieldPrefix}.quote`,
    });
  }
  verifyQuote({
    akPublic: Buffer.from(akPublic, 'base64'),
    attest: quote.attest,
    signature: quote.signature,
    nonce: Buffer.from(nonce, 'base64'),
  });
}

/** A nonce for device authentication. */
export function newDeviceNonce(): Buffer {
  return randomBytes(32);
}
