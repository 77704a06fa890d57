import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import { checkCertificateKeyPolicy } from './login';

function refusal(run: () => void): KeyportError | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof KeyportError) return error;
    throw error;
  }
}

describe("a session certificate's key policy against today's", () => {
  it('passes a certificate whose key meets the policy, and any certificate when none is required', () => {
    expect(refusal(() => checkCertificateKeyPolicy({}, 'none'))).toBeUndefined();
    expect(
      refusal(() =>
        checkCertificateKeyPolicy(
          { 'keyport-private-key-policy': 'hardware_key_touch_and_pin' },
          'hardware_key_pin',
        ),
      ),
    ).toBeUndefined();
  });

  it('refuses a software session, or one below a policy raised since, naming the policy', () => {
    const extras: Record<string, string>[] = [
      {},
      { 'keyport-private-key-policy': 'hardware_key_pin' },
      { 'keyport-private-key-policy': 'bogus' },
    ];
    for (const extra of extras) {
      const error = refusal(() => checkCertificateKeyPolicy(extra, 'hardware_key_touch'));
      expect(error?.code).toBe('PRIVATE_KEY_POLICY_NOT_MET');
      expect(error?.message).toContain('Unmet private key policy "hardware_key_touch".');
      expect(error?.fields).toMatchObject({
        privateKeyPolicy: 'hardware_key_touch',
        resolvableByRelogin: true,
      });
    }
  });
});
