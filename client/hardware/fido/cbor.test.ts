import { describe, expect, it } from 'vitest';
import { CborError, compareCtapKeys, decodeCtap, decodeCtapPrefix, encodeCtap } from './cbor';
import type { CtapValue } from './cbor';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function cborCode(bytes: Uint8Array): string | undefined {
  try {
    decodeCtap(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(CborError);
    return (error as CborError).code;
  }
  return undefined;
}

describe('CTAP2 canonical CBOR', () => {
  it('encodes integers and lengths in their shortest form', () => {
    expect(toHex(encodeCtap(23))).toBe('17');
    expect(toHex(encodeCtap(24))).toBe('1818');
    expect(toHex(encodeCtap(256))).toBe('190100');
    expect(toHex(encodeCtap(-25))).toBe('3818');
    expect(toHex(encodeCtap(new Uint8Array(24)))).toBe('5818' + '00'.repeat(24));
  });

  it('sorts map keys by major type, then length, then bytes (24 before -1, ints before text)', () => {
    const map = new Map<string | number, CtapValue>([
      ['b', 1],
      ['aa', 2],
      [-1, 3],
      [24, 4],
      [1, 5],
    ]);
    expect(toHex(encodeCtap(map))).toBe('a5' + '0105' + '181804' + '2003' + '616201' + '62616102');
    expect(compareCtapKeys(hex('1818'), hex('20'))).toBeLessThan(0);
  });

  it('encodes a COSE key in the order authenticators use', () => {
    const x = new Uint8Array(32).fill(1);
    const y = new Uint8Array(32).fill(2);
    const key = new Map<number, CtapValue>([
      [-3, y],
      [-2, x],
      [-1, 1],
      [3, -7],
      [1, 2],
    ]);
    expect(toHex(encodeCtap(key)).slice(0, 14)).toBe('a5010203262001');
  });

  it('encodes a Buffer as a plain byte string', () => {
    expect(toHex(encodeCtap(Buffer.from([1, 2])))).toBe('420102');
  });

  it('refuses to encode floats, undefined and nesting deeper than 4 levels', () => {
    expect(() => encodeCtap(1.5)).toThrow(CborError);
    expect(() => encodeCtap([undefined as unknown as CtapValue])).toThrow(CborError);
    expect(() => encodeCtap([[[[[1]]]]])).toThrow(CborError);
    expect(toHex(encodeCtap([[[[1]]]]))).toBe('8181818101');
  });

  it('round-trips CTAP values with maps as Maps', () => {
    const value = new Map<string | number, CtapValue>([
      [1, new Uint8Array([1, 2, 3])],
      [2, new Map<string, CtapValue>([['id', 'example.com']])],
      [3, [true, false, null]],
      [4, -70000],
      [5, 2n ** 63n],
    ]);
    expect(decodeCtap(encodeCtap(value))).toEqual(value);
  });

  it('rejects a truncated map', () => {
    expect(cborCode(hex('a2 01 02 03'))).toBe('TRUNCATED');
    expect(cborCode(hex('a1 01 58 20 00'))).toBe('TRUNCATED');
    expect(cborCode(new Uint8Array(0))).toBe('TRUNCATED');
  });

  it('rejects trailing bytes', () => {
    expect(cborCode(hex('a1 01 02 00'))).toBe('TRAILING_BYTES');
  });

  it('rejects unsorted keys and duplicate keys', () => {
    expect(cborCode(hex('a2 03 04 01 02'))).toBe('UNSORTED_KEYS');
    expect(cborCode(hex('a2 20 02 1818 01'))).toBe('UNSORTED_KEYS'); // length-first order is not CTAP's
    expect(cborCode(hex('a2 20 01 01 02'))).toBe('UNSORTED_KEYS'); // -1 before 1
    expect(cborCode(hex('a2 01 02 01 03'))).toBe('DUPLICATE_KEY');
    expect(cborCode(hex('a1 01 a2 02 00 02 01'))).toBe('DUPLICATE_KEY'); // nested map
  });

  it('rejects non-shortest integers and lengths', () => {
    expect(cborCode(hex('1801'))).toBe('NOT_CANONICAL');
    expect(cborCode(hex('190001'))).toBe('NOT_CANONICAL');
    expect(cborCode(hex('1b0000000000000001'))).toBe('NOT_CANONICAL');
    expect(cborCode(hex('a1 1801 02'))).toBe('NOT_CANONICAL');
    expect(cborCode(hex('5801 ff'))).toBe('NOT_CANONICAL');
  });

  it('rejects indefinite lengths', () => {
    expect(cborCode(hex('bf 01 02 ff'))).toBe('INDEFINITE_LENGTH');
    expect(cborCode(hex('5f 41 01 ff'))).toBe('INDEFINITE_LENGTH');
    expect(cborCode(hex('9f ff'))).toBe('INDEFINITE_LENGTH');
  });

  it('rejects tags, other simple values, invalid UTF-8 and more than 4 levels', () => {
    expect(cborCode(hex('c1 1a514b67b0'))).toBe('UNSUPPORTED_TYPE');
    expect(cborCode(hex('f7'))).toBe('MALFORMED');
    expect(cborCode(hex('62 c328'))).toBe('MALFORMED');
    expect(cborCode(hex('81 81 81 81 81 01'))).toBe('TOO_DEEP');
    expect(decodeCtap(hex('81 81 81 81 01'))).toEqual([[[[1]]]]);
  });

  it('decodes a prefix and reports its length', () => {
    expect(decodeCtapPrefix(hex('a1 01 02 ff ff'))).toEqual({ value: new Map([[1, 2]]), length: 3 });
  });
});
