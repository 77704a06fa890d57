// The pooled random bytes: the lengths asked for, never the same bytes twice across refills, zeroed in the
// pool once handed out, and spread as random bytes are.
import { describe, expect, it } from 'vitest';
import { randomPooled } from './random';

describe('randomPooled', () => {
  it('gives the length asked for, up to and beyond the pooled size, and refuses a bad length', () => {
    for (const n of [0, 1, 8, 16, 32, 64, 65, 300]) expect(randomPooled(n).length).toBe(n);
    expect(() => randomPooled(-1)).toThrow(RangeError);
    expect(() => randomPooled(1.5)).toThrow(RangeError);
  });

  it('never hands out the same 16 bytes twice, over many refills of the pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(randomPooled(16).toString('hex'));
    expect(seen.size).toBe(20_000);
  });

  it('hands out copies: changing one does not change the next', () => {
    const first = randomPooled(32);
    const copy = Buffer.from(first);
    first.fill(0xaa);
    const second = randomPooled(32);
    expect(second.equals(first)).toBe(false);
    expect(second.equals(copy)).toBe(false);
  });

  it('spreads its bits evenly (a monobit count over 1 MiB within 5 standard deviations)', () => {
    let ones = 0;
    let bits = 0;
    for (let i = 0; i < 32 * 1024; i++) {
      for (const byte of randomPooled(32)) {
        let b = byte;
        while (b) {
          ones += b & 1;
          b >>= 1;
        }
        bits += 8;
      }
    }
    expect(Math.abs(ones - bits / 2)).toBeLessThan(5 * Math.sqrt(bits / 4));
  });
});
