import { describe, expect, it } from 'vitest';
import { newTotpEnrollment, totpCode, totpStepOf } from './totp';

describe('TOTP', () => {
  const { secret, otpauthUri } = newTotpEnrollment('alice', 'demo');
  const now = 1_800_000_000_000;

  it('offers an otpauth:// URI carrying the secret, SHA-1, 6 digits, 30 s', () => {
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\/Keyport%20demo:alice\?/);
    expect(otpauthUri).toContain(`secret=${secret}`);
    expect(otpauthUri).toMatch(/digits=6/);
    expect(otpauthUri).toMatch(/period=30/);
  });

  it('maps a code to its time step, tolerating one step of drift', () => {
    const step = Math.floor(now / 30_000);
    expect(totpStepOf(secret, totpCode(secret, now), now)).toBe(step);
    expect(totpStepOf(secret, totpCode(secret, now - 30_000), now)).toBe(step - 1);
    expect(totpStepOf(secret, totpCode(secret, now + 30_000), now)).toBe(step + 1);
    expect(totpStepOf(secret, totpCode(secret, now + 90_000), now)).toBeUndefined();
  });

  it.each(['', '12345', '1234567', 'abcdef', '12 456'])('rejects the malformed code %j', (code) => {
    expect(totpStepOf(secret, code, now)).toBeUndefined();
  });

  it("rejects another secret's code", () => {
    const other = newTotpEnrollment('bob', 'demo').secret;
    expect(totpStepOf(secret, totpCode(other, now), now)).toBeUndefined();
  });
});
