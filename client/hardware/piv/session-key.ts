// A session key on the PIV card for a private-key policy (the seed "Hardware Key Support"): which slot,
// whether the key already there is Keyport's and fits (then it is reused), else a new one generated with
// the policy's PIN and touch policies and marked as Keyport's; a card still on the factory PIN gets a PIN
// and PUK of the person's first. The decisions are pure functions (slot, policies, plan); prepare runs them
// against a PivSession and returns the signer and the slot's attestation for Login.
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { HardwareKeyPolicy } from '../../../proto/resources/schema';
import {
  DEFAULT_PIV_SLOTS,
  demandsOf,
  policyOf,
  policySatisfies,
} from '../../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../../proto/resources/private-key-policy';
import type { SessionSigner } from '../../keystore/signer';
import type { GeneratePolicy, Metadata, PinPolicy, PivSlot, TouchPolicy } from './commands';
import { ALGORITHM_ECCP256, effectivePinPolicy, parseSlot, slotName } from './commands';
import { SW } from './apdu';
import { PivError } from './errors';
import { managementKeyRejected } from './management-key';
import { isKeyportMarker, markerCertificate } from './marker';
import { checkNewSecret, DEFAULT_PIN, DEFAULT_PUK } from './pin';
import type { PivSession } from './session';
import { openPivSigner } from './signer';
import type { PivPrompts } from './signer';

export { DEFAULT_PIN, DEFAULT_PUK } from './pin';

// ---- Pure decisions --------------------------------------------------------------------------------------

export interface SlotChoice {
  slot: PivSlot;
  from: 'flag' | 'env' | 'cluster' | 'default';
}

/**
 * The slot for `policy`: `--piv-slot`, then KEYPORT_PIV_SLOT, then the cluster's (cap
 * `hardware_key.piv_slot`), then the policy's default (9a, 9c, 9d, 9e). The person's own choice comes
 * first: the seed's reason to move off a slot is another application's key in it, which only the person
 * knows of (yubikey-agent in 9a); the cluster's slot is the default for everyone else.
 */
export function choosePivSlot(
  policy: HardwareKeyPolicy,
  given: { flag?: string; env?: string; cluster?: string },
): SlotChoice {
  if (given.flag) return { slot: parseSlot(given.flag), from: 'flag' };
  if (given.env) return { slot: parseSlot(given.env), from: 'env' };
  if (given.cluster) return { slot: parseSlot(given.cluster), from: 'cluster' };
  return { slot: parseSlot(DEFAULT_PIV_SLOTS[policy]), from: 'default' };
}

/** The PIN and touch policies a new key gets for `policy`: PIN once, touch cached (15 s), as the seed says. */
export function generatePolicyFor(policy: HardwareKeyPolicy): GeneratePolicy {
  const demands = demandsOf(policy);
  return { pin: demands.pin ? 'once' : 'never', touch: demands.touch ? 'cached' : 'never' };
}

/** The private-key policy a slot key with these PIN and touch policies meets. */
export function policyMetBy(slot: PivSlot, key: { pin: PinPolicy; touch: TouchPolicy }): PrivateKeyPolicy {
  const pin = effectivePinPolicy(slot, key.pin) !== 'never';
  // A YubiKey's default touch policy is never, in every slot.
  const touch = key.touch === 'always' || key.touch === 'cached';
  return policyOf({ hardware: true, touch, pin });
}

/** What is in the slot, as read from the card. */
export interface SlotContents {
  /** GET METADATA of the slot; undefined when the slot holds no key. */
  metadata?: Metadata;
  /** The slot's certificate object; undefined when there is none. */
  certificate?: X509Certificate;
}

export type SlotPlan =
  | { action: 'reuse'; publicKey: KeyObject; policy: { pin: PinPolicy; touch: TouchPolicy } }
  | { action: 'generate'; replacing: 'nothing' | 'keyport' | 'foreign' }
  | { action: 'refuse'; why: 'foreign' };

/**
 * Reuse Keyport's key in the slot when its policies meet `required` (and it was generated on the card, so
 * it can be attested); replace Keyport's own key otherwise; never replace another application's key (or
 * certificate) unless `overwrite`.
 */
export function planSlot(
  slot: PivSlot,
  contents: SlotContents,
  required: HardwareKeyPolicy,
  overwrite: boolean,
): SlotPlan {
  const { metadata, certificate } = contents;
  const publicKey = metadata?.publicKey;
  if (!metadata) {
    if (!certificate) return { action: 'generate', replacing: 'nothing' };
    // A certificate with no key is someone's setup all the same (ykman imports one before the key).
    return overwrite ? { action: 'generate', replacing: 'foreign' } : { action: 'refuse', why: 'foreign' };
  }
  const ours = !!publicKey && isKeyportMarker(certificate, publicKey);
  if (!ours) {
    return overwrite ? { action: 'generate', replacing: 'foreign' } : { action: 'refuse', why: 'foreign' };
  }
  const fits =
    metadata.algorithm === ALGORITHM_ECCP256 &&
    metadata.origin === 'generated' &&
    metadata.policy !== undefined &&
    policySatisfies(policyMetBy(slot, metadata.policy), required);
  return fits && publicKey && metadata.policy
    ? { action: 'reuse', publicKey, policy: metadata.policy }
    : { action: 'generate', replacing: 'keyport' };
}

export function slotInUseError(slot: PivSlot, serial: number | undefined): PivError {
  const card = serial === undefined ? 'your PIV card' : `your PIV card (serial ${serial})`;
  return new PivError(
    'SLOT_IN_USE',
    `Slot ${slotName(slot)} of ${card} holds a key or certificate that Keyport did not make (another ` +
      'application may use it). Keyport does not overwrite it: choose another slot with --piv-slot (or ' +
      'KEYPORT_PIV_SLOT), or log in with --piv-overwrite to replace that key.',
  );
}

// ---- Against the card ------------------------------------------------------------------------------------

export interface PivSetupPrompts extends PivPrompts {
  /** The card still has the factory PIN (123456): a new PIN of 6 to 8 characters. */
  newPin(): Promise<string>;
  /** The card still has the factory PUK (12345678): a new PUK of 6 to 8 characters. */
  newPuk(): Promise<string>;
  /** Says something that needs no answer. */
  notice?(message: string): void;
}

export interface PrepareOptions {
  session: PivSession;
  policy: HardwareKeyPolicy;
  slot: PivSlot;
  /** Replace a key in the slot that Keyport did not make (`--piv-overwrite`). */
  overwrite?: boolean;
  prompts: PivSetupPrompts;
}

export interface PreparedSessionKey {
  signer: SessionSigner;
  slot: PivSlot;
  /** The key's own policies, and the private-key policy they meet. */
  keyPolicy: { pin: PinPolicy; touch: TouchPolicy };
  meets: PrivateKeyPolicy;
  serial: number | undefined;
  reused: boolean;
  /** For Login: the slot key's attestation certificate (ATTEST) and the card's f9 certificate, DER. */
  attestation: { slotCertificate: Uint8Array; attestationCertificate: Uint8Array };
}

export const NEW_PIN_NOTICE =
  'Your PIV card still has its default PIN. Set a PIN (6 to 8 characters) and a PUK (to unblock the PIN) now.';

/**
 * The session key for `policy` in `slot`: Keyport's key in the slot reused when it fits, else a new one
 * generated and marked, which needs the default management key (checked before anything on the card
 * changes: another one gives the seed's error and fix); the PIN and PUK set first when the policy needs the
 * PIN and the card still has the factory ones; then attested. The seed's fix for another management key,
 * a key the person generated in the slot (no certificate), is used when it fits.
 */
export async function preparePivSessionKey(options: PrepareOptions): Promise<PreparedSessionKey> {
  const { session, policy, slot, prompts } = options;
  const contents = await readSlot(session, slot);
  let plan = planSlot(slot, contents, policy, options.overwrite ?? false);
  if (plan.action === 'refuse') plan = await adoptPersonsOwnKey(session, slot, contents, policy);
  if (plan.action === 'generate') await session.authenticateManagementKey();
  if (demandsOf(policy).pin) await ensurePersonalPin(session, prompts);

  let publicKey: KeyObject;
  let keyPolicy: { pin: PinPolicy; touch: TouchPolicy };
  if (plan.action === 'reuse') {
    ({ publicKey, policy: keyPolicy } = plan);
  } else {
    keyPolicy = generatePolicyFor(policy);
    publicKey = await session.generate(slot, keyPolicy);
    await session.writeCertificate(slot, markerCertificate(publicKey));
  }
  const [slotCertificate, attestationCertificate] = [
    await session.attest(slot),
    await session.readAttestationCertificate(),
  ];
  if (!slotCertificate.publicKey.equals(publicKey)) {
    throw new PivError(
      'MALFORMED_RESPONSE',
      `The PIV card attested another key than the one in slot ${slotName(slot)}. Remove the card, insert it again and try again.`,
    );
  }
  return {
    signer: openPivSigner({ session, slot, publicKey, policy: keyPolicy, prompts }),
    slot,
    keyPolicy,
    meets: policyMetBy(slot, keyPolicy),
    serial: session.serial,
    reused: plan.action === 'reuse',
    attestation: {
      slotCertificate: new Uint8Array(slotCertificate.raw),
      attestationCertificate: new Uint8Array(attestationCertificate.raw),
    },
  };
}

/**
 * A key with no certificate, generated on the card, that the person made themselves (the seed's "Custom
 * Key": `ykman piv keys generate` with their own management key writes no certificate). Undefined for
 * anything else in the slot.
 */
export function personsOwnKey(
  slot: PivSlot,
  contents: SlotContents,
  required: HardwareKeyPolicy,
): { publicKey: KeyObject; policy: { pin: PinPolicy; touch: TouchPolicy }; fits: boolean } | undefined {
  const { metadata, certificate } = contents;
  if (certificate || !metadata?.publicKey || !metadata.policy) return undefined;
  if (metadata.algorithm !== ALGORITHM_ECCP256 || metadata.origin !== 'generated') return undefined;
  const fits = policySatisfies(policyMetBy(slot, metadata.policy), required);
  return { publicKey: metadata.publicKey, policy: metadata.policy, fits };
}

/**
 * A slot holding a key Keyport did not make: refused (SLOT_IN_USE), except the seed's custom key. When the
 * card's management key is not the default, Keyport can neither generate nor mark a key, and the person was
 * told to generate it: their key without a certificate is used when its policies meet `required` (left
 * unmarked, since marking needs the management key), and the seed's error says how to make one that does.
 */
async function adoptPersonsOwnKey(
  session: PivSession,
  slot: PivSlot,
  contents: SlotContents,
  required: HardwareKeyPolicy,
): Promise<SlotPlan> {
  const own = personsOwnKey(slot, contents, required);
  if (!own) throw slotInUseError(slot, session.serial);
  const customManagementKey = await session.authenticateManagementKey().then(
    () => false,
    (error: unknown) => {
      if (error instanceof PivError && error.reason === 'MANAGEMENT_KEY_REJECTED') return true;
      throw error;
    },
  );
  if (!customManagementKey) throw slotInUseError(slot, session.serial);
  if (!own.fits) throw managementKeyRejected(SW.SECURITY_STATUS_NOT_SATISFIED);
  return { action: 'reuse', publicKey: own.publicKey, policy: own.policy };
}

/** The slot's key (GET METADATA) and certificate; an empty slot reads as undefined, not as an error. */
export async function readSlot(session: PivSession, slot: PivSlot): Promise<SlotContents> {
  const metadata = await session.metadata(slot).catch((error: unknown) => {
    if (error instanceof PivError && (error.reason === 'NOT_FOUND' || error.reason === 'REFERENCE_NOT_FOUND'))
      return undefined;
    throw error;
  });
  const certificate = await session.readCertificate(slot);
  return { ...(metadata ? { metadata } : {}), ...(certificate ? { certificate } : {}) };
}

/**
 * A card on the factory PIN (GET METADATA of 80 says so) is given the person's PIN, and its factory PUK
 * the person's PUK: anyone knows 123456.
 */
export async function ensurePersonalPin(session: PivSession, prompts: PivSetupPrompts): Promise<boolean> {
  const pin = await session.metadata(0x80);
  if (!pin.isDefault) return false;
  prompts.notice?.(NEW_PIN_NOTICE);
  // Both are checked before the card sees either: a refused one leaves the card as it was.
  const newPin = checkNewSecret(await prompts.newPin(), 'PIN');
  const puk = await session.metadata(0x81);
  const newPuk = puk.isDefault ? checkNewSecret(await prompts.newPuk(), 'PUK') : undefined;
  await session.changePin(DEFAULT_PIN, newPin);
  if (newPuk !== undefined) await session.changePuk(DEFAULT_PUK, newPuk);
  // Verified now with the PIN just set, so the first signature does not ask for it again.
  await session.verifyPin(newPin);
  return true;
}
