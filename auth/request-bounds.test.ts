// The request bounds as a unit: a field's own bound, the default for any other name, and names that
// Object.prototype carries (a map key a caller chooses) bounded like any other.
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../proto/errors';
import { checkRequestBounds, DEFAULT_STRING_LIMIT, FIELD_LIMITS } from './request-bounds';

const refusal = (request: unknown) => {
  try {
    checkRequestBounds(request);
  } catch (error) {
    if (error instanceof KeyportError) return { code: error.code, message: error.message };
    throw error;
  }
  return undefined;
};

describe('checkRequestBounds', () => {
  it('holds a named field to its own bound, and names it as proto does', () => {
    expect(refusal({ user: 'u'.repeat(FIELD_LIMITS.user!) })).toBeUndefined();
    expect(refusal({ user: 'u'.repeat(FIELD_LIMITS.user! + 1) })).toEqual({
      code: 'INVALID_ARGUMENT',
      message: `user is too long: at most ${FIELD_LIMITS.user} characters.`,
    });
    expect(
      refusal({ mfaResponse: { challengeId: 'c'.repeat(FIELD_LIMITS.challenge_id! + 1) } })?.message,
    ).toBe(`mfa_response.challenge_id is too long: at most ${FIELD_LIMITS.challenge_id} characters.`);
    // Remembered names answer the same on the next call.
    expect(
      refusal({ mfaResponse: { challengeId: 'c'.repeat(FIELD_LIMITS.challenge_id! + 1) } })?.message,
    ).toBe(`mfa_response.challenge_id is too long: at most ${FIELD_LIMITS.challenge_id} characters.`);
  });

  it('holds a map key named after an Object.prototype member to the default bound', () => {
    for (const key of [
      'constructor',
      'toString',
      'valueOf',
      'hasOwnProperty',
      '__proto__',
      'isPrototypeOf',
    ]) {
      const over = { name: 'lee', traits: Object.fromEntries([[key, 'v'.repeat(DEFAULT_STRING_LIMIT + 1)]]) };
      expect(refusal(over), key).toEqual({
        code: 'INVALID_ARGUMENT',
        message: `traits.${key === '__proto__' ? '__proto__' : key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)} is too long: at most ${DEFAULT_STRING_LIMIT} characters.`,
      });
      const within = { name: 'lee', traits: Object.fromEntries([[key, 'v'.repeat(DEFAULT_STRING_LIMIT)]]) };
      expect(refusal(within), key).toBeUndefined();
    }
  });

  it('bounds lists, bytes and nesting', () => {
    expect(refusal({ roles: Array.from({ length: 257 }, () => 'r') })?.message).toBe(
      'roles is too long: at most 256 entries.',
    );
    expect(refusal({ certificate: new Uint8Array(FIELD_LIMITS.certificate! + 1) })?.message).toBe(
      `certificate is too long: at most ${FIELD_LIMITS.certificate} bytes.`,
    );
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 20; i++) deep = { inner: deep };
    expect(refusal(deep)?.message).toMatch(/is nested too deeply\.$/);
  });
});
