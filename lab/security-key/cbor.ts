// CTAP2 canonical CBOR for the soft key (CTAP 2.1 §8 "Message Encoding"), over cbor2.
// The soft key keeps its own codec instead of importing client/hardware/fido/cbor.ts, so that the key and
// the client are two independent implementations that check each other.
//
// CTAP2 canonical form: shortest integers and lengths, definite lengths only, no tags, map keys sorted by
// major type, then length, then bytes. For preferred-encoded keys that order is the same as RFC 8949
// §4.2.1 bytewise order of the encoded keys (the major type and the length sit in the leading bytes),
// so cbor2's sortCoreDeterministic is the CTAP order.
import { decode, encode, Tag } from 'cbor2';
import { Simple } from 'cbor2/simple';
import { sortCoreDeterministic } from 'cbor2/sorts';

/** What CTAP messages carry; maps are always Map (CTAP uses integer keys). */
export type CborValue =
  number | bigint | string | boolean | null | Uint8Array | CborValue[] | Map<CborValue, CborValue>;

export class CborError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CborError';
  }
}

// CTAP 2.1 §8: nesting of at most four levels in requests; a little headroom for the COSE key inside.
const MAX_DEPTH = 6;

export function encodeCanonical(value: CborValue): Uint8Array {
  return encode(plain(value), { sortKeys: sortCoreDeterministic, collapseBigInts: true });
}

/** cbor2 encodes a Node Buffer through its toJSON ({type, data}); CTAP wants a byte string. */
function plain(value: CborValue): CborValue {
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? new Uint8Array(value) : value;
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [plain(k), plain(v)]));
  return value;
}

/**
 * Decodes one CTAP2-canonical item, and rejects anything else: trailing bytes, indefinite lengths,
 * non-shortest integers or lengths, unsorted or duplicate keys, tags, floats, undefined and other simple
 * values. As a last check the value is re-encoded and must give back the exact input bytes.
 */
export function decodeCanonical(bytes: Uint8Array): CborValue {
  let value: unknown;
  try {
    value = decode(bytes, {
      preferMap: true,
      rejectStreaming: true,
      requirePreferred: true,
      sortKeys: sortCoreDeterministic,
      rejectDuplicateKeys: true,
      rejectFloats: true,
      rejectSimple: true,
      rejectUndefined: true,
      rejectBigInts: true,
      ignoreGlobalTags: true,
      maxDepth: MAX_DEPTH,
    });
  } catch (err) {
    throw new CborError(`invalid CBOR: ${(err as Error).message}`);
  }
  checkValue(value, 0);
  const again = encodeCanonical(value as CborValue);
  if (!equalBytes(again, bytes)) throw new CborError('CBOR is not in CTAP2 canonical form');
  return value as CborValue;
}

function checkValue(value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new CborError('CBOR nested too deeply');
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return;
  if (typeof value === 'bigint') return;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new CborError('floating-point numbers are not allowed');
    return;
  }
  if (value instanceof Uint8Array) return;
  if (Array.isArray(value)) {
    for (const item of value) checkValue(item, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      checkValue(k, depth + 1);
      checkValue(v, depth + 1);
    }
    return;
  }
  if (value instanceof Tag) throw new CborError('CBOR tags are not allowed');
  if (value instanceof Simple) throw new CborError('CBOR simple values are not allowed');
  throw new CborError(`unexpected CBOR item: ${typeof value}`);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Typed access to a request map; wrong types are CTAP2_ERR_CBOR_UNEXPECTED_TYPE at the call site. */
export class UnexpectedTypeError extends Error {
  constructor(what: string) {
    super(`unexpected CBOR type for ${what}`);
    this.name = 'UnexpectedTypeError';
  }
}

export function asMap(v: CborValue | undefined, what: string): Map<CborValue, CborValue> {
  if (!(v instanceof Map)) throw new UnexpectedTypeError(what);
  return v;
}
export function asBytes(v: CborValue | undefined, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new UnexpectedTypeError(what);
  return v;
}
export function asText(v: CborValue | undefined, what: string): string {
  if (typeof v !== 'string') throw new UnexpectedTypeError(what);
  return v;
}
export function asInt(v: CborValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new UnexpectedTypeError(what);
  return v;
}
export function asBool(v: CborValue | undefined, what: string): boolean {
  if (typeof v !== 'boolean') throw new UnexpectedTypeError(what);
  return v;
}
export function asArray(v: CborValue | undefined, what: string): CborValue[] {
  if (!Array.isArray(v)) throw new UnexpectedTypeError(what);
  return v;
}
