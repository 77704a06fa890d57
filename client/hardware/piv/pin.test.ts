// A new PIN or PUK is checked before the card sees it: whatever string comes in, checkNewSecret returns
// it unchanged when the card would take it (6 to 8 bytes of UTF-8, not the factory value) and otherwise
// throws PivError INVALID_ARGUMENT, never anything else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkNewSecret, DEFAULT_PIN, DEFAULT_PUK } from './pin';
import { PivError } from './errors';

const bytes = (text: string) => new TextEncoder().encode(text).length;

describe('checkNewSecret', () => {
  it('takes 6 to 8 bytes other than the factory value, and refuses the rest with INVALID_ARGUMENT', () => {
    expect(checkNewSecret('246810', 'PIN')).toBe('246810');
    expect(checkNewSecret('12345678', 'PIN')).toBe('12345678');
    expect(checkNewSecret('123456', 'PUK')).toBe('123456');
    for (const [secret, what] of [
      ['12345', 'PIN'],
      ['123456789', 'PUK'],
      [DEFAULT_PIN, 'PIN'],
      [DEFAULT_PUK, 'PUK'],
      ['ééééé', 'PIN'], // 10 bytes of UTF-8
    ] as const) {
      expect(() => checkNewSecret(secret, what)).toThrow(
        expect.objectContaining({ reason: 'INVALID_ARGUMENT', code: 'INVALID_ARGUMENT' }),
      );
    }
  });

  it('property: any string is returned as it is or refused with INVALID_ARGUMENT, by its byte length', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 12 }),
        fc.constantFrom('PIN', 'PUK'),
        (secret, what) => {
          const factory = what === 'PIN' ? DEFAULT_PIN : DEFAULT_PUK;
          const fits = bytes(secret) >= 6 && bytes(secret) <= 8 && secret !== factory;
          try {
            expect(checkNewSecret(secret, what)).toBe(secret);
            expect(fits).toBe(true);
          } catch (error) {
            expect(error).toBeInstanceOf(PivError);
            expect((error as PivError).reason).toBe('INVALID_ARGUMENT');
            expect(fits).toBe(false);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
