// client/webauthn/convert.ts on bytes and JSON: malformed options are typed errors, never crashes.
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../proto/errors';
import { checkRpId, planAssertion, planRegistration } from '../client/webauthn/convert';
import type { PublicKeyCredentialCreationOptionsJSON } from '../client/webauthn';

const challenge = Buffer.alloc(32, 7).toString('base64url');
const creation: PublicKeyCredentialCreationOptionsJSON = {
  rp: { name: 'Keyport' },
  user: { id: Buffer.from('u1').toString('base64url'), name: 'alice', displayName: 'Alice' },
  challenge,
  pubKeyCredParams: [
    { type: 'public-key', alg: -7 },
    { type: 'public-key', alg: -999 },
  ],
  excludeCredentials: [
    { type: 'public-key', id: 'AAEC' },
    { type: 'other', id: 'AAEC' },
  ],
  authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
  extensions: { credProps: true },
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(KeyportError);
    return (error as KeyportError).code;
  }
  return undefined;
}

describe('planRegistration', () => {
  it('reads the L3 JSON, as an object or a string, and defaults the RP ID to the origin host', () => {
    const plan = planRegistration(JSON.stringify(creation), 'proxy.example.com');
    expect(plan.rp.id).toBe('proxy.example.com');
    expect(plan.pubKeyCredParams).toEqual([{ type: 'public-key', alg: -7 }]);
    expect(plan.excludeList).toHaveLength(1);
    expect(plan.residentKey).toBe('required');
    expect(plan.userVerification).toBe('required');
    expect(plan.credProps).toBe(true);
    expect(Buffer.from(plan.user.id).toString()).toBe('u1');
  });

  it('rejects malformed options with INVALID_ARGUMENT', () => {
    expect(code(() => planRegistration('{', 'h'))).toBe('INVALID_ARGUMENT');
    expect(code(() => planRegistration({ ...creation, challenge: 'a+b' }, 'h'))).toBe('INVALID_ARGUMENT');
    expect(code(() => planRegistration({ ...creation, challenge: 'AAAA' }, 'h'))).toBe('INVALID_ARGUMENT');
    expect(code(() => planRegistration({ ...creation, user: { ...creation.user, id: '' } }, 'h'))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      code(() => planRegistration({ ...creation, rp: { id: 'evil.com', name: 'x' } }, 'h.example.com')),
    ).toBe('INVALID_ARGUMENT');
    expect(
      code(() =>
        planRegistration({ ...creation, pubKeyCredParams: [{ type: 'public-key', alg: -999 }] }, 'h'),
      ),
    ).toBe('PRECONDITION_FAILED');
  });
});

describe('planAssertion', () => {
  it('reads allowCredentials and userVerification', () => {
    const plan = planAssertion(
      { challenge, rpId: 'example.com', allowCredentials: [{ type: 'public-key', id: 'AAEC' }] },
      'proxy.example.com',
    );
    expect(plan.rpId).toBe('example.com');
    expect(plan.allowList.map((d) => [...d.id])).toEqual([[0, 1, 2]]);
    expect(plan.userVerification).toBe('preferred');
    expect(code(() => planAssertion({ challenge, userVerification: 'sometimes' as never }, 'h'))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(code(() => planAssertion('null', 'h'))).toBe('INVALID_ARGUMENT');
  });
});

describe('checkRpId', () => {
  it('allows the host and its registrable suffixes only', () => {
    expect(() => checkRpId('localhost', 'localhost')).not.toThrow();
    expect(() => checkRpId('example.com', 'proxy.example.com')).not.toThrow();
    expect(() => checkRpId('com', 'proxy.example.com')).toThrow(KeyportError);
    expect(() => checkRpId('ample.com', 'proxy.example.com')).toThrow(KeyportError);
  });
});
