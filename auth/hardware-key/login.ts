// Login's hardware-key part: the policy this user's session key must meet (the cap's and every role's
// require_session_mfa, joined), and the check of the attestation that comes with Login against it.
import { KeyportError } from '../../proto/errors';
import type { HardwareKeyAttestation } from '../../proto/gen/keyport/v1/auth';
import {
  combinePolicies,
  isPrivateKeyPolicy,
  pivSlotFor,
  policySatisfies,
  requiredKeyPolicy,
  unmetPolicyMessage,
} from '../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import type { PivSlot, Role } from '../../proto/resources/schema';
import { PRIVATE_KEY_POLICY_EXTENSION } from '../certificates';
import type { ClusterPolicy } from '../policy';
import { parsePivAttestation, verifyPivAttestation } from './attestation';
import type { VerifiedHardwareKey } from './attestation';
import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** What step one tells the client: the policy and the slot to prepare a key in (nothing when none). */
export function keyPolicyHint(
  cap: ClusterPolicy,
  roles: readonly Role[],
): { privateKeyPolicy: PrivateKeyPolicy; pivSlot?: PivSlot } {
  const policy = requiredKeyPolicy(cap, roles);
  return policy === 'none'
    ? { privateKeyPolicy: policy }
    : { privateKeyPolicy: policy, pivSlot: pivSlotFor(policy, cap.hardware_key.piv_slot) };
}

export function policyNotMet(required: PrivateKeyPolicy, why: string): KeyportError {
  return new KeyportError('PRIVATE_KEY_POLICY_NOT_MET', `${unmetPolicyMessage(required)} ${why}`, {
    privateKeyPolicy: required,
    resolvableByRelogin: true,
  });
}

/**
 * The policy the Login's session key meets. Without an attestation: "none", refused with
 * PRIVATE_KEY_POLICY_NOT_MET when the user's policy asks for more. With one: it is verified (the chain, the
 * key, the PIN and touch policies; see attestation.ts) whatever the policy, and must meet it.
 */
export function checkSessionKey(options: {
  required: PrivateKeyPolicy;
  attestation: HardwareKeyAttestation | undefined;
  sessionKey: KeyObject;
  /** The key the SSH certificate will name: it must be the attested key too. */
  sshKey: KeyObject;
  extraRoots: readonly string[];
  now: Date;
}): { policy: PrivateKeyPolicy; verified?: VerifiedHardwareKey } {
  const { required, attestation } = options;
  if (!attestation) {
    if (required === 'none') return { policy: 'none' };
    throw policyNotMet(
      required,
      'Sign in again with a key generated on your hardware key, and send its attestation.',
    );
  }
  const spki = (key: KeyObject) => publicKeyOf(key).export({ type: 'spki', format: 'der' });
  if (!spki(options.sshKey).equals(spki(options.sessionKey))) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'With a hardware key, the SSH public key must be the attested key (leave ssh_public_key empty).',
      { fieldPath: 'ssh_public_key' },
    );
  }
  const parsed = parsePivAttestation(attestation, 'hardware_key_attestation');
  const verified = verifyPivAttestation(parsed, {
    sessionKey: options.sessionKey,
    // An attested key meets at least hardware_key, whatever is required.
    required: combinePolicies(required, 'hardware_key'),
    extraRoots: options.extraRoots,
    now: options.now,
  });
  return { policy: verified.policy, verified };
}

function publicKeyOf(key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key);
}

/**
 * For every authenticated call (identity.ts): the policy the session's certificate says its key meets
 * (`keyport-private-key-policy` in its identity, absent for a software key) against the policy its user
 * must meet now. A policy raised after the login gives PRIVATE_KEY_POLICY_NOT_MET naming today's policy.
 */
export function checkCertificateKeyPolicy(
  extra: Readonly<Record<string, string>>,
  required: PrivateKeyPolicy,
): void {
  const carried = extra[PRIVATE_KEY_POLICY_EXTENSION];
  const met: PrivateKeyPolicy = carried !== undefined && isPrivateKeyPolicy(carried) ? carried : 'none';
  if (!policySatisfies(met, required)) {
    throw policyNotMet(required, 'Sign in again with a key on your hardware key that meets it.');
  }
}
