// CTAP2 canonical CBOR over cbor2 (CTAP 2.1 "Message Encoding", "CTAP2 canonical CBOR encoding form";
// §6 in CTAP 2.0). Encoding is always canonical; decoding rejects what the canonical form forbids.
import { decode, encode, Simple, Tag } from 'cbor2';
import type { DecodeOptions, EncodeOptions } from 'cbor2';
import type { KeyValueEncoded } from 'cbor2/sorts';

/** The values CTAP messages carry. Maps are always JS Maps (CTAP maps are keyed by integers). */
export type CtapValue =
  number | bigint | string | boolean | null | Uint8Array | CtapValue[] | Map<CtapKey, CtapValue>;
export type CtapKey = number | bigint | string;
export type CtapMap = Map<CtapKey, CtapValue>;

export type CborErrorCode =
  | 'TRUNCATED'
  | 'TRAILING_BYTES'
  | 'NOT_CANONICAL'
  | 'UNSORTED_KEYS'
  | 'DUPLICATE_KEY'
  | 'INDEFINITE_LENGTH'
  | 'TOO_DEEP'
  | 'UNSUPPORTED_TYPE'
  | 'MALFORMED';

export class CborError extends Error {
  override readonly name = 'CborError';
  constructor(
    readonly code: CborErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * "Clients, platforms, and servers MUST NOT use more than 4 levels of CBOR nesting" and
 * authenticators need support no more (CTAP 2.1, Message Encoding). A level is a map or an array.
 */
export const MAX_NESTING = 4;

/**
 * CTAP2 canonical key order: lower major type first, then the shorter encoding, then bytewise. This
 * differs from RFC 8949 §4.2.1 (bytewise only) and from RFC 7049 §3.9 (length first, ignoring the
 * major type): for keys 24 and -1 CTAP puts 24 first, length-first puts -1 first.
 */
export function compareCtapKeys(a: Uint8Array, b: Uint8Array): number {
  const majorA = (a[0] ?? 0) >> 5;
  const majorB = (b[0] ?? 0) >> 5;
  if (majorA !== majorB) return majorA - majorB;
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const ctapKeySorter = (a: KeyValueEncoded, b: KeyValueEncoded): number => compareCtapKeys(a[2], b[2]);

const ENCODE_OPTIONS: EncodeOptions = {
  sortKeys: ctapKeySorter,
  rejectUndefined: true,
  rejectBigInts: true,
  rejectCustomSimples: true,
  rejectDuplicateKeys: true,
  collapseBigInts: true,
};

const DECODE_OPTIONS: DecodeOptions = {
  requirePreferred: true, // integers and lengths in their shortest form
  rejectStreaming: true, // no indefinite lengths
  sortKeys: ctapKeySorter, // checks order, and so duplicates too
  preferMap: true,
  ignoreGlobalTags: true,
  tags: new Map(),
  rejectSimple: true,
  rejectUndefined: true,
  // A bound on cbor2's own work; the CTAP nesting limit is checked on the result, since cbor2
  // counts levels differently for arrays and maps.
  maxDepth: 64,
};

export interface DecodeCtapOptions {
  /** Nesting limit; CTAP's is 4 (the default). */
  maxNesting?: number;
}

function classify(error: unknown): CborError {
  if (error instanceof CborError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RangeError || /outside the bounds|Unexpected end|Insufficient data/i.test(message)) {
    return new CborError('TRUNCATED', 'The CBOR data ends in the middle of an item.');
  }
  if (/Extra data/i.test(message))
    return new CborError('TRAILING_BYTES', 'Extra bytes follow the CBOR item.');
  if (/out of order|Duplicate/i.test(message)) {
    return new CborError('UNSORTED_KEYS', 'CBOR map keys are duplicated or not in CTAP2 canonical order.');
  }
  if (/Streaming|BREAK/i.test(message)) {
    return new CborError('INDEFINITE_LENGTH', 'CTAP2 canonical CBOR forbids indefinite-length items.');
  }
  if (/Unexpectedly long/i.test(message)) {
    return new CborError('NOT_CANONICAL', 'A CBOR integer or length is not in its shortest form.');
  }
  if (/depth/i.test(message)) return new CborError('TOO_DEEP', 'The CBOR data is nested too deeply.');
  return new CborError('MALFORMED', `Malformed CBOR: ${message}`);
}

function checkDecoded(value: unknown, depth: number, maxNesting: number): void {
  if (value instanceof Map || Array.isArray(value)) {
    if (depth + 1 > maxNesting) {
      throw new CborError('TOO_DEEP', `CBOR maps and arrays are nested more than ${maxNesting} levels deep.`);
    }
    if (value instanceof Map) {
      for (const [k, v] of value) {
        if (typeof k !== 'number' && typeof k !== 'bigint' && typeof k !== 'string') {
          throw new CborError('UNSUPPORTED_TYPE', 'CTAP map keys are integers or text strings.');
        }
        checkDecoded(v, depth + 1, maxNesting);
      }
    } else {
      for (const v of value) checkDecoded(v, depth + 1, maxNesting);
    }
    return;
  }
  if (value instanceof Tag) throw new CborError('UNSUPPORTED_TYPE', 'CTAP2 canonical CBOR carries no tags.');
  if (value instanceof Simple || value === undefined) {
    throw new CborError(
      'UNSUPPORTED_TYPE',
      'CTAP2 canonical CBOR carries no simple values but true, false and null.',
    );
  }
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') return;
  if (typeof value === 'boolean' || value === null || value instanceof Uint8Array) return;
  throw new CborError('UNSUPPORTED_TYPE', 'The CBOR data holds a type CTAP does not use.');
}

/**
 * Decodes exactly one CTAP2 canonical CBOR item. Throws CborError (and nothing else) for truncated
 * data, trailing bytes, non-shortest integers or lengths, indefinite lengths, unsorted or duplicate
 * map keys, tags, other simple values, invalid UTF-8, and nesting deeper than 4 levels.
 */
export function decodeCtap(bytes: Uint8Array, options: DecodeCtapOptions = {}): CtapValue {
  if (bytes.length === 0) throw new CborError('TRUNCATED', 'The CBOR data is empty.');
  // The scan checks the canonical rules with precise error codes; cbor2 then builds the value (and
  // checks what the scan does not: UTF-8, simple values).
  const scanned = scanItem(bytes, 0);
  if (scanned < bytes.length) throw new CborError('TRAILING_BYTES', 'Extra bytes follow the CBOR item.');
  let value: unknown;
  try {
    value = decode(bytes, DECODE_OPTIONS);
  } catch (error) {
    throw classify(error);
  }
  checkDecoded(value, 0, options.maxNesting ?? MAX_NESTING);
  return value as CtapValue;
}

/**
 * Decodes the CBOR item at the start of `bytes` and says how many bytes it used; for structures that
 * embed CBOR followed by more data (authenticatorData's credential public key and extensions).
 */
export function decodeCtapPrefix(
  bytes: Uint8Array,
  options: DecodeCtapOptions = {},
): { value: CtapValue; length: number } {
  const length = scanItem(bytes, 0);
  return { value: decodeCtap(bytes.subarray(0, length), options), length };
}

const MAX_SCAN_DEPTH = 64;

interface ScanLevel {
  remaining: number;
  isMap: boolean;
  /** Items started so far at this level; in a map even ones are keys. */
  index: number;
  keyStart: number;
  previousKey: Uint8Array | undefined;
}

const truncated = (): CborError => new CborError('TRUNCATED', 'The CBOR data ends in the middle of an item.');

/**
 * Returns the offset just past the CBOR item at `offset`, checking the canonical rules on the way:
 * a bounded, iterative walk over the heads that builds no values.
 */
function scanItem(bytes: Uint8Array, offset: number): number {
  const levels: ScanLevel[] = [{ remaining: 1, isMap: false, index: 0, keyStart: 0, previousKey: undefined }];
  let pos = offset;
  while (levels.length > 0) {
    const level = levels[levels.length - 1] as ScanLevel;
    if (level.isMap && level.index % 2 === 1) {
      // Just before a value: the key spans [keyStart, pos).
      checkKeyOrder(level, bytes.subarray(level.keyStart, pos));
    }
    if (level.remaining === 0) {
      levels.pop();
      continue;
    }
    if (level.isMap && level.index % 2 === 0) level.keyStart = pos;
    level.remaining -= 1;
    level.index += 1;
    const initial = bytes[pos];
    if (initial === undefined) throw truncated();
    pos += 1;
    const major = initial >> 5;
    const info = initial & 0x1f;
    let argument: number;
    if (info < 24) {
      argument = info;
    } else if (info <= 27) {
      const size = 1 << (info - 24);
      if (pos + size > bytes.length) throw truncated();
      argument = 0;
      for (let i = 0; i < size; i++) argument = argument * 256 + (bytes[pos + i] ?? 0);
      pos += size;
      // Major type 7 uses these for floats, whose representation CTAP leaves as sent.
      const minimum = [24, 0x100, 0x10000, 0x100000000][info - 24] ?? 0;
      if (major !== 7 && argument < minimum) {
        throw new CborError('NOT_CANONICAL', 'A CBOR integer or length is not in its shortest form.');
      }
    } else if (info === 31) {
      throw new CborError('INDEFINITE_LENGTH', 'CTAP2 canonical CBOR forbids indefinite-length items.');
    } else {
      throw new CborError('MALFORMED', `Malformed CBOR: reserved additional information ${info}.`);
    }
    if (major === 2 || major === 3) {
      if (argument > bytes.length - pos) throw truncated();
      pos += argument;
    } else if (major === 4 || major === 5) {
      const items = major === 5 ? argument * 2 : argument;
      // Every item takes at least one byte, so a count beyond the input is truncation.
      if (items > bytes.length - pos) throw truncated();
      if (levels.length >= MAX_SCAN_DEPTH)
        throw new CborError('TOO_DEEP', 'The CBOR data is nested too deeply.');
      levels.push({ remaining: items, isMap: major === 5, index: 0, keyStart: pos, previousKey: undefined });
    } else if (major === 6) {
      throw new CborError('UNSUPPORTED_TYPE', 'CTAP2 canonical CBOR carries no tags.');
    }
  }
  return pos;
}

function checkKeyOrder(level: ScanLevel, key: Uint8Array): void {
  const previous = level.previousKey;
  level.previousKey = key;
  if (!previous) return;
  const order = compareCtapKeys(previous, key);
  if (order === 0) throw new CborError('DUPLICATE_KEY', 'A CBOR map holds the same key twice.');
  if (order > 0) throw new CborError('UNSORTED_KEYS', 'CBOR map keys are not in CTAP2 canonical order.');
}

function checkEncodable(value: unknown, depth: number): void {
  if (value instanceof Map || Array.isArray(value)) {
    if (depth + 1 > MAX_NESTING) {
      throw new CborError(
        'TOO_DEEP',
        `CTAP messages nest maps and arrays at most ${MAX_NESTING} levels deep.`,
      );
    }
    if (value instanceof Map) {
      for (const [k, v] of value) {
        if (!(
          typeof k === 'string' ||
          typeof k === 'bigint' ||
          (typeof k === 'number' && Number.isSafeInteger(k))
        )) {
          throw new CborError('UNSUPPORTED_TYPE', 'CTAP map keys are integers or text strings.');
        }
        checkEncodable(v, depth + 1);
      }
    } else {
      for (const v of value) checkEncodable(v, depth + 1);
    }
    return;
  }
  if (typeof value === 'number') {
    // CTAP uses no floating-point values; refusing them keeps the encoding unambiguous.
    if (!Number.isSafeInteger(value)) throw new CborError('UNSUPPORTED_TYPE', `Not an integer: ${value}.`);
    return;
  }
  if (typeof value === 'bigint') {
    if (value < -(2n ** 64n) || value >= 2n ** 64n) {
      throw new CborError('UNSUPPORTED_TYPE', 'CBOR integers are limited to 64 bits.');
    }
    return;
  }
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return;
  if (value instanceof Uint8Array) return; // a Buffer too: normalise() makes it a plain byte string
  throw new CborError(
    'UNSUPPORTED_TYPE',
    'CTAP messages carry integers, strings, byte strings, booleans, null, arrays and maps.',
  );
}

function normalise(value: CtapValue): unknown {
  if (value instanceof Uint8Array && value.constructor !== Uint8Array) {
    // A Buffer would otherwise be encoded with cbor2's type-specific encoder; CTAP wants a byte string.
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) return value.map(normalise);
  if (value instanceof Map) {
    const out = new Map<unknown, unknown>();
    for (const [k, v] of value) out.set(k, normalise(v));
    return out;
  }
  return value;
}

/** Encodes in CTAP2 canonical form: shortest heads, definite lengths, CTAP key order, ≤ 4 levels. */
export function encodeCtap(value: CtapValue): Uint8Array {
  checkEncodable(value, 0);
  try {
    return encode(normalise(value), ENCODE_OPTIONS);
  } catch (error) {
    throw error instanceof CborError
      ? error
      : new CborError('UNSUPPORTED_TYPE', `Cannot encode: ${String(error)}`);
  }
}

/** Builds a CTAP map from entries, e.g. `ctapMap([[1, hash], [2, rp]])`, skipping undefined values. */
export function ctapMap(entries: Iterable<readonly [CtapKey, CtapValue | undefined]>): CtapMap {
  const map: CtapMap = new Map();
  for (const [k, v] of entries) if (v !== undefined) map.set(k, v);
  return map;
}
