// WebAuthn JSON options → CTAP2 requests, and CTAP2 responses → WebAuthn JSON responses. Pure: no I/O.
import { createPublicKey } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { attestationObject, COSE_ALG } from '../hardware/fido/ctap2';
import type {
  AssertionResponse,
  CredentialDescriptor,
  CredentialParameters,
  MakeCredentialResponse,
  UserEntity,
} from '../hardware/fido/ctap2';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
  UserVerificationRequirement,
} from './types';

/** What this client's transports are: USB HID (the lab socket stands in for one). */
export const TRANSPORTS: AuthenticatorTransport[] = ['usb'];
/** The algorithms the client can hand to a key and encode back (COSE). */
const SUPPORTED_ALGS: readonly number[] = [COSE_ALG.ES256, COSE_ALG.EDDSA, COSE_ALG.RS256];

function invalid(what: string): KeyportError {
  return new KeyportError(
    'INVALID_ARGUMENT',
    `The cluster sent WebAuthn options this client cannot use (${what}).`,
  );
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function fromBase64url(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || !BASE64URL.test(value) || value.length % 4 === 1) throw invalid(what);
  return new Uint8Array(Buffer.from(value, 'base64url'));
}

export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(what);
  return value;
}

function userVerification(value: unknown): UserVerificationRequirement {
  if (value === undefined) return 'preferred';
  if (value === 'required' || value === 'preferred' || value === 'discouraged') return value;
  throw invalid('userVerification');
}

function descriptors(value: unknown, what: string): CredentialDescriptor[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(what);
  const out: CredentialDescriptor[] = [];
  for (const item of value as unknown[]) {
    if (!isObject(item)) throw invalid(what);
    // §5.10.3: descriptors of an unknown type are ignored.
    if (item.type !== 'public-key') continue;
    out.push({ type: 'public-key', id: fromBase64url(item.id, `${what}[].id`) });
  }
  return out;
}

/** Accepts the options object or the JSON string the auth API carries. */
function toObject(value: unknown, what: string): Record<string, unknown> {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw invalid(`${what} is not JSON`);
    }
  }
  // The L3 JSON may arrive wrapped as {publicKey: {...}} (CredentialCreationOptions).
  if (isObject(parsed) && isObject(parsed.publicKey) && parsed.challenge === undefined)
    parsed = parsed.publicKey;
  if (!isObject(parsed)) throw invalid(`${what} is not an object`);
  return parsed;
}

export interface RegistrationPlan {
  challenge: string;
  rp: { id: string; name?: string };
  user: UserEntity;
  pubKeyCredParams: CredentialParameters[];
  excludeList: CredentialDescriptor[];
  residentKey: 'required' | 'preferred' | 'discouraged';
  userVerification: UserVerificationRequirement;
  credProps: boolean;
  timeoutMs?: number;
}

/**
 * Reads PublicKeyCredentialCreationOptionsJSON (object or string). The RP ID defaults to the origin's
 * host (§5.1.3 step 7) and must be that host or a registrable suffix of it (checked against `origin`).
 */
export function planRegistration(
  options: PublicKeyCredentialCreationOptionsJSON | string,
  originHostname: string,
): RegistrationPlan {
  const o = toObject(options, 'creation options');
  if (typeof o.challenge !== 'string' || fromBase64url(o.challenge, 'challenge').length < 16)
    throw invalid('challenge');
  if (!isObject(o.rp)) throw invalid('rp');
  const rpId = optionalString(o.rp.id, 'rp.id') ?? originHostname;
  checkRpId(rpId, originHostname);
  if (!isObject(o.user)) throw invalid('user');
  const userId = fromBase64url(o.user.id, 'user.id');
  if (userId.length < 1 || userId.length > 64) throw invalid('user.id must be 1 to 64 bytes');
  if (!Array.isArray(o.pubKeyCredParams)) throw invalid('pubKeyCredParams');
  const params: CredentialParameters[] = [];
  for (const p of o.pubKeyCredParams as unknown[]) {
    if (!isObject(p) || typeof p.alg !== 'number') throw invalid('pubKeyCredParams[]');
    if (p.type === 'public-key' && SUPPORTED_ALGS.includes(p.alg))
      params.push({ type: 'public-key', alg: p.alg });
  }
  // §5.1.3 step 10: an empty list means ES256 and RS256.
  if ((o.pubKeyCredParams as unknown[]).length === 0)
    params.push({ type: 'public-key', alg: COSE_ALG.ES256 }, { type: 'public-key', alg: COSE_ALG.RS256 });
  if (params.length === 0)
    throw new KeyportError(
      'PRECONDITION_FAILED',
      'The cluster asks for a signature algorithm no security key here supports.',
    );
  const selection = isObject(o.authenticatorSelection) ? o.authenticatorSelection : {};
  let residentKey: RegistrationPlan['residentKey'];
  if (
    selection.residentKey === 'required' ||
    selection.residentKey === 'preferred' ||
    selection.residentKey === 'discouraged'
  )
    residentKey = selection.residentKey;
  else residentKey = selection.requireResidentKey === true ? 'required' : 'discouraged';
  const extensions = isObject(o.extensions) ? o.extensions : {};
  return {
    challenge: o.challenge,
    rp: { id: rpId, name: optionalString(o.rp.name, 'rp.name') },
    user: {
      id: userId,
      name: optionalString(o.user.name, 'user.name'),
      displayName: optionalString(o.user.displayName, 'user.displayName'),
    },
    pubKeyCredParams: params,
    excludeList: descriptors(o.excludeCredentials, 'excludeCredentials'),
    residentKey,
    userVerification: userVerification(selection.userVerification),
    credProps: extensions.credProps === true,
    timeoutMs: typeof o.timeout === 'number' && o.timeout > 0 ? o.timeout : undefined,
  };
}

export interface AssertionPlan {
  challenge: string;
  rpId: string;
  allowList: CredentialDescriptor[];
  userVerification: UserVerificationRequirement;
  timeoutMs?: number;
}

export function planAssertion(
  options: PublicKeyCredentialRequestOptionsJSON | string,
  originHostname: string,
): AssertionPlan {
  const o = toObject(options, 'request options');
  if (typeof o.challenge !== 'string' || fromBase64url(o.challenge, 'challenge').length < 16)
    throw invalid('challenge');
  const rpId = optionalString(o.rpId, 'rpId') ?? originHostname;
  checkRpId(rpId, originHostname);
  return {
    challenge: o.challenge,
    rpId,
    allowList: descriptors(o.allowCredentials, 'allowCredentials'),
    userVerification: userVerification(o.userVerification),
    timeoutMs: typeof o.timeout === 'number' && o.timeout > 0 ? o.timeout : undefined,
  };
}

/**
 * §5.1.3 step 8 / §5.1.4.1 step 9: the RP ID is the origin's host or a registrable domain suffix of
 * it. (Without a public-suffix list, a suffix must still contain a dot, or be the whole host.)
 */
export function checkRpId(rpId: string, originHostname: string): void {
  const host = originHostname.toLowerCase();
  const id = rpId.toLowerCase();
  if (id === host) return;
  if (id.includes('.') && host.endsWith(`.${id}`)) return;
  throw new KeyportError(
    'INVALID_ARGUMENT',
    `The cluster's WebAuthn RP ID "${rpId}" does not match its address ${originHostname}. Check webauthn.rp_id in cluster_auth_preference.`,
  );
}

/** SPKI DER of a COSE EC2 P-256 key, for response.publicKey (§5.2.1 getPublicKey). */
function spkiOf(made: MakeCredentialResponse): Uint8Array | undefined {
  const key = made.authData.attestedCredentialData?.credentialPublicKey;
  if (!key || key.kty !== 2 || key.crv !== 1 || !key.x || !key.y) return undefined;
  const der = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: toBase64url(key.x), y: toBase64url(key.y) },
    format: 'jwk',
  }).export({ type: 'spki', format: 'der' });
  return new Uint8Array(der);
}

export function registrationResponse(
  made: MakeCredentialResponse,
  clientData: Uint8Array,
  rk: boolean,
): RegistrationResponseJSON {
  const attested = made.authData.attestedCredentialData;
  if (!attested) throw invalid('the key returned no credential');
  const id = toBase64url(attested.credentialId);
  const spki = spkiOf(made);
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: {
      clientDataJSON: toBase64url(clientData),
      attestationObject: toBase64url(attestationObject(made)),
      authenticatorData: toBase64url(made.authDataBytes),
      transports: [...TRANSPORTS],
      ...(attested.credentialPublicKey.alg !== undefined
        ? { publicKeyAlgorithm: attested.credentialPublicKey.alg }
        : {}),
      ...(spki ? { publicKey: toBase64url(spki) } : {}),
    },
    authenticatorAttachment: 'cross-platform',
    // credProps is always reported: the relying party marks resident keys (passkeys) from it.
    clientExtensionResults: { credProps: { rk } },
  };
}

export function authenticationResponse(
  assertion: AssertionResponse,
  clientData: Uint8Array,
): AuthenticationResponseJSON {
  if (!assertion.credential) throw invalid('the key did not name its credential');
  const id = toBase64url(assertion.credential.id);
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: {
      clientDataJSON: toBase64url(clientData),
      authenticatorData: toBase64url(assertion.authDataBytes),
      signature: toBase64url(assertion.signature),
      ...(assertion.user && assertion.user.id.length > 0
        ? { userHandle: toBase64url(assertion.user.id) }
        : {}),
    },
    authenticatorAttachment: 'cross-platform',
    clientExtensionResults: {},
  };
}
