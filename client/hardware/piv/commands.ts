// The PIV card commands (NIST SP 800-73-4 Part 2 §3) and YubiKey's extensions (GET VERSION, GET SERIAL,
// ATTEST, and the PIN and touch policies of GENERATE), as pure builders of CommandApdu and parsers of the
// answer's data. The session sends them; status words are checked there (apdu.ts `checkStatus`).
import { createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CommandApdu, ResponseApdu } from './apdu';
import { SW } from './apdu';
import { hex, invalidArgument, malformed } from './errors';
import {
  concatBytes,
  decodeSingleTlv,
  decodeTlvMap,
  decodeTlvs,
  encodeTag,
  encodeTlv,
  requireTag,
} from './tlv';

/** The PIV application's AID without its version (SP 800-73-4 Part 1 §2.2): SELECT matches on it. */
export const PIV_AID = Uint8Array.of(0xa0, 0x00, 0x00, 0x03, 0x08);

export const INS = {
  VERIFY: 0x20,
  CHANGE_REFERENCE_DATA: 0x24,
  RESET_RETRY_COUNTER: 0x2c,
  GENERATE_ASYMMETRIC_KEY_PAIR: 0x47,
  GENERAL_AUTHENTICATE: 0x87,
  SELECT: 0xa4,
  GET_DATA: 0xcb,
  PUT_DATA: 0xdb,
  // YubiKey's own
  GET_SERIAL: 0xf8,
  ATTEST: 0xf9,
  GET_VERSION: 0xfd,
} as const;

/** The four key slots of SP 800-73-4 Part 1 Table 4 that Keyport uses, and YubiKey's attestation slot. */
export const SLOT = {
  AUTHENTICATION: 0x9a,
  SIGNATURE: 0x9c,
  KEY_MANAGEMENT: 0x9d,
  CARD_AUTHENTICATION: 0x9e,
} as const;
export type PivSlot = (typeof SLOT)[keyof typeof SLOT];
export const ATTESTATION_SLOT = 0xf9;
export const PIV_SLOTS: readonly PivSlot[] = [0x9a, 0x9c, 0x9d, 0x9e];

export function isPivSlot(value: number): value is PivSlot {
  return (PIV_SLOTS as readonly number[]).includes(value);
}

/** "9a", "9A" or "0x9a" → 0x9a; anything else is a typed error naming the slots there are. */
export function parseSlot(text: string): PivSlot {
  const match = /^(?:0x)?([0-9a-f]{2})$/i.exec(text.trim());
  const value = match ? Number.parseInt(match[1]!, 16) : Number.NaN;
  if (!isPivSlot(value)) throw invalidArgument(`"${text}" is not a PIV slot: use 9a, 9c, 9d or 9e`);
  return value;
}

export function slotName(slot: number): string {
  return hex(slot, 2).toLowerCase();
}

/** YubiKey PIN policy (the 0xAA tag of GENERATE). */
export type PinPolicy = 'default' | 'never' | 'once' | 'always';
/** YubiKey touch policy (the 0xAB tag of GENERATE). Cached: one touch lasts 15 s. */
export type TouchPolicy = 'default' | 'never' | 'always' | 'cached';

export const PIN_POLICY_BYTE: Record<PinPolicy, number> = { default: 0, never: 1, once: 2, always: 3 };
export const TOUCH_POLICY_BYTE: Record<TouchPolicy, number> = { default: 0, never: 1, always: 2, cached: 3 };

/** What a YubiKey applies for "default" (Yubico's PIV slot table): 9c asks the PIN every time, 9e never. */
export const SLOT_DEFAULT_PIN_POLICY: Record<PivSlot, Exclude<PinPolicy, 'default'>> = {
  0x9a: 'once',
  0x9c: 'always',
  0x9d: 'once',
  0x9e: 'never',
};

export function effectivePinPolicy(slot: PivSlot, policy: PinPolicy): Exclude<PinPolicy, 'default'> {
  return policy === 'default' ? SLOT_DEFAULT_PIN_POLICY[slot] : policy;
}

/** SP 800-78-4 Table 6-2: ECC P-256. The only key algorithm Keyport generates and signs with. */
export const ALGORITHM_ECCP256 = 0x11;
export const P256_DIGEST_LENGTH = 32;

const PIN_REFERENCE = 0x80;
const PUK_REFERENCE = 0x81;
/** PIV pads the PIN and PUK to 8 bytes with FF (SP 800-73-4 Part 2 §2.4.3). */
const REFERENCE_DATA_LENGTH = 8;
const MIN_PIN_LENGTH = 6;

// ---- SELECT -------------------------------------------------------------------------------------------

export function selectCommand(): CommandApdu {
  return { cla: 0x00, ins: INS.SELECT, p1: 0x04, p2: 0x00, data: PIV_AID, le: 256 };
}

export interface SelectInfo {
  /** The application identifier the card answered with (4F), when it sent the template. */
  aid?: Uint8Array;
  /** The application label (50), when sent. */
  label?: string;
}

/**
 * The application property template 61{4F AID, 79{…}, 50 label, AC{…}, 5F50 URL} (SP 800-73-4 Part 2
 * §3.1.1). Some cards answer 9000 with no data; that is accepted, a template that is not TLV is not.
 */
export function parseSelect(data: Uint8Array): SelectInfo {
  if (data.length === 0) return {};
  const fields = decodeTlvMap(decodeSingleTlv(data, 0x61));
  const info: SelectInfo = {};
  const aid = fields.get(0x4f);
  if (aid) info.aid = aid;
  const label = fields.get(0x50);
  if (label) info.label = new TextDecoder('utf-8', { fatal: false }).decode(label);
  return info;
}

// ---- PIN and PUK --------------------------------------------------------------------------------------

/**
 * A PIN or PUK as its 8 reference bytes: 6 to 8 bytes of UTF-8 (a YubiKey takes any bytes; a PIV card's
 * PIN is digits), padded with FF.
 */
export function padReferenceData(secret: string, what: 'PIN' | 'PUK'): Uint8Array {
  const bytes = new TextEncoder().encode(secret);
  if (bytes.length < MIN_PIN_LENGTH || bytes.length > REFERENCE_DATA_LENGTH)
    throw invalidArgument(`A PIV ${what} is ${MIN_PIN_LENGTH} to ${REFERENCE_DATA_LENGTH} characters long`);
  const out = new Uint8Array(REFERENCE_DATA_LENGTH).fill(0xff);
  out.set(bytes);
  return out;
}

/** VERIFY with the PIN. */
export function verifyPinCommand(pin: string): CommandApdu {
  return { cla: 0x00, ins: INS.VERIFY, p1: 0x00, p2: PIN_REFERENCE, data: padReferenceData(pin, 'PIN') };
}

/** VERIFY without data: asks whether the PIN is verified and, if not, how many attempts are left. */
export function pinStatusCommand(): CommandApdu {
  return { cla: 0x00, ins: INS.VERIFY, p1: 0x00, p2: PIN_REFERENCE };
}

export type PinStatus =
  | { state: 'verified' }
  | { state: 'not-verified'; retriesLeft: number }
  | { state: 'blocked'; retriesLeft: 0 };

/**
 * The answer to an empty VERIFY (SP 800-73-4 Part 2 §3.2.1): 9000 verified, 63Cx not verified with x
 * attempts left (63C0: blocked), 6983 blocked. Anything else is the caller's error to raise.
 */
export function parsePinStatus(response: ResponseApdu): PinStatus | undefined {
  if (response.data.length !== 0) throw malformed('data in the answer to VERIFY');
  if (response.sw === SW.OK) return { state: 'verified' };
  if (response.sw === SW.AUTH_METHOD_BLOCKED) return { state: 'blocked', retriesLeft: 0 };
  if ((response.sw & 0xfff0) === SW.VERIFY_FAILED) {
    const retriesLeft = response.sw & 0x0f;
    return retriesLeft === 0 ? { state: 'blocked', retriesLeft: 0 } : { state: 'not-verified', retriesLeft };
  }
  return undefined;
}

/** CHANGE REFERENCE DATA: old ‖ new, each padded to 8 (P2 80 PIN, 81 PUK). */
export function changeReferenceDataCommand(which: 'PIN' | 'PUK', current: string, next: string): CommandApdu {
  return {
    cla: 0x00,
    ins: INS.CHANGE_REFERENCE_DATA,
    p1: 0x00,
    p2: which === 'PIN' ? PIN_REFERENCE : PUK_REFERENCE,
    data: concatBytes(padReferenceData(current, which), padReferenceData(next, which)),
  };
}

/** RESET RETRY COUNTER: unblocks the PIN with the PUK and sets a new PIN. */
export function resetRetryCounterCommand(puk: string, newPin: string): CommandApdu {
  return {
    cla: 0x00,
    ins: INS.RESET_RETRY_COUNTER,
    p1: 0x00,
    p2: PIN_REFERENCE,
    data: concatBytes(padReferenceData(puk, 'PUK'), padReferenceData(newPin, 'PIN')),
  };
}

// ---- GENERATE ASYMMETRIC KEY PAIR ---------------------------------------------------------------------

export interface GeneratePolicy {
  pin: PinPolicy;
  touch: TouchPolicy;
}

/**
 * GENERATE (SP 800-73-4 Part 2 §3.3.2): AC{80 algorithm} with YubiKey's AA (PIN policy) and AB (touch
 * policy) inside the template; "default" leaves the tag out, so the slot's default applies.
 */
export function generateCommand(slot: PivSlot, policy: GeneratePolicy): CommandApdu {
  const parts = [encodeTlv(0x80, Uint8Array.of(ALGORITHM_ECCP256))];
  if (policy.pin !== 'default') parts.push(encodeTlv(0xaa, Uint8Array.of(PIN_POLICY_BYTE[policy.pin])));
  if (policy.touch !== 'default') parts.push(encodeTlv(0xab, Uint8Array.of(TOUCH_POLICY_BYTE[policy.touch])));
  return {
    cla: 0x00,
    ins: INS.GENERATE_ASYMMETRIC_KEY_PAIR,
    p1: 0x00,
    p2: slot,
    data: encodeTlv(0xac, concatBytes(...parts)),
    le: 256,
  };
}

/** SubjectPublicKeyInfo of an id-ecPublicKey on prime256v1, up to the BIT STRING's content. */
const P256_SPKI_PREFIX = Uint8Array.from(
  Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
);

/** An uncompressed P-256 point (04 ‖ X ‖ Y) as a KeyObject; a point off the curve is malformed. */
export function p256PublicKey(point: Uint8Array): KeyObject {
  if (point.length !== 65 || point[0] !== 0x04) throw malformed('an EC point that is not uncompressed P-256');
  try {
    return createPublicKey({
      key: Buffer.from(concatBytes(P256_SPKI_PREFIX, point)),
      format: 'der',
      type: 'spki',
    });
  } catch {
    throw malformed('an EC point that is not on P-256');
  }
}

/** The answer to GENERATE: 7F49{86 point} (SP 800-73-4 Part 2 §3.3.2, Table 11 for ECC). */
export function parseGeneratedPublicKey(data: Uint8Array): KeyObject {
  const fields = decodeTlvMap(decodeSingleTlv(data, 0x7f49), [0x86]);
  return p256PublicKey(requireTag(fields, 0x86, 'the EC point'));
}

// ---- GENERAL AUTHENTICATE: sign -----------------------------------------------------------------------

/** ECDSA over a SHA-256 digest with the slot's P-256 key: 7C{82 ∅, 81 digest}. */
export function signCommand(slot: PivSlot, digest: Uint8Array): CommandApdu {
  if (digest.length !== P256_DIGEST_LENGTH)
    throw invalidArgument(
      `A P-256 signature is over a ${P256_DIGEST_LENGTH}-byte digest, not ${digest.length}`,
    );
  return {
    cla: 0x00,
    ins: INS.GENERAL_AUTHENTICATE,
    p1: ALGORITHM_ECCP256,
    p2: slot,
    data: encodeTlv(0x7c, concatBytes(encodeTlv(0x82), encodeTlv(0x81, digest))),
    le: 256,
  };
}

/** One DER INTEGER of an ECDSA-Sig-Value: positive, minimal, at most 33 bytes for P-256. */
function checkDerInteger(value: Uint8Array): void {
  if (value.length === 0 || value.length > 33) throw malformed('an ECDSA integer of the wrong size');
  if ((value[0]! & 0x80) !== 0) throw malformed('a negative ECDSA integer');
  if (value.length > 1 && value[0] === 0 && (value[1]! & 0x80) === 0)
    throw malformed('an ECDSA integer that is not minimal');
  if (value.every((b) => b === 0)) throw malformed('an ECDSA integer of zero');
}

/** The answer to a signature: 7C{82 ECDSA-Sig-Value}, the signature returned as its DER bytes. */
export function parseSignature(data: Uint8Array): Uint8Array {
  const fields = decodeTlvMap(decodeSingleTlv(data, 0x7c), [0x82]);
  const der = requireTag(fields, 0x82, 'the signature');
  const integers = decodeTlvs(decodeSingleTlv(der, 0x30));
  if (integers.length !== 2 || integers.some((item) => item.tag !== 0x02))
    throw malformed('a signature that is not SEQUENCE { INTEGER r, INTEGER s }');
  for (const item of integers) checkDerInteger(item.value);
  return Uint8Array.from(der);
}

// ---- GET DATA / PUT DATA ------------------------------------------------------------------------------

/** GET DATA (SP 800-73-4 Part 2 §3.1.2): 5C{object tag}. */
export function getDataCommand(objectId: number): CommandApdu {
  return {
    cla: 0x00,
    ins: INS.GET_DATA,
    p1: 0x3f,
    p2: 0xff,
    data: encodeTlv(0x5c, encodeTag(objectId)),
    le: 256,
  };
}

/** The answer to GET DATA: 53{content}. */
export function parseGetData(data: Uint8Array): Uint8Array {
  return decodeSingleTlv(data, 0x53);
}

/** PUT DATA (SP 800-73-4 Part 2 §3.3.2): 5C{object tag} 53{content}; the session chains it. */
export function putDataCommand(objectId: number, content: Uint8Array): CommandApdu {
  return {
    cla: 0x00,
    ins: INS.PUT_DATA,
    p1: 0x3f,
    p2: 0xff,
    data: concatBytes(encodeTlv(0x5c, encodeTag(objectId)), encodeTlv(0x53, content)),
  };
}

// ---- YubiKey: GET VERSION, GET SERIAL, ATTEST ---------------------------------------------------------

export function getVersionCommand(): CommandApdu {
  return { cla: 0x00, ins: INS.GET_VERSION, p1: 0x00, p2: 0x00, le: 256 };
}

export interface FirmwareVersion {
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(data: Uint8Array): FirmwareVersion {
  if (data.length !== 3) throw malformed(`a version of ${data.length} bytes`);
  return { major: data[0]!, minor: data[1]!, patch: data[2]! };
}

export function getSerialCommand(): CommandApdu {
  return { cla: 0x00, ins: INS.GET_SERIAL, p1: 0x00, p2: 0x00, le: 256 };
}

export function parseSerial(data: Uint8Array): number {
  if (data.length !== 4) throw malformed(`a serial number of ${data.length} bytes`);
  return ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
}

/** ATTEST (YubiKey, INS F9, P1 = slot): a certificate for the slot's key, signed by the f9 key. */
export function attestCommand(slot: PivSlot): CommandApdu {
  return { cla: 0x00, ins: INS.ATTEST, p1: slot, p2: 0x00, le: 256 };
}

/** The largest certificate read from or written to a card. */
export const MAX_CERTIFICATE_BYTES = 16 * 1024;

/** DER bytes that must be exactly one X.509 certificate. */
export function parseCertificateDer(der: Uint8Array, what: string): X509Certificate {
  if (der.length === 0 || der.length > MAX_CERTIFICATE_BYTES)
    throw malformed(`${what} of ${der.length} bytes`);
  // The outer SEQUENCE must fill the bytes: X509Certificate itself ignores trailing data.
  decodeSingleTlv(der, 0x30);
  try {
    return new X509Certificate(Buffer.from(der));
  } catch {
    throw malformed(`${what} that is not an X.509 certificate`);
  }
}

/** The answer to ATTEST: the attestation certificate's DER, bare (no TLV around it). */
export function parseAttestation(data: Uint8Array): X509Certificate {
  return parseCertificateDer(data, 'an attestation certificate');
}

// ---- YubiKey: GET METADATA (firmware 5.3+) ------------------------------------------------------------

export const INS_GET_METADATA = 0xf7;

/** GET METADATA for a key slot, the management key (9B), the PIN (80) or the PUK (81). */
export function getMetadataCommand(reference: number): CommandApdu {
  return { cla: 0x00, ins: INS_GET_METADATA, p1: 0x00, p2: reference, le: 256 };
}

export interface Metadata {
  /** 01: the algorithm (SP 800-78-4 identifiers; FF for the PIN and the PUK). */
  algorithm?: number;
  /** 02: the PIN and touch policies the key was generated or imported with. */
  policy?: { pin: PinPolicy; touch: TouchPolicy };
  /** 03: generated on the card (1) or imported (2). */
  origin?: 'generated' | 'imported';
  /** 04: the public key of a slot's key pair (ECC P-256 only here). */
  publicKey?: KeyObject;
  /** 05: the PIN, PUK or management key still has its factory value. */
  isDefault?: boolean;
  /** 06: attempts in all and attempts left, for the PIN and the PUK. */
  retries?: { total: number; left: number };
}

const PIN_POLICY_OF = new Map(
  Object.entries(PIN_POLICY_BYTE).map(([name, byte]) => [byte, name as PinPolicy]),
);
const TOUCH_POLICY_OF = new Map(
  Object.entries(TOUCH_POLICY_BYTE).map(([name, byte]) => [byte, name as TouchPolicy]),
);

function oneByte(value: Uint8Array | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (value.length !== 1) throw malformed(`${what} of ${value.length} bytes`);
  return value[0]!;
}

/** The answer to GET METADATA (Yubico's "Get metadata" APDU page): TLVs 01 to 06, each at most once. */
export function parseMetadata(data: Uint8Array): Metadata {
  const fields = decodeTlvMap(data, [0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
  const metadata: Metadata = {};
  const algorithm = oneByte(fields.get(0x01), 'an algorithm');
  if (algorithm !== undefined) metadata.algorithm = algorithm;
  const policy = fields.get(0x02);
  if (policy !== undefined) {
    const pin = PIN_POLICY_OF.get(policy[0] ?? -1);
    const touch = TOUCH_POLICY_OF.get(policy[1] ?? -1);
    if (policy.length !== 2 || pin === undefined || touch === undefined) throw malformed('a key policy');
    metadata.policy = { pin, touch };
  }
  const origin = oneByte(fields.get(0x03), 'an origin');
  if (origin !== undefined) {
    if (origin !== 1 && origin !== 2) throw malformed(`origin ${origin}`);
    metadata.origin = origin === 1 ? 'generated' : 'imported';
  }
  const publicKey = fields.get(0x04);
  if (publicKey !== undefined && algorithm === ALGORITHM_ECCP256) {
    metadata.publicKey = p256PublicKey(requireTag(decodeTlvMap(publicKey), 0x86, 'the EC point'));
  }
  const isDefault = oneByte(fields.get(0x05), 'a default flag');
  if (isDefault !== undefined) metadata.isDefault = isDefault === 1;
  const retries = fields.get(0x06);
  if (retries !== undefined) {
    if (retries.length !== 2) throw malformed(`retries of ${retries.length} bytes`);
    metadata.retries = { total: retries[0]!, left: retries[1]! };
  }
  return metadata;
}
