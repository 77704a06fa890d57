import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeTlv, parseSingleTlv, parseTlvs, TlvError, tlvMap } from './tlv';

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

/** Tags as PIV writes them: one byte (not xF... ones), or 5F/7F plus one or two more bytes. */
const tagArbitrary = fc.oneof(
  fc.integer({ min: 0x01, max: 0xfe }).filter((t) => (t & 0x1f) !== 0x1f),
  fc.integer({ min: 0x00, max: 0x7f }).map((b) => 0x7f00 | b),
  fc
    .tuple(fc.integer({ min: 0x80, max: 0xff }), fc.integer({ min: 0x00, max: 0x7f }))
    .map(([b1, b2]) => 0x5f0000 | (b1 << 8) | b2),
);

describe('BER-TLV on the card side', () => {
  it('reads the tags PIV uses: 7C, 7F49 and the three-byte 5FC105', () => {
    expect(parseTlvs(bytes('7c 02 8000'))).toEqual([{ tag: 0x7c, value: bytes('8000') }]);
    expect(parseTlvs(bytes('7f49 03 860101'))[0]?.tag).toBe(0x7f49);
    expect(parseTlvs(bytes('5c03 5fc105'))[0]?.value).toEqual(bytes('5fc105'));
    expect(parseTlvs(bytes('5fc105 01 aa'))[0]?.tag).toBe(0x5fc105);
  });

  it('reads long-form lengths 81 and 82', () => {
    const long = new Uint8Array(300).fill(7);
    expect(parseSingleTlv(encodeTlv(0x53, long), 0x53)).toEqual(long);
    expect(encodeTlv(0x53, new Uint8Array(200)).subarray(0, 3)).toEqual(bytes('53 81 c8'));
    expect(encodeTlv(0x53, long).subarray(0, 4)).toEqual(bytes('53 82 012c'));
  });

  it('refuses indefinite lengths, four-byte tags, truncation and repeated tags', () => {
    expect(() => parseTlvs(bytes('53 80 00 00'))).toThrow(TlvError);
    expect(() => parseTlvs(bytes('5f c1 85 05 00'))).toThrow(TlvError);
    expect(() => parseTlvs(bytes('53 05 0102'))).toThrow(TlvError);
    expect(() => parseTlvs(bytes('53 82 01'))).toThrow(TlvError);
    expect(() => parseTlvs(bytes('5f'))).toThrow(TlvError);
    expect(() => tlvMap(bytes('8000 8000'))).toThrow(TlvError);
    expect(() => parseSingleTlv(bytes('7c00 7c00'), 0x7c)).toThrow(TlvError);
  });

  it('parses what it encodes, for any tag and value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(tagArbitrary, fc.uint8Array({ maxLength: 600 })), { maxLength: 5 }),
        (items) => {
          const encoded = Buffer.concat(items.map(([tag, value]) => encodeTlv(tag, value)));
          const parsed = parseTlvs(new Uint8Array(encoded));
          expect(parsed.map((t) => [t.tag, Buffer.from(t.value)])).toEqual(
            items.map(([tag, value]) => [tag, Buffer.from(value)]),
          );
        },
      ),
    );
  });

  it('answers any byte string with TLVs or a TlvError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        try {
          const parsed = parseTlvs(input);
          const total = parsed.reduce((n, t) => n + t.value.length, 0);
          expect(total).toBeLessThanOrEqual(input.length);
        } catch (error) {
          expect(error).toBeInstanceOf(TlvError);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
