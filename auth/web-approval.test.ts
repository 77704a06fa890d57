// The approval ceremony's pure parts: the redirect a confirmation may go on to (only a path of the web UI
// itself), and the short code derived from a web token.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyportError } from '../proto/errors';
import { checkRedirect, shortCodeOf } from './web-approval';

const ORIGIN = 'https://localhost:3080';

describe('checkRedirect', () => {
  it('keeps a path of the web UI, and makes none the root', () => {
    expect(checkRedirect(undefined, ORIGIN)).toBe('/');
    expect(checkRedirect('', ORIGIN)).toBe('/');
    expect(checkRedirect('/', ORIGIN)).toBe('/');
    expect(checkRedirect('/home?tab=devices', ORIGIN)).toBe('/home?tab=devices');
  });

  it.each([
    '//evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    '/ /evil.example',
    'https://evil.example/',
    'javascript:alert(1)',
    'data:text/html,hi',
    'evil.example',
    '../x',
    `/${'a'.repeat(1024)}`,
    '/é',
  ])('refuses %j', (redirect) => {
    expect(() => checkRedirect(redirect, ORIGIN)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'redirect' } }),
    );
  });

  it('never yields anything but a same-origin path, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64, unit: 'binary' }), (redirect) => {
        let kept: string;
        try {
          kept = checkRedirect(redirect, ORIGIN);
        } catch (error) {
          expect(error).toBeInstanceOf(KeyportError);
          return;
        }
        expect(kept.startsWith('/')).toBe(true);
        expect(kept.startsWith('//')).toBe(false);
        expect(new URL(kept, ORIGIN).origin).toBe(ORIGIN);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('shortCodeOf', () => {
  it('is six digits, the same for the same token, another for another', () => {
    const token = 'a'.repeat(43);
    expect(shortCodeOf(token)).toMatch(/^\d{3}-\d{3}$/);
    expect(shortCodeOf(token)).toBe(shortCodeOf(token));
    expect(shortCodeOf('b'.repeat(43))).not.toBe(shortCodeOf(token));
  });
});
