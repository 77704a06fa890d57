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

const id = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable();
const errorSchema = z.object({
  kind: z.enum(helperErrorKinds),
  rc: z.number().int().min(0).max(0xffffffff).optional(),
  message: z.string().max(4096),
});
const answerHead = z.union([
  z.looseObject({ id, ok: z.literal(true) }),
  z.object({ id, ok: z.literal(false), error: errorSchema }),
]);

export function parseAnswerLine(line: string): HelperAnswer {
  if (line.length > MAX_ANSWER_LINE) throw new HelperProtocolError('answer line too long');
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new HelperProtocolError(`answer is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  const parsed = answerHead.safeParse(value);
  if (!parsed.success)
    throw new HelperProtocolError(`malformed answer: ${parsed.error.issues[0]?.message ?? ''}`);
  const answer = parsed.data;
  if (answer.ok === false) {
    const error: HelperError = { kind: answer.error.kind, message: answer.error.message };
    if (answer.error.rc !== undefined) error.rc = answer.error.rc;
    return { id: answer.id, ok: false, error };
  }
  const { id: answerId, ok: _ok, ...fields } = answer;
  return { id: answerId, ok: true, fields };
}

// Standard base64 with padding, as the helper writes it; decoded without Node's leniency.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const bytes = (max: number) =>
  z
    .string()
    .max(Math.ceil(max / 3) * 4)
    .regex(BASE64, 'not standard base64')
    .transform((text) => new Uint8Array(Buffer.from(text, 'base64')));

const infoResult = z.object({
  manufacturer: z.string().max(64),
  firmware: z.string().max(64),
  tcti: z.string().max(1024),
});
const ekResult = z.object({ public: bytes(1024), certificate: bytes(16 * 1024).optional() });
const akResult = z.object({
  public: bytes(1024),
  name: bytes(66),
  handle: z.number().int().min(0x81000000).max(0x817fffff),
});
const activateResult = z.object({ cert_info: bytes(64) });
const quoteResult = z.object({ attest: bytes(2048), signature: bytes(1024) });
const benchResult = z.object({ median_us: z.number().nonnegative(), p90_us: z.number().nonnegative() });

export const resultSchemas = {
  info: infoResult,
  ek: ekResult,
  create_ak: akResult,
  load_ak: akResult,
  activate: activateResult,
  quote: quoteResult,
  raw_quote_bench: benchResult,
  close: z.object({}),
} satisfies Record<HelperOp, z.ZodType>;

export type HelperResult<Op extends HelperOp> = z.output<(typeof resultSchemas)[Op]>;

/** A successful answer's fields, checked for the op they answer. */
export function decodeResult<Op extends HelperOp>(op: Op, fields: Record<string, unknown>): HelperResult<Op> {
  const parsed = resultSchemas[op].safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HelperProtocolError(
      `malformed ${op} answer: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`,
    );
  }
  return parsed.data as HelperResult<Op>;
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
