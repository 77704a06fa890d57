// BER-TLV as PIV uses it (SP 800-73-4 Part 2 §3.3, ISO/IEC 7816-4 §5.2): tags of one to three bytes,
// lengths in the short form or 81 xx / 82 xx xx. Nothing larger exists on a PIV card, so anything larger
// is refused, as are indefinite lengths, malformed tags and values that run past the end. Decoding never
// recurses (callers decode a nested value when they want it), copies nothing and throws only PivError.
import { invalidArgument, malformed, hex } from './errors';

export interface Tlv {
  /** The tag's bytes as one big-endian number: 0x7C, 0x7F49, 0x5FC105. */
  tag: number;
  value: Uint8Array;
}

export const MAX_TLV_VALUE_LENGTH = 0xffff;

/**
 * Whether `bytes` is one well-formed tag (ISO/IEC 7816-4 §5.2.2.1): a first byte other than 00 and FF;
 * when its low five bits are all ones, subsequent bytes with b8 set on all but the last, no leading
 * zero group (a second byte of 80), and a two-byte tag's number at least 31.
 */
function checkTag(bytes: Uint8Array): string | undefined {
  const first = bytes[0];
  if (first === undefined) return 'no tag';
  if (first === 0x00 || first === 0xff) return `tag byte ${hex(first, 2)}`;
  if ((first & 0x1f) !== 0x1f) return bytes.length === 1 ? undefined : 'one-byte tag followed by more';
  if (bytes.length < 2) return 'truncated tag';
  if (bytes[1] === 0x80) return 'tag with a leading zero group';
  for (let i = 1; i < bytes.length; i++) {
    const more = (bytes[i]! & 0x80) !== 0;
    if (more !== i < bytes.length - 1) return 'tag continuation bits';
  }
  if (bytes.length === 2 && bytes[1]! < 0x1f) return 'two-byte tag for a number below 31';
  return undefined;
}

export function encodeTag(tag: number): Uint8Array {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xffffff) throw invalidArgument(`Not a BER-TLV tag: ${tag}`);
  const bytes =
    tag > 0xffff
      ? Uint8Array.of(tag >>> 16, (tag >>> 8) & 0xff, tag & 0xff)
      : tag > 0xff
        ? Uint8Array.of(tag >>> 8, tag & 0xff)
        : Uint8Array.of(tag);
  const problem = checkTag(bytes);
  if (problem !== undefined) throw invalidArgument(`Not a BER-TLV tag: ${hex(tag, 2)} (${problem})`);
  return bytes;
}

export function encodeLength(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_TLV_VALUE_LENGTH)
    throw invalidArgument(`A PIV TLV value holds at most ${MAX_TLV_VALUE_LENGTH} bytes, not ${length}`);
  if (length < 0x80) return Uint8Array.of(length);
  if (length <= 0xff) return Uint8Array.of(0x81, length);
  return Uint8Array.of(0x82, length >>> 8, length & 0xff);
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function encodeTlv(tag: number, value: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes(encodeTag(tag), encodeLength(value.length), value);
}

/** Several TLVs one after the other. */
export function encodeTlvs(items: readonly Tlv[]): Uint8Array {
  return concatBytes(...items.map((item) => encodeTlv(item.tag, item.value)));
}

/** One TLV at `offset`: its tag, its value (a view into `bytes`) and where the next one starts. */
export function decodeTlvAt(bytes: Uint8Array, offset: number): Tlv & { end: number } {
  let at = offset;
  const first = bytes[at];
  if (first === undefined) throw malformed('TLV expected, end of data found');
  let tagLength = 1;
  if ((first & 0x1f) === 0x1f) {
    while (tagLength < 4 && at + tagLength < bytes.length && (bytes[at + tagLength]! & 0x80) !== 0)
      tagLength++;
    tagLength++;
    if (tagLength > 3) throw malformed('TLV tag longer than 3 bytes');
    if (at + tagLength > bytes.length) throw malformed('truncated TLV tag');
  }
  const tagBytes = bytes.subarray(at, at + tagLength);
  const problem = checkTag(tagBytes);
  if (problem !== undefined) throw malformed(problem);
  let tag = 0;
  for (const byte of tagBytes) tag = tag * 256 + byte;
  at += tagLength;

  const lengthByte = bytes[at++];
  if (lengthByte === undefined) throw malformed(`TLV ${hex(tag, 2)} without a length`);
  let length: number;
  if (lengthByte < 0x80) {
    length = lengthByte;
  } else if (lengthByte === 0x81) {
    const b = bytes[at++];
    if (b === undefined) throw malformed(`TLV ${hex(tag, 2)} with a truncated length`);
    length = b;
  } else if (lengthByte === 0x82) {
    const hi = bytes[at++];
    const lo = bytes[at++];
    if (hi === undefined || lo === undefined) throw malformed(`TLV ${hex(tag, 2)} with a truncated length`);
    length = hi * 256 + lo;
  } else {
    // 80 is BER's indefinite form; 83 and up describe values no PIV object has.
    throw malformed(`TLV ${hex(tag, 2)} with length byte ${hex(lengthByte, 2)}`);
  }
  if (at + length > bytes.length)
    throw malformed(`TLV ${hex(tag, 2)} says ${length} bytes, ${bytes.length - at} remain`);
  return { tag, value: bytes.subarray(at, at + length), end: at + length };
}

/** Every TLV in `bytes`, in order; the TLVs must fill `bytes` exactly. */
export function decodeTlvs(bytes: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const { tag, value, end } = decodeTlvAt(bytes, offset);
    out.push({ tag, value });
    offset = end;
  }
  return out;
}

/** The value of the one TLV that makes up `bytes`, which must carry `tag`. */
export function decodeSingleTlv(bytes: Uint8Array, tag: number): Uint8Array {
  const { tag: found, value, end } = decodeTlvAt(bytes, 0);
  if (found !== tag) throw malformed(`tag ${hex(found, 2)} where ${hex(tag, 2)} was expected`);
  if (end !== bytes.length) throw malformed(`${bytes.length - end} bytes after TLV ${hex(tag, 2)}`);
  return value;
}

/**
 * The TLVs of `bytes` by tag. A tag twice is malformed; so is a tag outside `allowed` when given (a
 * template is closed: SP 800-73-4 lists what each one holds).
 */
export function decodeTlvMap(bytes: Uint8Array, allowed?: readonly number[]): Map<number, Uint8Array> {
  const map = new Map<number, Uint8Array>();
  for (const { tag, value } of decodeTlvs(bytes)) {
    if (map.has(tag)) throw malformed(`TLV ${hex(tag, 2)} twice`);
    if (allowed && !allowed.includes(tag)) throw malformed(`unexpected TLV ${hex(tag, 2)}`);
    map.set(tag, value);
  }
  return map;
}

export function requireTag(map: Map<number, Uint8Array>, tag: number, what: string): Uint8Array {
  const value = map.get(tag);
  if (value === undefined) throw malformed(`${what} (tag ${hex(tag, 2)}) is missing`);
  return value;
}
