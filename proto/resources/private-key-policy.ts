// The private-key policy a session must meet, from the cluster_auth_preference and the user's roles
// (`require_session_mfa: hardware_key | hardware_key_touch | hardware_key_pin | hardware_key_touch_and_pin`),
// and the PIV slot each policy uses by default. Pure: shared by keyport-auth (which decides) and clients
// (which prepare a key in the right slot).
import type { HardwareKeyPolicy, PivSlot, RequireSessionMfa } from './schema';

/** `none`: any session key; otherwise the key must live on a PIV card with (at least) these protections. */
export type PrivateKeyPolicy = 'none' | HardwareKeyPolicy;

export const PRIVATE_KEY_POLICIES: readonly PrivateKeyPolicy[] = [
  'none',
  'hardware_key',
  'hardware_key_touch',
  'hardware_key_pin',
  'hardware_key_touch_and_pin',
];

/** What a policy asks of the key, as three independent demands. */
export interface KeyDemands {
  hardware: boolean;
  touch: boolean;
  pin: boolean;
}

export function demandsOf(policy: PrivateKeyPolicy): KeyDemands {
  switch (policy) {
    case 'none':
      return { hardware: false, touch: false, pin: false };
    case 'hardware_key':
      return { hardware: true, touch: false, pin: false };
    case 'hardware_key_touch':
      return { hardware: true, touch: true, pin: false };
    case 'hardware_key_pin':
      return { hardware: true, touch: false, pin: true };
    case 'hardware_key_touch_and_pin':
      return { hardware: true, touch: true, pin: true };
  }
}

export function policyOf(demands: KeyDemands): PrivateKeyPolicy {
  if (demands.touch && demands.pin) return 'hardware_key_touch_and_pin';
  if (demands.touch) return 'hardware_key_touch';
  if (demands.pin) return 'hardware_key_pin';
  return demands.hardware || demands.touch || demands.pin ? 'hardware_key' : 'none';
}

/** `require_session_mfa` as a key policy: `true`/`false` ask for per-session MFA, not for a hardware key. */
export function keyPolicyOf(requireSessionMfa: RequireSessionMfa | undefined): PrivateKeyPolicy {
  return typeof requireSessionMfa === 'string' ? requireSessionMfa : 'none';
}

/**
 * The least policy that satisfies both. Touch and PIN are incomparable, so this is a join, not a maximum:
 * a role asking for touch and another asking for a PIN need hardware_key_touch_and_pin.
 */
export function combinePolicies(left: PrivateKeyPolicy, right: PrivateKeyPolicy): PrivateKeyPolicy {
  const a = demandsOf(left);
  const b = demandsOf(right);
  return policyOf({ hardware: a.hardware || b.hardware, touch: a.touch || b.touch, pin: a.pin || b.pin });
}

/** Whether a key that meets `met` also meets `required`. */
export function policySatisfies(met: PrivateKeyPolicy, required: PrivateKeyPolicy): boolean {
  return combinePolicies(met, required) === met;
}

/** The policy a user's session must meet: the join of the cap's and every role's `require_session_mfa`. */
export function requiredKeyPolicy(
  cap: { require_session_mfa?: RequireSessionMfa },
  roles: readonly { spec: { options?: { require_session_mfa?: RequireSessionMfa } } }[],
): PrivateKeyPolicy {
  return roles.reduce(
    (policy, role) => combinePolicies(policy, keyPolicyOf(role.spec.options?.require_session_mfa)),
    keyPolicyOf(cap.require_session_mfa),
  );
}

/** The seed's default slots: hardware_key 9a, hardware_key_touch 9c, hardware_key_touch_and_pin 9d, hardware_key_pin 9e. */
export const DEFAULT_PIV_SLOTS: Readonly<Record<HardwareKeyPolicy, PivSlot>> = {
  hardware_key: '9a',
  hardware_key_touch: '9c',
  hardware_key_touch_and_pin: '9d',
  hardware_key_pin: '9e',
};

/** The slot for a policy: the cap's `hardware_key.piv_slot` when set, the policy's default otherwise. */
export function pivSlotFor(policy: HardwareKeyPolicy, capSlot?: PivSlot): PivSlot {
  return capSlot ?? DEFAULT_PIV_SLOTS[policy];
}

/** The seed's wording of a refusal: `Unmet private key policy "hardware_key_touch".` */
export function unmetPolicyMessage(policy: PrivateKeyPolicy): string {
  return `Unmet private key policy "${policy}".`;
}

export function isPrivateKeyPolicy(value: string): value is PrivateKeyPolicy {
  return (PRIVATE_KEY_POLICIES as readonly string[]).includes(value);
}
