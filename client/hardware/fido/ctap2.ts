// CTAP2 commands (CTAP 2.1 §6), pure: request builders and response parsers over canonical CBOR.
// Response parsers read the keys they know and ignore the others: later spec versions and vendors add
// members (CTAP 2.1 §6.4 getInfo grew from 2.0 to 2.1 this way), and a platform must keep working.
import { CborError, ctapMap, decodeCtap, decodeCtapPrefix, encodeCtap } from './cbor';
import type { CtapKey, CtapMap, CtapValue } from './cbor';

export const CTAP2_CMD = {
  MAKE_CREDENTIAL: 0x01,
  GET_ASSERTION: 0x02,
  GET_INFO: 0x04,
  CLIENT_PIN: 0x06,
  RESET: 0x07,
  GET_NEXT_ASSERTION: 0x08,
} as const;

/** CTAP 2.1 "Status codes" (Message Encoding); values as in libfido2's fido/err.h. */
export const CTAP2_STATUS = {
  OK: 0x00,
  INVALID_COMMAND: 0x01,
  INVALID_PARAMETER: 0x02,
  INVALID_LENGTH: 0x03,
  INVALID_SEQ: 0x04,
  TIMEOUT: 0x05,
  CHANNEL_BUSY: 0x06,
  LOCK_REQUIRED: 0x0a,
  INVALID_CHANNEL: 0x0b,
  CBOR_UNEXPECTED_TYPE: 0x11,
  INVALID_CBOR: 0x12,
  MISSING_PARAMETER: 0x14,
  LIMIT_EXCEEDED: 0x15,
  UNSUPPORTED_EXTENSION: 0x16, // CTAP 2.0
  FP_DATABASE_FULL: 0x17,
  LARGE_BLOB_STORAGE_FULL: 0x18,
  CREDENTIAL_EXCLUDED: 0x19,
  PROCESSING: 0x21,
  INVALID_CREDENTIAL: 0x22,
  USER_ACTION_PENDING: 0x23,
  OPERATION_PENDING: 0x24,
  NO_OPERATIONS: 0x25,
  UNSUPPORTED_ALGORITHM: 0x26,
  OPERATION_DENIED: 0x27,
  KEY_STORE_FULL: 0x28,
  NO_OPERATION_PENDING: 0x2a,
  UNSUPPORTED_OPTION: 0x2b,
  INVALID_OPTION: 0x2c,
  KEEPALIVE_CANCEL: 0x2d,
  NO_CREDENTIALS: 0x2e,
  USER_ACTION_TIMEOUT: 0x2f,
  NOT_ALLOWED: 0x30,
  PIN_INVALID: 0x31,
  PIN_BLOCKED: 0x32,
  PIN_AUTH_INVALID: 0x33,
  PIN_AUTH_BLOCKED: 0x34,
  PIN_NOT_SET: 0x35,
  PIN_REQUIRED: 0x36, // PUAT_REQUIRED in CTAP 2.1
  PIN_POLICY_VIOLATION: 0x37,
  PIN_TOKEN_EXPIRED: 0x38, // CTAP 2.0; reserved in 2.1
  REQUEST_TOO_LARGE: 0x39,
  ACTION_TIMEOUT: 0x3a,
  UP_REQUIRED: 0x3b,
  UV_BLOCKED: 0x3c,
  INTEGRITY_FAILURE: 0x3d,
  INVALID_SUBCOMMAND: 0x3e,
  UV_INVALID: 0x3f,
  UNAUTHORIZED_PERMISSION: 0x40,
  OTHER: 0x7f,
} as const;

export type Ctap2StatusName = keyof typeof CTAP2_STATUS;
/** A status name, or one of the errors found on the platform side. */
export type Ctap2ErrorCode =
  | Exclude<Ctap2StatusName, 'OK'>
  | 'UNKNOWN_STATUS'
  | 'INVALID_RESPONSE'
  | 'EMPTY_RESPONSE'
  | 'UNSUPPORTED_PIN_PROTOCOL';

const STATUS_NAMES = new Map<number, Ctap2StatusName>(
  Object.entries(CTAP2_STATUS).map(([name, value]) => [value, name as Ctap2StatusName]),
);

const MESSAGES: Partial<Record<Ctap2ErrorCode, string>> = {
  PIN_INVALID: 'Wrong PIN. Check the PIN of your security key and try again.',
  PIN_BLOCKED:
    'The PIN of your security key is blocked after too many wrong attempts. Reset the key to use it again.',
  PIN_AUTH_INVALID: 'The security key rejected the PIN authentication. Try again.',
  PIN_AUTH_BLOCKED:
    'The security key refuses PIN attempts until it is unplugged. Unplug it, plug it back in and try again.',
  PIN_NOT_SET: 'Your security key has no PIN. Set a PIN first.',
  PIN_REQUIRED: 'Your security key needs its PIN for this. Enter the PIN of your security key.',
  PIN_POLICY_VIOLATION:
    'The security key does not accept this PIN. Choose a longer PIN (at least 4 characters).',
  PIN_TOKEN_EXPIRED: 'The PIN session with your security key expired. Enter the PIN again.',
  NO_CREDENTIALS: 'This security key is not registered for this account. Try another key.',
  OPERATION_DENIED: 'The security key refused the request.',
  KEEPALIVE_CANCEL: 'The request was cancelled.',
  USER_ACTION_TIMEOUT: 'The security key was not touched in time. Try again and tap the key when it blinks.',
  ACTION_TIMEOUT: 'The security key was not touched in time. Try again and tap the key when it blinks.',
  UP_REQUIRED: 'The security key needs a touch. Try again and tap the key when it blinks.',
  UV_BLOCKED: 'User verification on the security key is blocked. Use its PIN instead.',
  UV_INVALID: 'User verification on the security key failed. Try again.',
  CREDENTIAL_EXCLUDED: 'This security key is already registered. Use another key.',
  KEY_STORE_FULL: 'The security key has no room for another passkey. Remove one and try again.',
  UNSUPPORTED_ALGORITHM: 'The security key does not support the requested signature algorithm.',
  UNSUPPORTED_OPTION: 'The security key does not support the requested option.',
  INVALID_OPTION: 'The security key rejected an option of the request.',
  UNAUTHORIZED_PERMISSION: 'The PIN session does not permit this operation. Enter the PIN again.',
  NOT_ALLOWED: 'The security key does not allow this operation now.',
  INVALID_CREDENTIAL: 'The security key rejected the credential.',
  LIMIT_EXCEEDED: 'The request exceeds a limit of the security key.',
  REQUEST_TOO_LARGE: 'The request is too large for the security key.',
  INVALID_RESPONSE: 'The security key sent a malformed answer. Unplug it, plug it back in and try again.',
  EMPTY_RESPONSE: 'The security key sent an empty answer. Unplug it, plug it back in and try again.',
  UNSUPPORTED_PIN_PROTOCOL:
    'This security key does not support PIN/UV auth protocol 2. Update its firmware or use another key.',
};

export class Ctap2Error extends Error {
  override readonly name = 'Ctap2Error';
  constructor(
    readonly code: Ctap2ErrorCode,
    message?: string,
    /** The CTAP2 status byte, when the authenticator sent one. */
    readonly status?: number,
    /** PIN attempts left, for PIN_INVALID when the client could ask the key. */
    readonly retries?: number,
  ) {
    super(message ?? MESSAGES[code] ?? `The security key failed with ${code}. Try again.`);
  }
}

/** PIN_INVALID with the attempts left, worded for the person. */
export function wrongPinError(retries: number, status?: number): Ctap2Error {
  const left = retries === 1 ? '1 attempt left' : `${retries} attempts left`;
  return new Ctap2Error(
    'PIN_INVALID',
    `Wrong PIN (${left}). Check the PIN of your security key and try again.`,
    status,
    retries,
  );
}

export function ctap2ErrorFromStatus(status: number): Ctap2Error {
  const name = STATUS_NAMES.get(status);
  if (name === undefined || name === 'OK') {
    return new Ctap2Error(
      'UNKNOWN_STATUS',
      `The security key failed with status 0x${status.toString(16).padStart(2, '0')}. Try again.`,
      status,
    );
  }
  return new Ctap2Error(name, undefined, status);
}

function invalid(what: string): Ctap2Error {
  return new Ctap2Error(
    'INVALID_RESPONSE',
    `The security key sent a malformed answer (${what}). Unplug it, plug it back in and try again.`,
  );
}

// ---------------------------------------------------------------- requests and raw responses

export interface Ctap2Request {
  command: number;
  /** The CBOR parameters (may be empty), sent after the command byte. */
  params: Uint8Array;
}

/** The CTAPHID_CBOR payload: command byte followed by the parameters. */
export function encodeRequest(request: Ctap2Request): Uint8Array {
  const out = new Uint8Array(1 + request.params.length);
  out[0] = request.command;
  out.set(request.params, 1);
  return out;
}

function request(command: number, params?: CtapMap): Ctap2Request {
  return { command, params: params ? encodeCtap(params) : new Uint8Array(0) };
}

/** Authenticator side: splits a CTAPHID_CBOR payload. Throws CborError for non-canonical parameters. */
export function parseRequest(payload: Uint8Array): { command: number; params: CtapMap | undefined } {
  const command = payload[0];
  if (command === undefined) throw new CborError('TRUNCATED', 'The CTAP2 request is empty.');
  if (payload.length === 1) return { command, params: undefined };
  const params = decodeCtap(payload.subarray(1));
  if (!(params instanceof Map)) throw new CborError('UNSUPPORTED_TYPE', 'CTAP2 parameters are a CBOR map.');
  return { command, params };
}

/** Authenticator side: status byte followed by the CBOR response, if any. */
export function encodeResponse(status: number, body?: CtapMap): Uint8Array {
  const encoded = body ? encodeCtap(body) : new Uint8Array(0);
  const out = new Uint8Array(1 + encoded.length);
  out[0] = status;
  out.set(encoded, 1);
  return out;
}

/**
 * Checks the status byte and decodes the body of a CTAP2 response. Throws Ctap2Error for a non-zero
 * status or a malformed body (CborError is wrapped as INVALID_RESPONSE, with the CBOR error as cause).
 */
export function parseResponse(response: Uint8Array): CtapMap | undefined {
  const status = response[0];
  if (status === undefined) throw new Ctap2Error('EMPTY_RESPONSE');
  if (status !== CTAP2_STATUS.OK) throw ctap2ErrorFromStatus(status);
  if (response.length === 1) return undefined;
  let body: CtapValue;
  try {
    body = decodeCtap(response.subarray(1));
  } catch (error) {
    const wrapped = invalid(error instanceof CborError ? error.code : 'CBOR');
    wrapped.cause = error;
    throw wrapped;
  }
  if (!(body instanceof Map)) throw invalid('the body is not a map');
  return body;
}

function requireBody(response: Uint8Array): CtapMap {
  const body = parseResponse(response);
  if (!body) throw new Ctap2Error('EMPTY_RESPONSE');
  return body;
}

// ---------------------------------------------------------------- typed readers

function get(map: CtapMap, key: CtapKey): CtapValue | undefined {
  return map.get(key);
}
function optBytes(map: CtapMap, key: CtapKey, what: string): Uint8Array | undefined {
  const v = get(map, key);
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) throw invalid(`${what} is not a byte string`);
  return v;
}
function reqBytes(map: CtapMap, key: CtapKey, what: string): Uint8Array {
  const v = optBytes(map, key, what);
  if (v === undefined) throw invalid(`${what} is missing`);
  return v;
}
function optText(map: CtapMap, key: CtapKey, what: string): string | undefined {
  const v = get(map, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`${what} is not a text string`);
  return v;
}
function optUint(map: CtapMap, key: CtapKey, what: string): number | undefined {
  const v = get(map, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw invalid(`${what} is not an unsigned integer`);
  return v;
}
function optBool(map: CtapMap, key: CtapKey, what: string): boolean | undefined {
  const v = get(map, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${what} is not a boolean`);
  return v;
}
function optMap(map: CtapMap, key: CtapKey, what: string): CtapMap | undefined {
  const v = get(map, key);
  if (v === undefined) return undefined;
  if (!(v instanceof Map)) throw invalid(`${what} is not a map`);
  return v;
}
function optArray(map: CtapMap, key: CtapKey, what: string): CtapValue[] | undefined {
  const v = get(map, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid(`${what} is not an array`);
  return v;
}
function textArray(values: CtapValue[] | undefined, what: string): string[] {
  return (values ?? []).map((v) => {
    if (typeof v !== 'string') throw invalid(`${what} holds a non-text entry`);
    return v;
  });
}

// ---------------------------------------------------------------- authenticatorGetInfo (0x04)

export interface AuthenticatorInfo {
  versions: string[];
  extensions: string[];
  aaguid: Uint8Array;
  /** Options the key reports; absent ones take their spec defaults (see `option`). */
  options: Map<string, boolean>;
  maxMsgSize?: number;
  pinUvAuthProtocols: number[];
  maxCredentialCountInList?: number;
  maxCredentialIdLength?: number;
  transports: string[];
  algorithms: { type: string; alg: number }[];
  forcePinChange?: boolean;
  minPinLength?: number;
  firmwareVersion?: number;
  remainingDiscoverableCredentials?: number;
}

export function getInfoRequest(): Ctap2Request {
  return request(CTAP2_CMD.GET_INFO);
}

/** CTAP 2.1 §6.4. Unknown keys are ignored. */
export function parseGetInfoResponse(response: Uint8Array): AuthenticatorInfo {
  const body = requireBody(response);
  const versions = textArray(optArray(body, 0x01, 'versions'), 'versions');
  if (versions.length === 0) throw invalid('versions is missing');
  const aaguid = reqBytes(body, 0x03, 'aaguid');
  if (aaguid.length !== 16) throw invalid('aaguid is not 16 bytes');
  const options = new Map<string, boolean>();
  for (const [k, v] of optMap(body, 0x04, 'options') ?? new Map()) {
    // Unknown option types are skipped like unknown keys.
    if (typeof k === 'string' && typeof v === 'boolean') options.set(k, v);
  }
  const protocols = (optArray(body, 0x06, 'pinUvAuthProtocols') ?? []).map((v) => {
    if (typeof v !== 'number') throw invalid('pinUvAuthProtocols holds a non-integer');
    return v;
  });
  const algorithms: { type: string; alg: number }[] = [];
  for (const entry of optArray(body, 0x0a, 'algorithms') ?? []) {
    if (!(entry instanceof Map)) throw invalid('algorithms holds a non-map');
    const type = entry.get('type');
    const alg = entry.get('alg');
    if (typeof type === 'string' && typeof alg === 'number') algorithms.push({ type, alg });
  }
  return {
    versions,
    extensions: textArray(optArray(body, 0x02, 'extensions'), 'extensions'),
    aaguid,
    options,
    maxMsgSize: optUint(body, 0x05, 'maxMsgSize'),
    pinUvAuthProtocols: protocols,
    maxCredentialCountInList: optUint(body, 0x07, 'maxCredentialCountInList'),
    maxCredentialIdLength: optUint(body, 0x08, 'maxCredentialIdLength'),
    transports: textArray(optArray(body, 0x09, 'transports'), 'transports'),
    algorithms,
    forcePinChange: optBool(body, 0x0c, 'forcePINChange'),
    minPinLength: optUint(body, 0x0d, 'minPINLength'),
    firmwareVersion: optUint(body, 0x0e, 'firmwareVersion'),
    remainingDiscoverableCredentials: optUint(body, 0x14, 'remainingDiscoverableCredentials'),
  };
}

/** Authenticator side: encodes getInfo fields (keys per CTAP 2.1 §6.4). */
export function encodeGetInfoResponse(info: AuthenticatorInfo): Uint8Array {
  return encodeResponse(
    CTAP2_STATUS.OK,
    ctapMap([
      [0x01, info.versions],
      [0x02, info.extensions.length ? info.extensions : undefined],
      [0x03, info.aaguid],
      [0x04, info.options.size ? new Map(info.options) : undefined],
      [0x05, info.maxMsgSize],
      [0x06, info.pinUvAuthProtocols.length ? info.pinUvAuthProtocols : undefined],
      [0x07, info.maxCredentialCountInList],
      [0x08, info.maxCredentialIdLength],
      [0x09, info.transports.length ? info.transports : undefined],
      [
        0x0a,
        info.algorithms.length
          ? info.algorithms.map((a) =>
              ctapMap([
                ['alg', a.alg],
                ['type', a.type],
              ]),
            )
          : undefined,
      ],
      [0x0c, info.forcePinChange],
      [0x0d, info.minPinLength],
      [0x0e, info.firmwareVersion],
      [0x14, info.remainingDiscoverableCredentials],
    ]),
  );
}

/** Option value with the CTAP 2.1 §6.4 defaults for absent options ("up" defaults to true). */
export function option(info: AuthenticatorInfo, name: string): boolean | undefined {
  const value = info.options.get(name);
  if (value !== undefined) return value;
  if (name === 'up') return true;
  if (name === 'rk' || name === 'plat' || name === 'uv' || name === 'pinUvAuthToken') return false;
  return undefined; // clientPin, bioEnroll...: absent means "not supported"
}

// ---------------------------------------------------------------- shared structures

export interface RelyingParty {
  id: string;
  name?: string;
}
export interface UserEntity {
  id: Uint8Array;
  name?: string;
  displayName?: string;
}
export interface CredentialDescriptor {
  type: 'public-key';
  id: Uint8Array;
  transports?: string[];
}
export interface CredentialParameters {
  type: 'public-key';
  alg: number;
}

export const COSE_ALG = { ES256: -7, EDDSA: -8, ECDH_ES_HKDF_256: -25, RS256: -257 } as const;

function descriptorValue(d: CredentialDescriptor): CtapMap {
  return ctapMap([
    ['id', d.id],
    ['type', d.type],
    ['transports', d.transports],
  ]);
}

function parseDescriptor(value: CtapValue | undefined, what: string): CredentialDescriptor {
  if (!(value instanceof Map)) throw invalid(`${what} is not a map`);
  const id = reqBytes(value, 'id', `${what}.id`);
  const type = optText(value, 'type', `${what}.type`);
  if (type !== 'public-key') throw invalid(`${what}.type is not "public-key"`);
  return { type, id };
}

function parseUser(value: CtapMap): UserEntity {
  return {
    id: reqBytes(value, 'id', 'user.id'),
    name: optText(value, 'name', 'user.name'),
    displayName: optText(value, 'displayName', 'user.displayName'),
  };
}

// ---------------------------------------------------------------- authenticatorMakeCredential (0x01)

export interface MakeCredentialRequest {
  clientDataHash: Uint8Array;
  rp: RelyingParty;
  user: UserEntity;
  pubKeyCredParams: CredentialParameters[];
  excludeList?: CredentialDescriptor[];
  /** Authenticator extension inputs (credProps is a client extension and never goes here). */
  extensions?: CtapMap;
  options?: { rk?: boolean; up?: boolean; uv?: boolean };
  pinUvAuthParam?: Uint8Array;
  pinUvAuthProtocol?: number;
}

function optionsMap(options: Record<string, boolean | undefined> | undefined): CtapMap | undefined {
  if (!options) return undefined;
  const map = ctapMap(Object.entries(options));
  return map.size ? map : undefined;
}

/** CTAP 2.1 §6.1. */
export function makeCredentialRequest(r: MakeCredentialRequest): Ctap2Request {
  if (r.clientDataHash.length !== 32) throw new RangeError('clientDataHash is a 32-byte SHA-256 digest.');
  return request(
    CTAP2_CMD.MAKE_CREDENTIAL,
    ctapMap([
      [0x01, r.clientDataHash],
      [
        0x02,
        ctapMap([
          ['id', r.rp.id],
          ['name', r.rp.name],
        ]),
      ],
      [
        0x03,
        ctapMap([
          ['id', r.user.id],
          ['name', r.user.name],
          ['displayName', r.user.displayName],
        ]),
      ],
      [
        0x04,
        r.pubKeyCredParams.map((p) =>
          ctapMap([
            ['alg', p.alg],
            ['type', p.type],
          ]),
        ),
      ],
      [0x05, r.excludeList?.length ? r.excludeList.map(descriptorValue) : undefined],
      [0x06, r.extensions?.size ? r.extensions : undefined],
      [0x07, optionsMap(r.options)],
      [0x08, r.pinUvAuthParam],
      [0x09, r.pinUvAuthProtocol],
    ]),
  );
}

export interface MakeCredentialResponse {
  fmt: string;
  authData: AuthenticatorData;
  /** The raw authenticatorData bytes, as signed and as the relying party needs them. */
  authDataBytes: Uint8Array;
  attStmt: CtapMap;
  epAtt?: boolean;
  largeBlobKey?: Uint8Array;
}

/** CTAP 2.1 §6.1.2. Unknown keys are ignored. */
export function parseMakeCredentialResponse(response: Uint8Array): MakeCredentialResponse {
  const body = requireBody(response);
  const fmt = optText(body, 0x01, 'fmt');
  if (fmt === undefined) throw invalid('fmt is missing');
  const authDataBytes = reqBytes(body, 0x02, 'authData');
  const authData = parseAuthenticatorData(authDataBytes);
  if (!authData.attestedCredentialData) throw invalid('authData has no attested credential data');
  const attStmt = optMap(body, 0x03, 'attStmt');
  if (!attStmt) throw invalid('attStmt is missing');
  return {
    fmt,
    authData,
    authDataBytes,
    attStmt,
    epAtt: optBool(body, 0x04, 'epAtt'),
    largeBlobKey: optBytes(body, 0x05, 'largeBlobKey'),
  };
}

/**
 * The WebAuthn attestation object (`{fmt, attStmt, authData}`, text keys) from a makeCredential
 * response, as the relying party verifies it.
 */
export function attestationObject(response: MakeCredentialResponse): Uint8Array {
  return encodeCtap(
    ctapMap([
      ['fmt', response.fmt],
      ['attStmt', response.attStmt],
      ['authData', response.authDataBytes],
    ]),
  );
}

/**
 * credProps (WebAuthn "Credential Properties Extension", §10.4 in Level 2) is a client extension: the
 * authenticator is not asked. The client reports `rk` from what it requested: a makeCredential that
 * succeeded with `options.rk = true` created a discoverable credential.
 */
export function credPropsOutput(request: Pick<MakeCredentialRequest, 'options'>): { rk: boolean } {
  return { rk: request.options?.rk === true };
}

// ---------------------------------------------------------------- authenticatorGetAssertion (0x02)

export interface GetAssertionRequest {
  rpId: string;
  clientDataHash: Uint8Array;
  allowList?: CredentialDescriptor[];
  extensions?: CtapMap;
  options?: { up?: boolean; uv?: boolean };
  pinUvAuthParam?: Uint8Array;
  pinUvAuthProtocol?: number;
}

/** CTAP 2.1 §6.2. */
export function getAssertionRequest(r: GetAssertionRequest): Ctap2Request {
  if (r.clientDataHash.length !== 32) throw new RangeError('clientDataHash is a 32-byte SHA-256 digest.');
  return request(
    CTAP2_CMD.GET_ASSERTION,
    ctapMap([
      [0x01, r.rpId],
      [0x02, r.clientDataHash],
      [0x03, r.allowList?.length ? r.allowList.map(descriptorValue) : undefined],
      [0x04, r.extensions?.size ? r.extensions : undefined],
      [0x05, optionsMap(r.options)],
      [0x06, r.pinUvAuthParam],
      [0x07, r.pinUvAuthProtocol],
    ]),
  );
}

/** CTAP 2.1 §6.3: no parameters. */
export function getNextAssertionRequest(): Ctap2Request {
  return request(CTAP2_CMD.GET_NEXT_ASSERTION);
}

export interface AssertionResponse {
  /** Absent only when the allowList had exactly one entry (CTAP 2.1 §6.2.2); the caller fills it in. */
  credential?: CredentialDescriptor;
  authData: AuthenticatorData;
  authDataBytes: Uint8Array;
  signature: Uint8Array;
  user?: UserEntity;
  numberOfCredentials?: number;
  userSelected?: boolean;
  largeBlobKey?: Uint8Array;
}

/** Parses a getAssertion or getNextAssertion response (CTAP 2.1 §6.2.2). Unknown keys are ignored. */
export function parseGetAssertionResponse(response: Uint8Array): AssertionResponse {
  const body = requireBody(response);
  const credentialValue = get(body, 0x01);
  const authDataBytes = reqBytes(body, 0x02, 'authData');
  const user = optMap(body, 0x04, 'user');
  return {
    credential: credentialValue === undefined ? undefined : parseDescriptor(credentialValue, 'credential'),
    authData: parseAuthenticatorData(authDataBytes),
    authDataBytes,
    signature: reqBytes(body, 0x03, 'signature'),
    user: user ? parseUser(user) : undefined,
    numberOfCredentials: optUint(body, 0x05, 'numberOfCredentials'),
    userSelected: optBool(body, 0x06, 'userSelected'),
    largeBlobKey: optBytes(body, 0x07, 'largeBlobKey'),
  };
}

// ---------------------------------------------------------------- authenticatorData

export const AUTH_DATA_FLAGS = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40, ED: 0x80 } as const;

export interface CoseKey {
  kty: number;
  alg?: number;
  /** EC2 curve, x and y when kty is 2. */
  crv?: number;
  x?: Uint8Array;
  y?: Uint8Array;
  /** The whole COSE_Key map, for other key types. */
  map: CtapMap;
}

export interface AttestedCredentialData {
  aaguid: Uint8Array;
  credentialId: Uint8Array;
  credentialPublicKey: CoseKey;
  /** The COSE_Key bytes as the authenticator encoded them. */
  credentialPublicKeyBytes: Uint8Array;
}

export interface AuthenticatorData {
  rpIdHash: Uint8Array;
  flags: number;
  up: boolean;
  uv: boolean;
  at: boolean;
  ed: boolean;
  signCount: number;
  attestedCredentialData?: AttestedCredentialData;
  extensions?: CtapMap;
}

/** WebAuthn §6.1: rpIdHash(32) | flags(1) | signCount(4) | [attested credential data] | [extensions]. */
export function parseAuthenticatorData(bytes: Uint8Array): AuthenticatorData {
  if (bytes.length < 37) throw invalid('authData is shorter than 37 bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint8(32);
  const data: AuthenticatorData = {
    rpIdHash: bytes.subarray(0, 32),
    flags,
    up: (flags & AUTH_DATA_FLAGS.UP) !== 0,
    uv: (flags & AUTH_DATA_FLAGS.UV) !== 0,
    at: (flags & AUTH_DATA_FLAGS.AT) !== 0,
    ed: (flags & AUTH_DATA_FLAGS.ED) !== 0,
    signCount: view.getUint32(33),
  };
  let offset = 37;
  if (data.at) {
    if (bytes.length < offset + 18) throw invalid('attested credential data is truncated');
    const aaguid = bytes.subarray(offset, offset + 16);
    const idLength = view.getUint16(offset + 16);
    offset += 18;
    if (bytes.length < offset + idLength) throw invalid('the credential id is truncated');
    const credentialId = bytes.subarray(offset, offset + idLength);
    offset += idLength;
    const key = decodeEmbedded(bytes.subarray(offset), 'credentialPublicKey');
    const credentialPublicKeyBytes = bytes.subarray(offset, offset + key.length);
    offset += key.length;
    data.attestedCredentialData = {
      aaguid,
      credentialId,
      credentialPublicKey: parseCoseKey(key.value),
      credentialPublicKeyBytes,
    };
  }
  if (data.ed) {
    const ext = decodeEmbedded(bytes.subarray(offset), 'extensions');
    if (!(ext.value instanceof Map)) throw invalid('authData extensions are not a map');
    data.extensions = ext.value;
    offset += ext.length;
  }
  if (offset !== bytes.length) throw invalid('authData has trailing bytes');
  return data;
}

function decodeEmbedded(bytes: Uint8Array, what: string): { value: CtapValue; length: number } {
  try {
    return decodeCtapPrefix(bytes);
  } catch (error) {
    const wrapped = invalid(`${what}: ${error instanceof CborError ? error.code : 'CBOR'}`);
    wrapped.cause = error;
    throw wrapped;
  }
}

/** RFC 9052 §7 COSE_Key labels: 1 kty, 3 alg, -1 crv, -2 x, -3 y. */
export function parseCoseKey(value: CtapValue): CoseKey {
  if (!(value instanceof Map)) throw invalid('the COSE key is not a map');
  const kty = get(value, 1);
  if (typeof kty !== 'number') throw invalid('the COSE key has no kty');
  const alg = get(value, 3);
  if (alg !== undefined && typeof alg !== 'number') throw invalid('the COSE key alg is not an integer');
  const key: CoseKey = { kty, alg, map: value };
  if (kty === 2) {
    const crv = get(value, -1);
    const x = get(value, -2);
    const y = get(value, -3);
    if (typeof crv !== 'number' || !(x instanceof Uint8Array) || !(y instanceof Uint8Array)) {
      throw invalid('the EC2 COSE key lacks crv, x or y');
    }
    key.crv = crv;
    key.x = x;
    key.y = y;
  }
  return key;
}

/** An EC2 P-256 COSE_Key map (kty 2, crv 1) with the given alg. */
export function ec2CoseKey(x: Uint8Array, y: Uint8Array, alg: number): CtapMap {
  return ctapMap([
    [1, 2],
    [3, alg],
    [-1, 1],
    [-2, x],
    [-3, y],
  ]);
}

// ---------------------------------------------------------------- authenticatorClientPIN (0x06)

export const CLIENT_PIN_SUBCOMMAND = {
  GET_PIN_RETRIES: 0x01,
  GET_KEY_AGREEMENT: 0x02,
  SET_PIN: 0x03,
  CHANGE_PIN: 0x04,
  GET_PIN_TOKEN: 0x05,
  GET_PIN_UV_AUTH_TOKEN_USING_UV_WITH_PERMISSIONS: 0x06,
  GET_UV_RETRIES: 0x07,
  GET_PIN_UV_AUTH_TOKEN_USING_PIN_WITH_PERMISSIONS: 0x09,
} as const;

/** pinUvAuthToken permissions (CTAP 2.1 §6.5, "pinUvAuthToken permissions"). */
export const PIN_PERMISSION = { MC: 0x01, GA: 0x02, CM: 0x04, BE: 0x08, LBW: 0x10, ACFG: 0x20 } as const;

/**
 * getPINRetries. CTAP 2.1 makes pinUvAuthProtocol optional here, but CTAP 2.0 keys require it, so
 * it is always sent.
 */
export function getPinRetriesRequest(protocol: number): Ctap2Request {
  return request(
    CTAP2_CMD.CLIENT_PIN,
    ctapMap([
      [0x01, protocol],
      [0x02, CLIENT_PIN_SUBCOMMAND.GET_PIN_RETRIES],
    ]),
  );
}

export function parsePinRetriesResponse(response: Uint8Array): {
  retries: number;
  powerCycleState?: boolean;
} {
  const body = requireBody(response);
  const retries = optUint(body, 0x03, 'pinRetries');
  if (retries === undefined) throw invalid('pinRetries is missing');
  return { retries, powerCycleState: optBool(body, 0x04, 'powerCycleState') };
}

export function getKeyAgreementRequest(protocol: number): Ctap2Request {
  return request(
    CTAP2_CMD.CLIENT_PIN,
    ctapMap([
      [0x01, protocol],
      [0x02, CLIENT_PIN_SUBCOMMAND.GET_KEY_AGREEMENT],
    ]),
  );
}

export function parseKeyAgreementResponse(response: Uint8Array): CoseKey {
  const body = requireBody(response);
  const key = get(body, 0x01);
  if (key === undefined) throw invalid('keyAgreement is missing');
  return parseCoseKey(key);
}

export function getPinUvAuthTokenUsingPinWithPermissionsRequest(r: {
  protocol: number;
  keyAgreement: CtapMap;
  pinHashEnc: Uint8Array;
  permissions: number;
  rpId?: string;
}): Ctap2Request {
  return request(
    CTAP2_CMD.CLIENT_PIN,
    ctapMap([
      [0x01, r.protocol],
      [0x02, CLIENT_PIN_SUBCOMMAND.GET_PIN_UV_AUTH_TOKEN_USING_PIN_WITH_PERMISSIONS],
      [0x03, r.keyAgreement],
      [0x06, r.pinHashEnc],
      [0x09, r.permissions],
      [0x0a, r.rpId],
    ]),
  );
}

/** Returns the encrypted pinUvAuthToken; decrypt it with the shared secret. */
export function parsePinTokenResponse(response: Uint8Array): Uint8Array {
  return reqBytes(requireBody(response), 0x02, 'pinUvAuthToken');
}

export function setPinRequest(r: {
  protocol: number;
  keyAgreement: CtapMap;
  newPinEnc: Uint8Array;
  pinUvAuthParam: Uint8Array;
}): Ctap2Request {
  return request(
    CTAP2_CMD.CLIENT_PIN,
    ctapMap([
      [0x01, r.protocol],
      [0x02, CLIENT_PIN_SUBCOMMAND.SET_PIN],
      [0x03, r.keyAgreement],
      [0x04, r.pinUvAuthParam],
      [0x05, r.newPinEnc],
    ]),
  );
}

/** For commands whose success carries no body (setPIN): checks the status only. */
export function parseEmptyResponse(response: Uint8Array): void {
  parseResponse(response);
}
