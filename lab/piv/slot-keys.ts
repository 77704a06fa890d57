// The asymmetric slot keys: GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2 §3.3.2) with YubiKey's PIN-
// and touch-policy tags, their use through GENERAL AUTHENTICATE (§3.2.4: ECDSA over a digest the host
// made, ECDH with a peer point), GET METADATA for a slot, and ATTEST (YubiKey INS F9).
// Only ECC P-256 (algorithm 11) is offered.
import { createECDH, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CardResponse, CommandApdu } from './apdu';
import { ok, status, SW } from './apdu';
import { attestSlotKey } from './attestation';
import type { CardContext } from './context';
import { prehashSigner } from './ecdsa-prehashed';
import type { PrehashSigner } from './ecdsa-prehashed';
import type { PinPolicy, TouchPolicy } from './policy';
import {
  ALGORITHM,
  defaultPinPolicy,
  isGeneratableSlot,
  KEY_SLOTS,
  PIN_POLICY,
  slotName,
  TOUCH_CACHE_MS,
  TOUCH_POLICY,
} from './policy';
import type { StoredSlotKey } from './state';
import { encodeTlv, TlvError, tlvMap } from './tlv';

const P256_FIELD_BYTES = 32;

interface LoadedKey {
  privateKey: KeyObject;
  signer: PrehashSigner;
  point: Uint8Array;
}

/** Parsed keys, so a signature does not parse PEM each time; an entry goes with its slot's stored key. */
const loadedKeys = new WeakMap<StoredSlotKey, LoadedKey>();

function loaded(key: StoredSlotKey): LoadedKey {
  let entry = loadedKeys.get(key);
  if (!entry) {
    const privateKey = createPrivateKey(key.privateKeyPem);
    entry = {
      privateKey,
      signer: prehashSigner(privateKey),
      point: uncompressedPoint(createPublicKey(privateKey)),
    };
    loadedKeys.set(key, entry);
  }
  return entry;
}

function uncompressedPoint(publicKey: KeyObject): Uint8Array {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return new Uint8Array(spki.subarray(spki.length - 65)); // P-256 SPKI ends with the 65-byte point
}

/** The public key template of SP 800-73-4 Part 2 Table 14 for ECC: 7F49 { 86 point }. */
function publicKeyTemplate(point: Uint8Array): Uint8Array {
  return encodeTlv(0x7f49, encodeTlv(0x86, point));
}

/** GENERATE ASYMMETRIC KEY PAIR (INS 47, P1 00, P2 slot): AC { 80 alg, [AA pin policy], [AB touch policy] }. */
export function generateKeyPair(ctx: CardContext, cmd: CommandApdu): CardResponse {
  if (cmd.p1 !== 0x00 || !isGeneratableSlot(cmd.p2)) return status(SW.INCORRECT_P1P2);
  if (!ctx.session.managementAuthenticated) return status(SW.SECURITY_STATUS_NOT_SATISFIED);
  let fields: Map<number, Uint8Array>;
  try {
    const outer = tlvMap(cmd.data);
    const control = outer.get(0xac);
    if (!control || outer.size !== 1) return status(SW.INCORRECT_DATA);
    fields = tlvMap(control);
  } catch (error) {
    if (error instanceof TlvError) return status(SW.INCORRECT_DATA);
    throw error;
  }
  const algorithm = single(fields.get(0x80));
  if (algorithm !== ALGORITHM.ECC_P256) return status(SW.INCORRECT_DATA);
  const pinPolicy = policyValue(fields.get(0xaa), 3);
  const touchPolicy = policyValue(fields.get(0xab), 3);
  if (pinPolicy === null || touchPolicy === null) return status(SW.INCORRECT_DATA);
  for (const tag of fields.keys())
    if (tag !== 0x80 && tag !== 0xaa && tag !== 0xab) return status(SW.INCORRECT_DATA);

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const stored: StoredSlotKey = {
    algorithm: ALGORITHM.ECC_P256,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    pinPolicy: (pinPolicy === PIN_POLICY.DEFAULT ? defaultPinPolicy(cmd.p2) : pinPolicy) as PinPolicy,
    touchPolicy: (touchPolicy === TOUCH_POLICY.DEFAULT ? TOUCH_POLICY.NEVER : touchPolicy) as TouchPolicy,
    origin: 'generated',
  };
  ctx.state.slots[slotName(cmd.p2)] = stored;
  ctx.save();
  return ok(publicKeyTemplate(loaded(stored).point));
}

/** A one-byte value 0..max, or undefined → 0 (default); null when malformed. */
function policyValue(value: Uint8Array | undefined, max: number): number | null {
  if (value === undefined) return 0;
  const v = single(value);
  return v === undefined || v > max ? null : v;
}

function single(value: Uint8Array | undefined): number | undefined {
  return value?.length === 1 ? value[0] : undefined;
}

/** The checks before any use of a slot's private key: PIN policy, then touch (YubiKey order). */
async function authorizeUse(ctx: CardContext, key: StoredSlotKey): Promise<CardResponse | undefined> {
  if (key.pinPolicy === PIN_POLICY.ONCE && !ctx.session.pinVerified) {
    return status(SW.SECURITY_STATUS_NOT_SATISFIED);
  }
  if (key.pinPolicy === PIN_POLICY.ALWAYS && !(ctx.session.pinVerified && ctx.session.pinFresh)) {
    return status(SW.SECURITY_STATUS_NOT_SATISFIED);
  }
  const last = ctx.touchCache.lastTouchAt;
  const cached =
    key.touchPolicy === TOUCH_POLICY.CACHED && last !== undefined && ctx.now() - last < TOUCH_CACHE_MS;
  if (key.touchPolicy !== TOUCH_POLICY.NEVER && !cached) {
    const outcome = await ctx.touch.request();
    // A YubiKey whose touch times out answers 6982, as for a missing PIN.
    if (outcome !== 'approved') return status(SW.SECURITY_STATUS_NOT_SATISFIED);
    ctx.touchCache.lastTouchAt = ctx.now();
  }
  if (key.pinPolicy === PIN_POLICY.ALWAYS) ctx.session.pinFresh = false;
  return undefined;
}

/**
 * GENERAL AUTHENTICATE (INS 87) with a key slot in P2. `template` is the inside of 7C:
 *   { 82 ∅, 81 digest }  → 7C { 82 DER ECDSA signature }
 *   { 82 ∅, 85 point }   → 7C { 82 shared secret x }
 */
export async function useSlotKey(
  ctx: CardContext,
  cmd: CommandApdu,
  template: Uint8Array,
): Promise<CardResponse> {
  if (!isGeneratableSlot(cmd.p2)) return status(SW.INCORRECT_P1P2);
  const key = ctx.state.slots[slotName(cmd.p2)];
  if (!key) return status(SW.REFERENCE_NOT_FOUND);
  if (cmd.p1 !== key.algorithm) return status(SW.INCORRECT_P1P2);
  let fields: Map<number, Uint8Array>;
  try {
    fields = tlvMap(template);
  } catch (error) {
    if (error instanceof TlvError) return status(SW.INCORRECT_DATA);
    throw error;
  }
  const response = fields.get(0x82);
  const digest = fields.get(0x81);
  const peer = fields.get(0x85);
  if (response?.length !== 0 || fields.size !== 2 || (digest === undefined) === (peer === undefined)) {
    return status(SW.INCORRECT_DATA);
  }
  if (digest !== undefined && (digest.length === 0 || digest.length > P256_FIELD_BYTES)) {
    return status(SW.INCORRECT_DATA);
  }
  if (peer !== undefined && (peer.length !== 65 || peer[0] !== 0x04)) return status(SW.INCORRECT_DATA);

  const refused = await authorizeUse(ctx, key);
  if (refused) return refused;
  const { signer, privateKey } = loaded(key);
  if (digest !== undefined) return ok(encodeTlv(0x7c, encodeTlv(0x82, signer.sign(digest))));
  const ecdh = createECDH('prime256v1');
  const d = privateKey.export({ format: 'jwk' }).d as string;
  ecdh.setPrivateKey(Buffer.from(d, 'base64url'));
  let secret: Buffer;
  try {
    secret = ecdh.computeSecret(peer as Uint8Array);
  } catch {
    return status(SW.INCORRECT_DATA); // not a point on the curve
  }
  return ok(encodeTlv(0x7c, encodeTlv(0x82, secret)));
}

/** GET METADATA (INS F7) for a key slot: 01 algorithm, 02 PIN and touch policy, 03 origin, 04 public key. */
export function slotKeyMetadata(ctx: CardContext, slot: number): Uint8Array | undefined {
  const key = ctx.state.slots[slotName(slot)];
  if (!key) return undefined;
  return Uint8Array.from([
    ...encodeTlv(0x01, Uint8Array.of(key.algorithm)),
    ...encodeTlv(0x02, Uint8Array.of(key.pinPolicy, key.touchPolicy)),
    ...encodeTlv(0x03, Uint8Array.of(0x01)), // generated on the card
    ...encodeTlv(0x04, encodeTlv(0x86, loaded(key).point)),
  ]);
}

/** ATTEST (YubiKey INS F9, P1 slot, P2 00): the DER attestation certificate of a key generated here. */
export async function attest(ctx: CardContext, cmd: CommandApdu): Promise<CardResponse> {
  if (cmd.p2 !== 0x00 || cmd.p1 === KEY_SLOTS.attestation || !isGeneratableSlot(cmd.p1)) {
    return status(SW.INCORRECT_P1P2);
  }
  if (cmd.data.length !== 0) return status(SW.WRONG_LENGTH);
  const key = ctx.state.slots[slotName(cmd.p1)];
  if (!key) return status(SW.REFERENCE_NOT_FOUND);
  const certificate = await attestSlotKey(
    ctx.state.attestation.device,
    { serial: ctx.state.serial, firmware: ctx.state.firmware, formFactor: ctx.state.formFactor },
    {
      slot: cmd.p1,
      publicKey: createPublicKey(loaded(key).privateKey),
      pinPolicy: key.pinPolicy,
      touchPolicy: key.touchPolicy,
    },
  );
  return ok(certificate);
}
