import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  combinePolicies,
  DEFAULT_PIV_SLOTS,
  PRIVATE_KEY_POLICIES,
  pivSlotFor,
  policySatisfies,
  requiredKeyPolicy,
  unmetPolicyMessage,
} from './private-key-policy';
import type { PrivateKeyPolicy } from './private-key-policy';
import type { RequireSessionMfa } from './schema';

const role = (requireSessionMfa?: RequireSessionMfa) => ({
  spec: { options: requireSessionMfa === undefined ? {} : { require_session_mfa: requireSessionMfa } },
});
const policy = fc.constantFrom(...PRIVATE_KEY_POLICIES);

describe('private-key policy', () => {
  it('orders none < hardware_key < touch, pin < touch_and_pin; touch and pin are incomparable', () => {
    expect(combinePolicies('none', 'hardware_key')).toBe('hardware_key');
    expect(combinePolicies('hardware_key', 'hardware_key_touch')).toBe('hardware_key_touch');
    expect(combinePolicies('hardware_key_pin', 'hardware_key')).toBe('hardware_key_pin');
    expect(combinePolicies('hardware_key_touch', 'hardware_key_pin')).toBe('hardware_key_touch_and_pin');
    expect(combinePolicies('hardware_key_touch_and_pin', 'hardware_key_touch')).toBe(
      'hardware_key_touch_and_pin',
    );
    expect(policySatisfies('hardware_key_touch', 'hardware_key_pin')).toBe(false);
    expect(policySatisfies('hardware_key_pin', 'hardware_key_touch')).toBe(false);
    expect(policySatisfies('hardware_key_touch_and_pin', 'hardware_key_pin')).toBe(true);
    expect(policySatisfies('none', 'hardware_key')).toBe(false);
  });

  it('combines as a join: commutative, associative, idempotent, with none as identity', () => {
    fc.assert(
      fc.property(policy, policy, policy, (a, b, c) => {
        expect(combinePolicies(a, b)).toBe(combinePolicies(b, a));
        expect(combinePolicies(a, combinePolicies(b, c))).toBe(combinePolicies(combinePolicies(a, b), c));
        expect(combinePolicies(a, a)).toBe(a);
        expect(combinePolicies(a, 'none')).toBe(a);
        const joined = combinePolicies(a, b);
        expect(policySatisfies(joined, a) && policySatisfies(joined, b)).toBe(true);
        // The least such policy: any policy meeting both meets the join.
        if (policySatisfies(c, a) && policySatisfies(c, b)) expect(policySatisfies(c, joined)).toBe(true);
      }),
    );
  });

  it("takes the strictest across the cap and the user's roles", () => {
    expect(requiredKeyPolicy({}, [])).toBe('none');
    expect(requiredKeyPolicy({ require_session_mfa: true }, [role(false), role()])).toBe('none');
    expect(requiredKeyPolicy({ require_session_mfa: 'hardware_key' }, [role()])).toBe('hardware_key');
    expect(requiredKeyPolicy({}, [role('hardware_key_touch'), role(true)])).toBe('hardware_key_touch');
    expect(requiredKeyPolicy({}, [role('hardware_key_touch'), role('hardware_key_pin')])).toBe(
      'hardware_key_touch_and_pin',
    );
    expect(requiredKeyPolicy({ require_session_mfa: 'hardware_key_pin' }, [role('hardware_key_touch')])).toBe(
      'hardware_key_touch_and_pin',
    );
  });

  it("uses the seed's default slots, unless the cap names one", () => {
    expect(DEFAULT_PIV_SLOTS).toEqual({
      hardware_key: '9a',
      hardware_key_touch: '9c',
      hardware_key_touch_and_pin: '9d',
      hardware_key_pin: '9e',
    });
    expect(pivSlotFor('hardware_key_touch')).toBe('9c');
    expect(pivSlotFor('hardware_key_touch', '9a')).toBe('9a');
  });

  it('words a refusal as the seed does', () => {
    const required: PrivateKeyPolicy = 'hardware_key_touch';
    expect(unmetPolicyMessage(required)).toBe('Unmet private key policy "hardware_key_touch".');
  });
});
