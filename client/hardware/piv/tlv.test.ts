import { describe, expect, it } from 'vitest';
import { h, expectReason, toHex } from './test-bytes.test-support';
import {
  decodeSingleTlv,
  decodeTlvAt,
  decodeTlvMap,
  decodeTlvs,
  encodeLength,
  encodeTag,
  encodeTlv,
  encodeTlvs,
  requireTag,
} from './tlv';

describe('BER-TLV encoding', () => {
  it('writes one-, two- and three-byte tags as their bytes', () => {
    expect(toHex(encodeTag(0x7c))).toBe('7C');
    expect(toHex(encodeTag(0x7f49))).toBe('7F49');
    expect(toHex(encodeTag(0x5fc105))).toBe('5FC105');
    expect(toHex(encodeTag(0x5fff01))).toBe('5FFF01');
  });

  it('refuses numbers that are not well-formed tags', () => {
    for (const tag of [
      0x00, 0xff, 0x1f, 0x5f, 0x7f05, 0x5f80, 0x5fc1, 0x5f8001, 0x1234, 0x1000000, -1, 1.5,
    ]) {
      const error = expectReason(() => encodeTag(tag), 'INVALID_ARGUMENT');
      expect(error.code).toBe('INVALID_ARGUMENT');
    }
  });

  it('writes lengths in the short form below 128, then 81 xx and 82 xx xx', () => {
    expect(toHex(encodeLength(0))).toBe('00');
    expect(toHex(encodeLength(127))).toBe('7F');
    expect(toHex(encodeLength(128))).toBe('8180');
    expect(toHex(encodeLength(255))).toBe('81FF');
    expect(toHex(encodeLength(256))).toBe('820100');
    expect(toHex(encodeLength(65535))).toBe('82FFFF');
    expectReason(() => encodeLength(65536), 'INVALID_ARGUMENT');
  });

  it('writes the GET DATA reference of the 9a certificate as SP 800-73-4 shows it', () => {
    expect(toHex(encodeTlv(0x5c, h('5FC105')))).toBe('5C035FC105');
    expect(toHex(encodeTlv(0x7c, encodeTlv(0x80)))).toBe('7C028000');
    expect(
      toHex(
        encodeTlvs([
          { tag: 0x71, value: h('00') },
          { tag: 0xfe, value: h('') },
        ]),
      ),
    ).toBe('710100FE00');
  });
});

describe('BER-TLV decoding', () => {
  it('reads multi-byte tags and all three length forms', () => {
    const value = new Uint8Array(300).fill(7);
    const encoded = encodeTlvs([
      { tag: 0x7f49, value: h('8641') },
      { tag: 0x5fc105, value },
      { tag: 0x53, value: new Uint8Array(200) },
    ]);
    const items = decodeTlvs(encoded);
    expect(items.map((item) => item.tag)).toEqual([0x7f49, 0x5fc105, 0x53]);
    expect(items[1]!.value).toEqual(value);
    expect(items[2]!.value.length).toBe(200);
  });

  it('accepts a longer length form than needed (BER allows it)', () => {
    expect(decodeSingleTlv(h('53 81 02 AABB'), 0x53)).toEqual(h('AABB'));
    expect(decodeSingleTlv(h('53 82 0002 AABB'), 0x53)).toEqual(h('AABB'));
  });

  it('refuses a value that runs past the end', () => {
    expectReason(() => decodeTlvs(h('53 05 0102')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('53 82 01')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('53 81')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('53')), 'MALFORMED_RESPONSE');
  });

  it('refuses indefinite lengths and length forms beyond 82', () => {
    expectReason(() => decodeTlvs(h('53 80 00 00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('53 83 000001 00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('53 84 00000001 00')), 'MALFORMED_RESPONSE');
  });

  it('refuses tags longer than three bytes, truncated tags and malformed tag bytes', () => {
    expectReason(() => decodeTlvs(h('5F FF FF 01 00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('5F')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('5F C1')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('00 00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('FF 00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('5F 80 01 00')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvs(h('7F 05 00')), 'MALFORMED_RESPONSE');
  });

  it('reads one TLV and its end', () => {
    const bytes = h('7C 02 8200 FE00');
    expect(decodeTlvAt(bytes, 0)).toMatchObject({ tag: 0x7c, end: 4 });
    expect(decodeTlvAt(bytes, 4)).toMatchObject({ tag: 0xfe, end: 6 });
  });

  it('a single TLV must carry the expected tag and fill the bytes', () => {
    expect(decodeSingleTlv(h('53 01 AA'), 0x53)).toEqual(h('AA'));
    expectReason(() => decodeSingleTlv(h('54 01 AA'), 0x53), 'MALFORMED_RESPONSE');
    expectReason(() => decodeSingleTlv(h('53 01 AA 00'), 0x53), 'MALFORMED_RESPONSE');
    expectReason(() => decodeSingleTlv(h(''), 0x53), 'MALFORMED_RESPONSE');
  });

  it('a template map refuses a tag twice and tags it does not list', () => {
    const map = decodeTlvMap(h('70 01 AA 71 01 00 FE 00'), [0x70, 0x71, 0xfe]);
    expect(map.get(0x70)).toEqual(h('AA'));
    expectReason(() => decodeTlvMap(h('70 01 AA 70 01 BB')), 'MALFORMED_RESPONSE');
    expectReason(() => decodeTlvMap(h('70 01 AA 99 00'), [0x70]), 'MALFORMED_RESPONSE');
    expectReason(() => requireTag(map, 0x72, 'MSCUID'), 'MALFORMED_RESPONSE');
  });

  it('returns views into the input, not copies', () => {
    const bytes = h('53 02 AABB');
    const value = decodeSingleTlv(bytes, 0x53);
    expect(value.buffer).toBe(bytes.buffer);
  });
});
