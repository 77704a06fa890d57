// BER-TLV as PIV uses it (NIST SP 800-73-4 Part 2 §3.3 / ISO 7816-4 §5.2): tags of 1 to 3 bytes
// (0x7C, 0x7F49, 0x5FC105), definite lengths in short form or 0x81/0x82/0x83 long form. The card refuses
// anything else (indefinite lengths, tags longer than 3 bytes) as malformed, never guesses.

export class TlvError extends Error {
  override name = 'TlvError';
}

export interface Tlv {
  tag: number;
  value: Uint8Array;
}

const MAX_TAG_BYTES = 3;

/** Reads one tag at `offset`; returns the tag as a number and the offset after it. */
function readTag(bytes: Uint8Array, offset: number): { tag: number; next: number } {
  const first = bytes[offset];
  if (first === undefined) throw new TlvError('truncated tag');
  if (first === 0x00 || first === 0xff) throw new TlvError(`invalid tag byte ${hex(first)}`);
  let tag = first;
  let next = offset + 1;
  if ((first & 0x1f) === 0x1f) {
    // Subsequent tag bytes: bit 8 set means another byte follows (ISO 7816-4 §5.2.2.1).
    for (;;) {
      const b = bytes[next];
      if (b === undefined) throw new TlvError('truncated multi-byte tag');
      if (next - offset + 1 > MAX_TAG_BYTES) throw new TlvError('tag longer than 3 bytes');
      tag = tag * 256 + b;
      next += 1;
      if ((b & 0x80) === 0) break;
    }
  }
  return { tag, next };
}

function readLength(bytes: Uint8Array, offset: number): { length: number; next: number } {
  const first = bytes[offset];
  if (first === undefined) throw new TlvError('truncated length');
  if (first < 0x80) return { length: first, next: offset + 1 };
  const count = first & 0x7f;
  if (count === 0) throw new TlvError('indefinite length');
  if (count > 3) throw new TlvError('length of more than 3 bytes');
  if (offset + 1 + count > bytes.length) throw new TlvError('truncated length');
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (bytes[offset + 1 + i] as number);
  return { length, next: offset + 1 + count };
}

/** Every TLV at the top level of `bytes`, in order; throws TlvError unless they cover it exactly. */
export function parseTlvs(bytes: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const { tag, next } = readTag(bytes, offset);
    const { length, next: valueStart } = readLength(bytes, next);
    const end = valueStart + length;
    if (end > bytes.length) throw new TlvError(`value of tag ${tag.toString(16)} runs past the end`);
    out.push({ tag, value: bytes.subarray(valueStart, end) });
    offset = end;
  }
  return out;
}

/** The one TLV that `bytes` must be, with the expected tag. */
export function parseSingleTlv(bytes: Uint8Array, tag: number): Uint8Array {
  const tlvs = parseTlvs(bytes);
  if (tlvs.length !== 1 || tlvs[0]?.tag !== tag) {
    throw new TlvError(`expected exactly one TLV with tag ${tag.toString(16)}`);
  }
  return tlvs[0].value;
}

/** Children by tag; a repeated tag is malformed in every PIV template the card reads. */
export function tlvMap(bytes: Uint8Array): Map<number, Uint8Array> {
  const map = new Map<number, Uint8Array>();
  for (const { tag, value } of parseTlvs(bytes)) {
    if (map.has(tag)) throw new TlvError(`tag ${tag.toString(16)} appears twice`);
    map.set(tag, value);
  }
  return map;
}

export function encodeTag(tag: number): Uint8Array {
  if (!Number.isSafeInteger(tag) || tag <= 0 || tag > 0xffffff) throw new RangeError(`bad tag ${tag}`);
  if (tag <= 0xff) return Uint8Array.of(tag);
  if (tag <= 0xffff) return Uint8Array.of(tag >> 8, tag & 0xff);
  return Uint8Array.of(tag >> 16, (tag >> 8) & 0xff, tag & 0xff);
}

export function encodeLength(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > 0xffffff) {
    throw new RangeError(`bad length ${length}`);
  }
  if (length < 0x80) return Uint8Array.of(length);
  if (length <= 0xff) return Uint8Array.of(0x81, length);
  if (length <= 0xffff) return Uint8Array.of(0x82, length >> 8, length & 0xff);
  return Uint8Array.of(0x83, length >> 16, (length >> 8) & 0xff, length & 0xff);
}

export function encodeTlv(tag: number, ...values: Uint8Array[]): Uint8Array {
  const value = concat(...values);
  return concat(encodeTag(tag), encodeLength(value.length), value);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
