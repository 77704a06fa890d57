// Hardware-key policies at login (the seed "Hardware Key Support"): when the cluster requires the session key
// to live on a PIV card (step one's answer says so, or Login is refused with PRIVATE_KEY_POLICY_NOT_MET),
// the client says the seed's two lines, prepares the key on the card (client/hardware/piv/session-key.ts)
// and logs in with it, sending the slot's attestation with Login. A profile whose key is on the card opens a
// card signer (its calls carry a proof of possession: the key cannot do mTLS).
import type { KeyObject } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type { HardwareKeyAttestation } from '../../proto/gen/keyport/v1/auth';
import type { MFAAuthenticateChallenge } from '../../proto/gen/keyport/v1/mfa';
import {
  isPrivateKeyPolicy,
  policySatisfies,
  unmetPolicyMessage,
} from '../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import type { HardwareKeyPolicy } from '../../proto/resources/schema';
import { parseSlot, slotName } from '../hardware/piv/commands';
import { PivError } from '../hardware/piv/errors';
import { openPivSession } from '../hardware/piv/session';
import type { PivSession } from '../hardware/piv/session';
import { choosePivSlot, preparePivSessionKey } from '../hardware/piv/session-key';
import type { PivSetupPrompts, PreparedSessionKey } from '../hardware/piv/session-key';
import { openCardSigner } from '../hardware/piv/signer';
import type { CardSessions } from '../hardware/piv/card-sessions';
import type { PivPrompts } from '../hardware/piv/signer';
import type { SessionSigner } from '../keystore';
import type { HardwareKeyRecord } from '../profiles';

/** The seed's second line, after `Unmet private key policy "<policy>".` */
export const RELOGIN_NOTICE = 'Relogging in with hardware-backed private key.';

export interface HardwareKeyLoginOptions {
  /** The PIV PIN, "Tap your YubiKey", and a new PIN and PUK for a card still on the factory ones. */
  prompts: PivSetupPrompts;
  /** `--piv-slot`. */
  slot?: string;
  /** KEYPORT_PIV_SLOT. */
  envSlot?: string;
  /** `--piv-overwrite`: replace a key in the slot that Keyport did not make. */
  overwrite?: boolean;
  /** Opens the card (default: the first reader with a PIV card, on PCSCLITE_CSOCK_NAME's pcscd). */
  openSession?: () => Promise<PivSession>;
}

/** What step one said of the session key: the policy it must meet and the cluster's slot. */
export interface StepOneKeyPolicy {
  policy: PrivateKeyPolicy;
  slot?: string;
}

/** Step one's private-key policy, when the cluster said one (an older one says nothing). */
export function stepOneKeyPolicy(challenge: MFAAuthenticateChallenge): StepOneKeyPolicy | undefined {
  const policy = challenge.privateKeyPolicy;
  if (!policy) return undefined;
  if (!isPrivateKeyPolicy(policy)) throw unknownPolicy(policy);
  return { policy, ...(challenge.pivSlot ? { slot: challenge.pivSlot } : {}) };
}

/** The policy a PRIVATE_KEY_POLICY_NOT_MET refusal names, or undefined for any other error. */
export function refusedKeyPolicy(error: unknown): PrivateKeyPolicy | undefined {
  if (!(error instanceof KeyportError) || error.code !== 'PRIVATE_KEY_POLICY_NOT_MET') return undefined;
  const policy = error.fields.privateKeyPolicy;
  if (!policy) return undefined;
  if (!isPrivateKeyPolicy(policy)) throw unknownPolicy(policy);
  return policy;
}

function unknownPolicy(policy: string): KeyportError {
  return new KeyportError(
    'PRIVATE_KEY_POLICY_NOT_MET',
    `${unmetPolicyMessage(policy as PrivateKeyPolicy)} This version of keyport does not know that policy: update it.`,
    { privateKeyPolicy: policy },
  );
}

/** The seed's two lines, said when a login moves from a software key to the card. */
export function reloginNotices(policy: PrivateKeyPolicy): string[] {
  return [unmetPolicyMessage(policy), RELOGIN_NOTICE];
}

/** A session key on the card, prepared for a login, with the session it signs through. */
export interface CardSessionKey {
  prepared: PreparedSessionKey;
  session: PivSession;
  /** The policy it was prepared for. */
  policy: HardwareKeyPolicy;
}

export function meetsPolicy(key: CardSessionKey | undefined, required: PrivateKeyPolicy): boolean {
  return required === 'none' || (!!key && policySatisfies(key.prepared.meets, required));
}

/** Prepares the card's key for `policy` in its slot (--piv-slot, KEYPORT_PIV_SLOT, the cluster's, the default). */
export async function prepareCardSessionKey(
  options: HardwareKeyLoginOptions | undefined,
  policy: HardwareKeyPolicy,
  clusterSlot: string | undefined,
): Promise<CardSessionKey> {
  if (!options) {
    throw new KeyportError(
      'PRIVATE_KEY_POLICY_NOT_MET',
      `${unmetPolicyMessage(policy)} Your session key must live on a hardware key (a YubiKey), and this ` +
        'client cannot use one: log in with `keyport login`.',
      { privateKeyPolicy: policy },
    );
  }
  const { slot } = choosePivSlot(policy, {
    ...(options.slot ? { flag: options.slot } : {}),
    ...(options.envSlot ? { env: options.envSlot } : {}),
    ...(clusterSlot ? { cluster: clusterSlot } : {}),
  });
  const session = await (options.openSession ?? (() => openPivSession()))();
  try {
    const prepared = await preparePivSessionKey({
      session,
      policy,
      slot,
      overwrite: options.overwrite ?? false,
      prompts: options.prompts,
    });
    return { prepared, session, policy };
  } catch (error) {
    await session.close();
    throw error;
  }
}

/** The LoginRequest field: the slot's attestation and the card's f9 certificate. */
export function loginAttestation(key: CardSessionKey): HardwareKeyAttestation {
  const { slotCertificate, attestationCertificate } = key.prepared.attestation;
  return {
    slotCertificate: Buffer.from(slotCertificate),
    attestationCertificate: Buffer.from(attestationCertificate),
    intermediates: [],
  };
}

/** What the profile keeps of a card key. */
export function hardwareKeyRecord(key: CardSessionKey): HardwareKeyRecord {
  const { prepared } = key;
  return {
    slot: slotName(prepared.slot),
    ...(prepared.serial !== undefined ? { serial: prepared.serial } : {}),
    policy: prepared.meets,
    pinPolicy: prepared.keyPolicy.pin,
    touchPolicy: prepared.keyPolicy.touch,
  };
}

/** The key id a card session's profile names (no keystore entry has it). */
export function cardKeyId(record: HardwareKeyRecord): string {
  return `piv/${record.serial ?? 'card'}/${record.slot}`;
}

const noCardPrompts: PivPrompts = {
  pin: () =>
    Promise.reject(
      new PivError('PIN_REQUIRED', 'The PIV card needs its PIN, and this command cannot ask for it.'),
    ),
  touch: () => {},
};

/**
 * The signer of a profile's card key (its public key from the session certificate): the card is opened at
 * the first signature, and must be the one the key was made on. With `cards`, the signer uses that card's
 * long-lived session (CardSessions: a PIN-"once" key asks its PIN once while the card stays in) and its
 * `close` leaves it open.
 */
export function openProfileCardSigner(
  record: HardwareKeyRecord,
  publicKey: KeyObject,
  prompts: PivPrompts = noCardPrompts,
  source: CardSessions | (() => Promise<PivSession>) = () => openPivSession(),
): { signer: SessionSigner; close(): Promise<void> } {
  const common = {
    slot: parseSlot(record.slot),
    publicKey,
    policy: { pin: record.pinPolicy, touch: record.touchPolicy },
    prompts,
    ...(record.serial !== undefined ? { serial: record.serial } : {}),
  };
  if (typeof source === 'function') return openCardSigner({ ...common, open: source });
  return openCardSigner({ ...common, open: () => source.session(record.serial), shared: source });
}
