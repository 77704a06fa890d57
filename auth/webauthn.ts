// The WebAuthn relying party. Every signature, attestation statement and authenticator-data check is
// @simplewebauthn/server's, save an ES256 key's assertion, which webauthn-assertion.ts checks the same way
// with synchronous node:crypto (tested against the library); this file decides what to ask for and accept:
//
// - origin: `https://<rp_id>` or `https://<subdomain of rp_id>`; for the gRPC API (whose clients are not
//   browsers and name the cluster's public address), any port; for the web UI (auth/web/), exactly the
//   web UI's configured origins (the library only compares strings, so the origin is checked here first
//   and then handed to it as the one expected origin);
// - attestation: requested ('direct') only when the cap lists attestation CAs; then `none` and self
//   attestation are refused, some certificate of x5c must chain to an allowed CA (and the allowed CAs are
//   the library's trust anchors, so it validates the whole path too), and no certificate may chain to a
//   denied CA;
// - sign counter: a counter that does not rise (when the key keeps one) is REFUSED. It is the one sign
//   that a credential was cloned; a real key never goes backwards. The caller audits it as
//   `mfa.counter_regression`, which admins see in the audit log.
import { X509Certificate } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  SettingsService,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeAttestationObject, decodeClientDataJSON, isoBase64URL } from '@simplewebauthn/server/helpers';
import { KeyportError } from '../proto/errors';
import type { ClusterPolicy } from './policy';
import type { MfaDeviceRow } from './storage/store';
import { verifyEs256Assertion } from './webauthn-assertion';

/** What the relying party needs from the cap. */
export interface RelyingParty {
  rpId: string;
  rpName: string;
  allowedCas: string[];
  deniedCas: string[];
  /** When given, the only origins accepted (exact match): the web UI's. */
  origins?: readonly string[];
}

/** The relying party of the cluster; PRECONDITION_FAILED when WebAuthn is not a second factor here. */
export function relyingParty(
  cap: ClusterPolicy,
  clusterName: string,
  origins?: readonly string[],
): RelyingParty {
  if (!cap.secondFactors.includes('webauthn') || !cap.webauthn) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      'Security keys (WebAuthn) are not enabled on this cluster: its second_factors lack webauthn.',
    );
  }
  return {
    rpId: cap.webauthn.rp_id,
    rpName: clusterName,
    allowedCas: cap.webauthn.attestation_allowed_cas,
    deniedCas: cap.webauthn.attestation_denied_cas,
    ...(origins ? { origins } : {}),
  };
}

export function webauthnEnabled(cap: ClusterPolicy): boolean {
  return cap.secondFactors.includes('webauthn') && cap.webauthn !== undefined;
}

/** `https://` and the rp_id host or one of its subdomains, any port; nothing else. */
export function originAllowed(origin: string, rpId: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' || url.origin !== origin) return false;
  const host = url.hostname.toLowerCase();
  const rp = rpId.toLowerCase();
  return host === rp || host.endsWith(`.${rp}`);
}

const failed = (message: string) => new KeyportError('MFA_FAILED', message);
const denied = (message: string) => new KeyportError('ACCESS_DENIED', message);

// ---------------------------------------------------------------------------------------------------
// Registration

export async function registrationOptions(input: {
  rp: RelyingParty;
  userName: string;
  /** base64url user handle. */
  userHandle: string;
  challenge: Uint8Array<ArrayBuffer>;
  existing: readonly MfaDeviceRow[];
  passwordless: boolean;
}): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { rp, passwordless } = input;
  return generateRegistrationOptions({
    rpName: rp.rpName,
    rpID: rp.rpId,
    userName: input.userName,
    userID: isoBase64URL.toBuffer(input.userHandle),
    challenge: input.challenge,
    attestationType: attestationCasConfigured(rp) ? 'direct' : 'none',
    excludeCredentials: input.existing
      .filter((d) => d.type === 'webauthn' && d.webauthn_credential_id)
      .map((d) => ({ id: d.webauthn_credential_id as string })),
    authenticatorSelection: passwordless
      ? { residentKey: 'required', requireResidentKey: true, userVerification: 'required' }
      : { residentKey: 'discouraged', userVerification: 'discouraged' },
  });
}

export interface NewCredential {
  credentialId: string;
  /** base64url COSE public key. */
  publicKey: string;
  counter: number;
  aaguid: string;
  passkey: boolean;
}

/** The mfa_devices row for a verified new security key. */
export function webauthnDeviceRow(
  credential: NewCredential,
  device: { id: string; user: string; name: string; nowMs: number },
) {
  return {
    id: device.id,
    user: device.user,
    name: device.name,
    type: 'webauthn' as const,
    added_ms: device.nowMs,
    last_used_ms: null,
    totp_secret: null,
    totp_last_step: null,
    webauthn_credential_id: credential.credentialId,
    webauthn_public_key: credential.publicKey,
    webauthn_sign_count: credential.counter,
    webauthn_aaguid: credential.aaguid,
    passkey: credential.passkey ? 1 : 0,
  };
}

export async function verifyRegistration(input: {
  rp: RelyingParty;
  responseJson: string;
  expectedChallenge: string;
  passwordless: boolean;
}): Promise<NewCredential> {
  const { rp } = input;
  const response = parseJson<RegistrationResponseJSON>(input.responseJson, 'webauthn_json');
  if (typeof response.response?.attestationObject !== 'string') {
    throw new KeyportError('INVALID_ARGUMENT', 'The registration response has no attestation object.', {
      fieldPath: 'webauthn_json',
    });
  }
  const origin = checkedOrigin(response.response.clientDataJSON, rp);
  if (attestationCasConfigured(rp)) checkAttestationPolicy(response.response.attestationObject, rp);
  let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    verified = await withAttestationRoots(rp.allowedCas, () =>
      verifyRegistrationResponse({
        response,
        expectedChallenge: input.expectedChallenge,
        expectedOrigin: origin,
        expectedRPID: rp.rpId,
        requireUserPresence: true,
        requireUserVerification: input.passwordless,
      }),
    );
  } catch (error) {
    throw libraryRefusal(error, 'registration');
  }
  if (!verified.verified) throw failed('The security key registration could not be verified.');
  const info = verified.registrationInfo;
  const rk = response.clientExtensionResults?.credProps?.rk === true;
  return {
    credentialId: info.credential.id,
    publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
    counter: info.credential.counter,
    aaguid: info.aaguid,
    passkey: rk || input.passwordless,
  };
}

function attestationCasConfigured(rp: RelyingParty): boolean {
  return rp.allowedCas.length > 0 || rp.deniedCas.length > 0;
}

/** fmt and x5c against the cap's CAs, before the library checks the statement's signature and path. */
function checkAttestationPolicy(attestationObjectB64: string, rp: RelyingParty): void {
  let fmt: string;
  let x5c: Uint8Array[] | undefined;
  try {
    const decoded = decodeAttestationObject(isoBase64URL.toBuffer(attestationObjectB64));
    fmt = decoded.get('fmt');
    x5c = decoded.get('attStmt').get('x5c');
  } catch {
    throw new KeyportError('INVALID_ARGUMENT', 'The attestation object is not valid CBOR.', {
      fieldPath: 'webauthn_json',
    });
  }
  if (fmt === 'none') {
    throw denied(
      'This cluster only accepts security keys with a verifiable attestation, and this key sent none.',
    );
  }
  if (!x5c || x5c.length === 0) {
    throw denied('This cluster only accepts attested security keys, and this key sent self attestation.');
  }
  let chain: X509Certificate[];
  try {
    chain = x5c.map((der) => new X509Certificate(Buffer.from(der)));
  } catch {
    throw denied('The attestation certificate chain cannot be parsed.');
  }
  const allowed = parseCas(rp.allowedCas);
  const deniedCas = parseCas(rp.deniedCas);
  if (deniedCas.length > 0 && chain.some((cert) => deniedCas.some((ca) => chainsTo(cert, ca)))) {
    throw denied('This security key model is denied on this cluster (its attestation CA is denied).');
  }
  if (allowed.length > 0 && !chain.some((cert) => allowed.some((ca) => chainsTo(cert, ca)))) {
    throw denied(
      'This security key model is not allowed on this cluster (its attestation CA is not allowed).',
    );
  }
}

function parseCas(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of pems) {
    // A cap entry may hold several PEM blocks.
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      out.push(new X509Certificate(block));
    }
  }
  return out;
}

/** `cert` is the CA itself, or the CA signed it. */
function chainsTo(cert: X509Certificate, ca: X509Certificate): boolean {
  if (cert.raw.equals(ca.raw)) return true;
  try {
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

const ROOT_IDENTIFIERS = ['packed', 'fido-u2f', 'tpm', 'android-key'] as const;
let rootsLock: Promise<unknown> = Promise.resolve();

/**
 * The library reads its trust anchors from process-wide settings; verifications are serialised so one
 * call's anchors are the ones in force while it runs. No anchors (nothing allowed) means the library
 * checks no path, which is right: then only the denied list (checked above) applies.
 */
function withAttestationRoots<T>(allowedCas: readonly string[], work: () => Promise<T>): Promise<T> {
  const run = async () => {
    for (const identifier of ROOT_IDENTIFIERS) {
      SettingsService.setRootCertificates({ identifier, certificates: [...allowedCas] });
    }
    return work();
  };
  const result = rootsLock.then(run, run);
  rootsLock = result.catch(() => undefined);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Authentication

export async function authenticationOptions(input: {
  rp: RelyingParty;
  challenge: Uint8Array<ArrayBuffer>;
  /** The user's keys; empty for passwordless (discoverable credentials). */
  devices: readonly MfaDeviceRow[];
  userVerification: 'required' | 'discouraged';
}): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({
    rpID: input.rp.rpId,
    challenge: input.challenge,
    allowCredentials: input.devices
      .filter((d) => d.type === 'webauthn' && d.webauthn_credential_id)
      .map((d) => ({ id: d.webauthn_credential_id as string })),
    userVerification: input.userVerification,
  });
}

export function parseAssertion(json: string): AuthenticationResponseJSON {
  const response = parseJson<AuthenticationResponseJSON>(json, 'webauthn_json');
  if (
    typeof response.id !== 'string' ||
    typeof response.response?.clientDataJSON !== 'string' ||
    typeof response.response.authenticatorData !== 'string' ||
    typeof response.response.signature !== 'string'
  ) {
    throw new KeyportError('INVALID_ARGUMENT', 'The security key response is incomplete.', {
      fieldPath: 'webauthn_json',
    });
  }
  return response;
}

export type AssertionOutcome =
  | { ok: true; newCounter: number; userVerified: boolean }
  | { ok: false; counterRegression: { stored: number; received: number } };

/**
 * Verifies an assertion by `device` (the caller made sure the device belongs to the expected user).
 * The library's own counter check is bypassed (stored counter passed as 0) so a regression is told
 * apart from other failures: the caller audits it and refuses.
 */
export async function verifyAssertion(input: {
  rp: RelyingParty;
  response: AuthenticationResponseJSON;
  expectedChallenge: string;
  device: MfaDeviceRow;
  requireUserVerification: boolean;
}): Promise<AssertionOutcome> {
  const { rp, device } = input;
  const origin = checkedOrigin(input.response.response.clientDataJSON, rp);
  if (!device.webauthn_credential_id || !device.webauthn_public_key) {
    throw denied('This security key is not registered with this cluster.');
  }
  let result: { verified: boolean; newCounter: number; userVerified: boolean };
  try {
    result =
      (await verifyEs256Assertion({
        response: input.response,
        expectedChallenge: input.expectedChallenge,
        expectedOrigin: origin,
        expectedRPID: rp.rpId,
        credentialId: device.webauthn_credential_id,
        publicKey: device.webauthn_public_key,
        requireUserVerification: input.requireUserVerification,
      })) ?? (await libraryAssertion(input, origin));
  } catch (error) {
    throw libraryRefusal(error, 'authentication');
  }
  if (!result.verified) throw failed('The security key response could not be verified.');
  const stored = Number(device.webauthn_sign_count ?? 0);
  const received = result.newCounter;
  if ((stored > 0 || received > 0) && received <= stored) {
    return { ok: false, counterRegression: { stored, received } };
  }
  return { ok: true, newCounter: received, userVerified: result.userVerified };
}

/** Any other key algorithm (RS256, EdDSA, ES384 …): the library's asynchronous verification. */
async function libraryAssertion(
  input: Parameters<typeof verifyAssertion>[0],
  origin: string,
): Promise<{ verified: boolean; newCounter: number; userVerified: boolean }> {
  const { rp, device } = input;
  const result = await verifyAuthenticationResponse({
    response: input.response,
    expectedChallenge: input.expectedChallenge,
    expectedOrigin: origin,
    expectedRPID: rp.rpId,
    credential: {
      id: device.webauthn_credential_id ?? '',
      publicKey: isoBase64URL.toBuffer(device.webauthn_public_key ?? ''),
      counter: 0,
    },
    requireUserVerification: input.requireUserVerification,
  });
  return {
    verified: result.verified,
    newCounter: result.authenticationInfo.newCounter,
    userVerified: result.authenticationInfo.userVerified,
  };
}

// ---------------------------------------------------------------------------------------------------
// Shared

function parseJson<T>(json: string, fieldPath: string): T {
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value === 'object' && value !== null) return value as T;
  } catch {
    // reported below
  }
  throw new KeyportError('INVALID_ARGUMENT', 'The security key response is not WebAuthn JSON.', {
    fieldPath,
  });
}

/**
 * The clientDataJSON's origin, once it is the rp_id host or a subdomain over https, and one of the
 * relying party's exact origins when it names them.
 */
function checkedOrigin(clientDataJSON: unknown, rp: RelyingParty): string {
  const { rpId } = rp;
  let origin: unknown;
  try {
    origin = decodeClientDataJSON(String(clientDataJSON)).origin;
  } catch {
    throw new KeyportError('INVALID_ARGUMENT', 'The clientDataJSON of the response is not valid.', {
      fieldPath: 'webauthn_json',
    });
  }
  if (typeof origin !== 'string' || !originAllowed(origin, rpId)) {
    throw failed(
      `The security key was used for another site (${String(origin)}), not for https://${rpId}; sign in again.`,
    );
  }
  if (rp.origins && !rp.origins.includes(origin)) {
    throw failed(
      `The security key was used on ${origin}, which is not this cluster's web UI (${rp.origins.join(', ')}); sign in again.`,
    );
  }
  return origin;
}

/** The library throws plain Errors; each one is a refusal of the response, told as MFA_FAILED. */
function libraryRefusal(error: unknown, what: 'registration' | 'authentication'): KeyportError {
  if (error instanceof KeyportError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return failed(`The security key ${what} was refused: ${detail}`);
}
