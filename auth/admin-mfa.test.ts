// Which clusters enforce MFA for admin actions, and which verbs are writes: the seed's condition, as the
// cap's legacy and current spellings canonicalise it.
import { describe, expect, it } from 'vitest';
import { normalizeCap } from '../proto/resources/schema';
import type { ClusterAuthPreferenceSpec } from '../proto/resources/schema';
import { adminMfaEnforced, isAdminWrite } from './admin-mfa';

const enforced = (spec: ClusterAuthPreferenceSpec) => {
  const canonical = normalizeCap({ webauthn: { rp_id: 'example.com' }, ...spec });
  return adminMfaEnforced({
    secondFactorRequired: canonical.secondFactorRequired,
    secondFactors: canonical.second_factors,
  });
};

describe('MFA for admin actions is enforced where WebAuthn is the only second factor', () => {
  it.each([
    [{ second_factors: ['webauthn'] }, true],
    [{ second_factor: 'webauthn' }, true],
    [{ second_factors: ['webauthn', 'otp'] }, false],
    [{ second_factor: 'on' }, false],
    [{ second_factor: 'optional' }, false],
    [{ second_factors: ['otp'] }, false],
    [{ second_factor: 'off' }, false],
    [{ second_factors: [] }, false],
  ] as [ClusterAuthPreferenceSpec, boolean][])('%j → %s', (spec, expected) => {
    expect(enforced(spec)).toBe(expected);
  });
});

describe('admin writes', () => {
  it('are every verb but read and list, so a new verb is a write by default', () => {
    expect(isAdminWrite('read')).toBe(false);
    expect(isAdminWrite('list')).toBe(false);
    for (const verb of ['create', 'update', 'delete', 'create_enroll_token', 'enroll', 'some_new_verb']) {
      expect(isAdminWrite(verb), verb).toBe(true);
    }
  });
});
