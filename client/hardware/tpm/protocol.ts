// The TPM helper's wire protocol (native/tpm-helper): one JSON request per line to its stdin, one JSON
// answer per line from its stdout, matched by "id". Pure: encoding, parsing and the mapping of the
// helper's errors to KeyportError, no I/O. Whatever a line holds, the parsers return a typed value or
// throw HelperProtocolError.
import { z } from 'zod';
import { KeyportError } from '../../../proto/errors';

/** The longest answer line accepted (the largest real one, an EK with its certificate, is about 3 KiB). */
export const MAX_ANSWER_LINE = 1024 * 1024;

export const DEFAULT_TCTI = 'device:/dev/tpmrm0';

/** A line the helper should never have written. */
export class HelperProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HelperProtocolError';
  }
}

export type HelperOp =
  'info' | 'ek' | 'create_ak' | 'load_ak' | 'activate' | 'quote' | 'raw_quote_bench' | 'close';

export type RequestField = string | number | boolean | readonly number[];

export function encodeRequest(id: number, op: HelperOp, fields: Record<string, RequestField> = {}): string {
  return `${JSON.stringify({ ...fields, id, op })}\n`;
}

export const helperErrorKinds = ['tpm', 'request', 'not_found', 'internal'] as const;
export interface HelperError {
  kind: (typeof helperErrorKinds)[number];
  rc?: number;
  message: string;
}

export type HelperAnswer =
  | { id: number | null; ok: true; fields: Record<string, unknown> }
  | { id: number | null; ok: false; error: HelperError };

// Success answers are checked by hand: a quote's answer is read right after the process wakes from
// waiting on the TPM, where a schema library's generic walk costs as much as the pipe itself
// (bench/tpm-quote.bench.ts). Error answers, rare, go through zod.
const errorSchema = z.object({
  kind: z.enum(helperErrorKinds),
  rc: z.number().int().min(0).max(0xffffffff).optional(),
  message: z.string().max(4096),
});

function isId(value: unknown): value is number | null {
  return value === null || (Number.isSafeInteger(value) && (value as number) >= 0);
}

export function parseAnswerLine(line: string): HelperAnswer {
  if (line.length > MAX_ANSWER_LINE) throw new HelperProtocolError('answer line too long');
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new HelperProtocolError(`answer is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HelperProtocolError('malformed answer: not an object');
  const { id, ok, ...rest } = value as Record<string, unknown>;
  if (!isId(id)) throw new HelperProtocolError('malformed answer: id');
  if (ok === true) return { id, ok: true, fields: rest };
  if (ok !== false) throw new HelperProtocolError('malformed answer: ok');
  const parsed = errorSchema.safeParse(rest.error);
  if (!parsed.success)
    throw new HelperProtocolError(`malformed error answer: ${parsed.error.issues[0]?.message ?? ''}`);
  const error: HelperError = { kind: parsed.data.kind, message: parsed.data.message };
  if (parsed.data.rc !== undefined) error.rc = parsed.data.rc;
  return { id, ok: false, error };
}

// Standard base64 with padding, as the helper writes it; decoded without Node's leniency.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** How each field of a success answer is read: bytes (with a maximum length), text, a persistent handle, µs. */
type FieldSpec =
  | { type: 'bytes'; max: number; optional?: true }
  | { type: 'string'; max: number }
  | { type: 'handle' }
  | { type: 'micros' };

const bytes = (max: number) => ({ type: 'bytes', max }) as const;
const akSpec = { public: bytes(1024), name: bytes(66), handle: { type: 'handle' } } as const;

export const resultSpecs = {
  info: {
    manufacturer: { type: 'string', max: 64 },
    firmware: { type: 'string', max: 64 },
    tcti: { type: 'string', max: 1024 },
  },
  ek: { public: bytes(1024), certificate: { type: 'bytes', max: 16 * 1024, optional: true } },
  create_ak: akSpec,
  load_ak: akSpec,
  activate: { cert_info: bytes(64) },
  quote: { attest: bytes(2048), signature: bytes(1024) },
  raw_quote_bench: { median_us: { type: 'micros' }, p90_us: { type: 'micros' } },
  close: {},
} as const satisfies Record<HelperOp, Record<string, FieldSpec>>;

type ValueOf<Spec> = Spec extends { type: 'bytes' }
  ? Uint8Array
  : Spec extends { type: 'string' }
    ? string
    : number;
type ResultOf<Specs> = {
  -readonly [K in keyof Specs as Specs[K] extends { optional: true } ? never : K]: ValueOf<Specs[K]>;
} & {
  -readonly [K in keyof Specs as Specs[K] extends { optional: true } ? K : never]?: ValueOf<Specs[K]>;
};

export type HelperResult<Op extends HelperOp> = ResultOf<(typeof resultSpecs)[Op]>;

/** A successful answer's fields, checked for the op they answer; unknown fields are dropped. */
export function decodeResult<Op extends HelperOp>(op: Op, fields: Record<string, unknown>): HelperResult<Op> {
  const specs: Record<string, FieldSpec> = resultSpecs[op];
  const out: Record<string, unknown> = {};
  for (const key in specs) {
    const spec = specs[key] as FieldSpec;
    const value = fields[key];
    const bad = (why: string) => new HelperProtocolError(`malformed ${op} answer: ${key} ${why}`);
    switch (spec.type) {
      case 'bytes':
        if (value === undefined && spec.optional) continue;
        if (typeof value !== 'string') throw bad('is not a string');
        if (value.length > Math.ceil(spec.max / 3) * 4 || !BASE64.test(value))
          throw bad('is not standard base64');
        out[key] = new Uint8Array(Buffer.from(value, 'base64'));
        break;
      case 'string':
        if (typeof value !== 'string' || value.length > spec.max) throw bad('is not a short string');
        out[key] = value;
        break;
      case 'handle':
        if (!Number.isInteger(value) || (value as number) < 0x81000000 || (value as number) > 0x817fffff)
          throw bad('is not a persistent handle');
        out[key] = value;
        break;
      case 'micros':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw bad('is not a duration');
        out[key] = value;
        break;
    }
  }
  return out as HelperResult<Op>;
}

/** TSS2 RCs carry their layer in bits 16..23; 10 is the TCTI's: the TPM itself could not be reached. */
export function isTctiRc(rc: number): boolean {
  return ((rc >>> 16) & 0xff) === 10;
}

/** The KeyportError a helper's error answer means. not_found is left to the caller (it is an answer). */
export function toKeyportError(error: HelperError, tcti: string): KeyportError {
  switch (error.kind) {
    case 'tpm':
      if (error.rc !== undefined && isTctiRc(error.rc))
        return new KeyportError(
          'UNAVAILABLE',
          `${error.message.startsWith('No TPM at') ? error.message : `No TPM at ${tcti}: ${error.message}`}. ` +
            'Set KEYPORT_TPM_TCTI to the TPM to use (device:/dev/tpmrm0 by default).',
        );
      return new KeyportError('PRECONDITION_FAILED', `The TPM refused: ${error.message}`);
    case 'not_found':
      return new KeyportError('NOT_FOUND', error.message);
    case 'request':
      return new KeyportError('INTERNAL', `The TPM helper refused Keyport's request: ${error.message}`);
    case 'internal':
      return new KeyportError('INTERNAL', `The TPM helper failed: ${error.message}`);
  }
}
