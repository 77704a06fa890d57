import { describe, expect, it } from 'vitest';
import { checkPasswordPolicy, hashPassword, verifyPassword } from './passwords';

describe('passwords', () => {
  it('stores argon2id hashes that verify only the right password', async () => {
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$/);
    expect(hash).not.toContain('correct horse');
    expect(await verifyPassword(hash, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(hash, 'correct horse batterY')).toBe(false);
  });

  it('never verifies a user without a password', async () => {
    expect(await verifyPassword(null, 'anything at all')).toBe(false);
  });

  it('refuses a short password, naming the field', () => {
    expect(() => checkPasswordPolicy('short')).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'password' } }),
    );
    expect(() => checkPasswordPolicy('twelve chars')).not.toThrow();
  });
});
