// The virtual card's persistent state: one JSON file, 0600, replaced atomically (temp file, fsync,
// rename), so a crash mid-write leaves the old state or the new one.
//
// THIS IS A LAB DEVICE. Slot keys, the f9 attestation key and the lab root's key sit in the file as
// PKCS#8, and the PIN, PUK and management key in the clear; a real card keeps them in a secure element.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import { createCardAttestation } from './attestation';
import { ALGORITHM } from './policy';

export const STATE_VERSION = 1;
export const DEFAULT_PIN = '123456';
export const DEFAULT_PUK = '12345678';
export const DEFAULT_MANAGEMENT_KEY_HEX = '010203040506070801020304050607080102030405060708';
export const MAX_PIN_RETRIES = 3;
export const MAX_PUK_RETRIES = 3;
/** YubiKey 5.7: the first firmware whose default management key is AES-192. */
export const DEFAULT_FIRMWARE: readonly [number, number, number] = [5, 7, 1];
/** 0x01: USB-A keychain (docs.yubico.com "PIV Attestation OID Arc", form factor). */
export const DEFAULT_FORM_FACTOR = 0x01;

const hexString = z.string().regex(/^([0-9a-f]{2})*$/);
const authority = z.object({ keyPem: z.string(), certPem: z.string() });
const referenceData = z.object({
  /** The 8-byte value as VERIFY sends it: the PIN or PUK padded with 0xFF. */
  paddedHex: hexString.length(16),
  retries: z.number().int().min(0).max(15),
  maxRetries: z.number().int().min(1).max(15),
});
const managementAlgorithm = z.union([
  z.literal(ALGORITHM.TDES),
  z.literal(ALGORITHM.AES128),
  z.literal(ALGORITHM.AES192),
  z.literal(ALGORITHM.AES256),
]);
const slotKey = z.object({
  algorithm: z.literal(ALGORITHM.ECC_P256),
  privateKeyPem: z.string(),
  pinPolicy: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  touchPolicy: z.union([z.literal(1), z.literal(2), z.literal(3)]),
  origin: z.literal('generated'),
});

const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  serial: z.number().int().min(0).max(0xffffffff),
  firmware: z.tuple([
    z.number().int().min(0).max(255),
    z.number().int().min(0).max(255),
    z.number().int().min(0).max(255),
  ]),
  formFactor: z.number().int().min(0).max(255),
  pin: referenceData,
  puk: referenceData,
  managementKey: z.object({ algorithm: managementAlgorithm, keyHex: hexString }),
  /** What RESET (INS FB) restores: YubiKey 5.7 resets to AES-192, older firmware to 3DES. */
  defaultManagementKeyAlgorithm: managementAlgorithm,
  /** Keyed by slot in lower-case hex ("9a"). */
  slots: z.record(z.string().regex(/^[0-9a-f]{2}$/), slotKey),
  /** Data objects by tag in lower-case hex ("5fc105"): the value inside the 53 tag, as PUT DATA wrote it. */
  objects: z.record(z.string().regex(/^([0-9a-f]{2}){1,3}$/), hexString),
  attestation: z.object({ root: authority, device: authority }),
});

export type PivCardState = z.infer<typeof stateSchema>;
export type StoredSlotKey = z.infer<typeof slotKey>;
export type ManagementKeyAlgorithm = z.infer<typeof managementAlgorithm>;

export class CardStateError extends Error {
  override name = 'CardStateError';
}

export interface NewCardOptions {
  /** Defaults to a random 8-digit serial. */
  serial?: number;
  /** 'aes192' (YubiKey 5.7's default, the default here) or '3des' (older YubiKeys; yubico-piv-tool 2.2 only speaks 3DES). */
  managementKeyAlgorithm?: 'aes192' | '3des';
  /** The 9B management key, 24 bytes in hex; the factory key by default (another: the seed's "Custom Key"). */
  managementKeyHex?: string;
  firmware?: readonly [number, number, number];
}

/** The PIV attestation certificate object (YubiKey's YKPIV_OBJ_ATTESTATION): f9's certificate. */
export const ATTESTATION_CERT_OBJECT = 0x5fff01;

export function padReference(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > 8) throw new RangeError('a PIN or PUK has at most 8 bytes');
  return Buffer.concat([bytes, Buffer.alloc(8 - bytes.length, 0xff)]).toString('hex');
}

export async function createCardState(options: NewCardOptions = {}): Promise<PivCardState> {
  const serial = options.serial ?? randomInt(10_000_000, 99_999_999);
  const algorithm = options.managementKeyAlgorithm === '3des' ? ALGORITHM.TDES : ALGORITHM.AES192;
  const attestation = await createCardAttestation(serial);
  const state: PivCardState = {
    version: STATE_VERSION,
    serial,
    firmware: [...(options.firmware ?? DEFAULT_FIRMWARE)] as [number, number, number],
    formFactor: DEFAULT_FORM_FACTOR,
    pin: { paddedHex: padReference(DEFAULT_PIN), retries: MAX_PIN_RETRIES, maxRetries: MAX_PIN_RETRIES },
    puk: { paddedHex: padReference(DEFAULT_PUK), retries: MAX_PUK_RETRIES, maxRetries: MAX_PUK_RETRIES },
    managementKey: { algorithm, keyHex: options.managementKeyHex ?? DEFAULT_MANAGEMENT_KEY_HEX },
    defaultManagementKeyAlgorithm: algorithm,
    slots: {},
    objects: {},
    attestation,
  };
  state.objects[ATTESTATION_CERT_OBJECT.toString(16)] = Buffer.from(
    certificateObject(attestation.device.certPem),
  ).toString('hex');
  return state;
}

/** SP 800-73-4 Part 1 Table 10: 70 certificate, 71 CertInfo (0: not compressed), FE error detection code. */
export function certificateObject(certPem: string): Uint8Array {
  const der = Buffer.from(
    certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
    'base64',
  );
  const length =
    der.length < 0x80
      ? [der.length]
      : der.length <= 0xff
        ? [0x81, der.length]
        : [0x82, der.length >> 8, der.length & 0xff];
  return Uint8Array.from([0x70, ...length, ...der, 0x71, 0x01, 0x00, 0xfe, 0x00]);
}

/** undefined when the file does not exist. */
export function readCardState(path: string): PivCardState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CardStateError(`cannot read the PIV card state ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CardStateError(`${path} is not JSON`, { cause: error });
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    throw new CardStateError(
      `${path} is not a Keyport lab PIV card state (version ${STATE_VERSION}): ${parsed.error.issues[0]?.message ?? ''}`,
    );
  }
  return parsed.data;
}

export function writeCardState(path: string, state: PivCardState): void {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temporary);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (error) {
    unlinkSync(temporary);
    throw error;
  }
}

/** Reads the state file, creating it on first use. */
export async function loadOrCreateCardState(
  path: string,
  options: NewCardOptions = {},
): Promise<PivCardState> {
  const existing = readCardState(path);
  if (existing) return existing;
  const state = await createCardState(options);
  writeCardState(path, state);
  return state;
}
