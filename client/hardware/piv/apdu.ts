// Command and response APDUs (ISO/IEC 7816-4 §5.1, §5.3 and §5.6): the four command cases in short and
// extended form, command chaining (CLA b5 = 0x10) for data longer than a short APDU carries, the 61xx
// GET RESPONSE continuation and 6Cxx re-sending, and the status words mapped to PivError. `exchange`
// runs one command over any `Transmit` function, so the I/O is one function a test can script in bytes.
import type { PivErrorReason } from './errors';
import { PivError, hex, invalidArgument, malformed } from './errors';
import { concatBytes } from './tlv';

export interface CommandApdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  /** Nc bytes of command data; empty or absent for none. */
  data?: Uint8Array;
  /** Ne, the most response bytes wanted: 1..256 short, 1..65536 extended; absent for no Le field. */
  le?: number;
}

export interface ResponseApdu {
  data: Uint8Array;
  sw: number;
}

export const SW = {
  OK: 0x9000,
  /** 61xx: xx more bytes (00: 256 or more) wait for GET RESPONSE. */
  MORE_DATA: 0x61,
  /** 6Cxx: wrong Le; send the same command again with Le = xx. */
  WRONG_LE: 0x6c,
  /** 63Cx: verification failed, x attempts left. */
  VERIFY_FAILED: 0x63c0,
  MEMORY_FAILURE: 0x6581,
  WRONG_LENGTH: 0x6700,
  LAST_COMMAND_EXPECTED: 0x6883,
  CHAINING_NOT_SUPPORTED: 0x6884,
  SECURITY_STATUS_NOT_SATISFIED: 0x6982,
  AUTH_METHOD_BLOCKED: 0x6983,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  INCORRECT_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  FILE_NOT_FOUND: 0x6a82,
  NOT_ENOUGH_MEMORY: 0x6a84,
  INCORRECT_P1P2: 0x6a86,
  REFERENCE_NOT_FOUND: 0x6a88,
  WRONG_P1P2: 0x6b00,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  NO_PRECISE_DIAGNOSIS: 0x6f00,
} as const;

export const CLA_CHAINING = 0x10;
export const INS_GET_RESPONSE = 0xc0;
export const SHORT_MAX_DATA = 255;
export const SHORT_MAX_LE = 256;
export const EXTENDED_MAX_DATA = 65535;
export const EXTENDED_MAX_LE = 65536;
/** The most response bytes one exchange gathers over GET RESPONSE (a PIV object is at most a few KB). */
export const MAX_RESPONSE_DATA = 65536;
/** The most GET RESPONSE rounds one exchange makes, whatever the card says. */
export const MAX_GET_RESPONSE_ROUNDS = 512;

function checkByte(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xff)
    throw invalidArgument(`APDU ${name} is not a byte`);
}

/**
 * The bytes of one command APDU. Short form unless `extended` (or unless the data or Le do not fit a
 * short APDU and `extended` is left undefined, in which case a short APDU is impossible and this throws:
 * callers chain instead, see `chainCommand`).
 */
export function encodeCommandApdu(command: CommandApdu, options: { extended?: boolean } = {}): Uint8Array {
  const { cla, ins, p1, p2, le } = command;
  const data = command.data ?? new Uint8Array(0);
  checkByte(cla, 'CLA');
  checkByte(ins, 'INS');
  checkByte(p1, 'P1');
  checkByte(p2, 'P2');
  const extended = options.extended ?? false;
  const maxData = extended ? EXTENDED_MAX_DATA : SHORT_MAX_DATA;
  const maxLe = extended ? EXTENDED_MAX_LE : SHORT_MAX_LE;
  if (data.length > maxData)
    throw invalidArgument(`APDU data of ${data.length} bytes does not fit (at most ${maxData}); chain it`);
  if (le !== undefined && (!Number.isInteger(le) || le < 1 || le > maxLe))
    throw invalidArgument(`APDU Le ${le} is outside 1..${maxLe}`);
  const header = Uint8Array.of(cla, ins, p1, p2);
  if (!extended) {
    const lc = data.length > 0 ? Uint8Array.of(data.length) : new Uint8Array(0);
    const leField = le === undefined ? new Uint8Array(0) : Uint8Array.of(le & 0xff); // 256 → 00
    return concatBytes(header, lc, data, leField);
  }
  // Extended (§5.1): Lc is 00 hi lo; Le is 00 hi lo without Lc, hi lo after Lc; 65536 is 00 00.
  const lc = data.length > 0 ? Uint8Array.of(0, data.length >>> 8, data.length & 0xff) : new Uint8Array(0);
  let leField = new Uint8Array(0);
  if (le !== undefined) {
    const n = le & 0xffff;
    leField = data.length > 0 ? Uint8Array.of(n >>> 8, n & 0xff) : Uint8Array.of(0, n >>> 8, n & 0xff);
  }
  return concatBytes(header, lc, data, leField);
}

/**
 * A command whose data is longer than `chunk` bytes as a chain (§5.3.3): every part but the last carries
 * CLA with b5 set and no Le; the last carries the command's own CLA and Le.
 */
export function chainCommand(command: CommandApdu, chunk = SHORT_MAX_DATA): CommandApdu[] {
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > SHORT_MAX_DATA)
    throw invalidArgument(`A chained APDU part holds 1..${SHORT_MAX_DATA} bytes, not ${chunk}`);
  if ((command.cla & CLA_CHAINING) !== 0) throw invalidArgument('CLA already has the chaining bit');
  const data = command.data ?? new Uint8Array(0);
  if (data.length <= chunk) return [command];
  const parts: CommandApdu[] = [];
  for (let offset = 0; offset < data.length; offset += chunk) {
    const last = offset + chunk >= data.length;
    const part: CommandApdu = {
      cla: last ? command.cla : command.cla | CLA_CHAINING,
      ins: command.ins,
      p1: command.p1,
      p2: command.p2,
      data: data.subarray(offset, offset + chunk),
    };
    if (last && command.le !== undefined) part.le = command.le;
    parts.push(part);
  }
  return parts;
}

export function parseResponseApdu(bytes: Uint8Array): ResponseApdu {
  if (bytes.length < 2) throw malformed(`a response of ${bytes.length} byte(s), without a status word`);
  const n = bytes.length;
  return { data: bytes.subarray(0, n - 2), sw: (bytes[n - 2]! << 8) | bytes[n - 1]! };
}

export function getResponseCommand(le: number): CommandApdu {
  return { cla: 0x00, ins: INS_GET_RESPONSE, p1: 0x00, p2: 0x00, le };
}

/** Sends one command APDU's bytes and resolves with the response APDU's bytes (data ‖ SW1 SW2). */
export type Transmit = (command: Uint8Array) => Promise<Uint8Array>;

export interface ExchangeOptions {
  /** Send one extended APDU instead of a chain of short ones (only where the reader and card take it). */
  extended?: boolean;
  /** Called with the number of APDUs this exchange sent, for counting. */
  onApdu?: () => void;
}

/**
 * One command, whole: chained when its data is longer than a short APDU, its answer gathered over
 * GET RESPONSE while the card answers 61xx, re-sent once with Le = xx on 6Cxx. Resolves with the whole
 * answer and its final status word (not checked: see `checkStatus`). A chain part answered with anything
 * but 9000 ends the exchange with that answer. Bounded: at most MAX_RESPONSE_DATA bytes and
 * MAX_GET_RESPONSE_ROUNDS rounds, whatever the card sends.
 */
export async function exchange(
  transmit: Transmit,
  command: CommandApdu,
  options: ExchangeOptions = {},
): Promise<ResponseApdu> {
  const extended = options.extended ?? false;
  const send = async (apdu: CommandApdu): Promise<ResponseApdu> => {
    const bytes = encodeCommandApdu(apdu, { extended });
    options.onApdu?.();
    return parseResponseApdu(await transmit(bytes));
  };

  const parts = extended ? [command] : chainCommand(command);
  for (const part of parts.slice(0, -1)) {
    const answer = await send(part);
    if (answer.sw !== SW.OK) return answer;
  }
  let last = parts[parts.length - 1]!;
  let answer = await send(last);
  if (answer.sw >>> 8 === SW.WRONG_LE) {
    last = { ...last, le: answer.sw & 0xff || SHORT_MAX_LE };
    answer = await send(last);
  }

  const chunks: Uint8Array[] = [answer.data];
  let total = answer.data.length;
  let rounds = 0;
  while (answer.sw >>> 8 === SW.MORE_DATA) {
    if (++rounds > MAX_GET_RESPONSE_ROUNDS) throw malformed('GET RESPONSE without end');
    answer = await send(getResponseCommand(answer.sw & 0xff || SHORT_MAX_LE));
    total += answer.data.length;
    if (total > MAX_RESPONSE_DATA) throw malformed(`an answer longer than ${MAX_RESPONSE_DATA} bytes`);
    chunks.push(answer.data);
  }
  return { data: chunks.length === 1 ? answer.data : concatBytes(...chunks), sw: answer.sw };
}

/** What a status word is read against: the operation (for the message) and the credential it checks. */
export interface StatusContext {
  /** "sign with slot 9a", "read the certificate of slot 9c", ... */
  operation: string;
  /** The reference data this command checks: 63Cx and 6983 then speak of that one. */
  credential?: 'PIN' | 'PUK';
  /** SELECT: 6A82 means the card has no PIV application. */
  select?: boolean;
}

const attempts = (n: number) => (n === 1 ? '1 attempt left' : `${n} attempts left`);

/** The typed error for a status word other than 9000. */
export function statusError(sw: number, context: StatusContext): PivError {
  const op = context.operation;
  const swHex = hex(sw, 4);
  const error = (reason: PivErrorReason, message: string, retriesLeft?: number) =>
    new PivError(reason, message, retriesLeft === undefined ? { sw } : { sw, retriesLeft });
  const credential = context.credential ?? 'PIN';

  if ((sw & 0xfff0) === SW.VERIFY_FAILED) {
    const left = sw & 0x0f;
    if (left === 0) return blocked(credential, sw);
    return credential === 'PUK'
      ? error(
          'PUK_INCORRECT',
          `Wrong PUK (${attempts(left)}). Check the PUK of your PIV card and try again.`,
          left,
        )
      : error('PIN_INCORRECT', `Wrong PIV PIN (${attempts(left)}). Check the PIN and try again.`, left);
  }
  switch (sw) {
    case SW.AUTH_METHOD_BLOCKED:
      return blocked(credential, sw);
    case SW.SECURITY_STATUS_NOT_SATISFIED:
      return error(
        'SECURITY_STATUS_NOT_SATISFIED',
        `The PIV card refused to ${op}: its PIN was not verified, or it was not touched in time. ` +
          'Try again, enter the PIN if asked and touch the card when it blinks.',
      );
    case SW.FILE_NOT_FOUND:
      return context.select
        ? error(
            'APPLET_NOT_FOUND',
            'This card has no PIV application. Insert a PIV card (a YubiKey 5) and try again.',
          )
        : error('NOT_FOUND', `The PIV card could not ${op}: the key or object is not on the card.`);
    case SW.REFERENCE_NOT_FOUND:
      return error('REFERENCE_NOT_FOUND', `The PIV card could not ${op}: it has no such key or reference.`);
    case SW.INCORRECT_DATA:
      return error('INCORRECT_DATA', `The PIV card could not ${op}: it rejected the command's data (6A80).`);
    case SW.WRONG_LENGTH:
      return error('WRONG_LENGTH', `The PIV card could not ${op}: it rejected the command's length (6700).`);
    case SW.INCORRECT_P1P2:
    case SW.WRONG_P1P2:
      return error(
        'INCORRECT_P1P2',
        `The PIV card could not ${op}: it does not support this algorithm or slot (${swHex}).`,
      );
    case SW.INS_NOT_SUPPORTED:
      return error(
        'INS_NOT_SUPPORTED',
        `The PIV card could not ${op}: it does not know the command (6D00). A YubiKey 4 or 5 is needed.`,
      );
    case SW.CLA_NOT_SUPPORTED:
      return error(
        'CLA_NOT_SUPPORTED',
        `The PIV card could not ${op}: it does not support the command class (6E00).`,
      );
    case SW.FUNCTION_NOT_SUPPORTED:
      return error(
        'FUNCTION_NOT_SUPPORTED',
        `The PIV card could not ${op}: the function is not supported (6A81).`,
      );
    case SW.CONDITIONS_NOT_SATISFIED:
      return error(
        'CONDITIONS_NOT_SATISFIED',
        `The PIV card could not ${op}: conditions of use not satisfied (6985).`,
      );
    case SW.NOT_ENOUGH_MEMORY:
      return error('NOT_ENOUGH_MEMORY', `The PIV card could not ${op}: it has no room left (6A84).`);
    case SW.LAST_COMMAND_EXPECTED:
      return error('LAST_COMMAND_EXPECTED', `The PIV card could not ${op}: a command chain was cut (6883).`);
    case SW.CHAINING_NOT_SUPPORTED:
      return error(
        'CHAINING_NOT_SUPPORTED',
        `The PIV card could not ${op}: it does not take chained commands (6884).`,
      );
    case SW.MEMORY_FAILURE:
      return error('MEMORY_FAILURE', `The PIV card could not ${op}: its memory failed (6581).`);
    case SW.NO_PRECISE_DIAGNOSIS:
      return error('NO_PRECISE_DIAGNOSIS', `The PIV card could not ${op} and gave no reason (6F00).`);
    default:
      return error('UNKNOWN_STATUS', `The PIV card could not ${op} (status ${swHex}).`);
  }
}

function blocked(credential: 'PIN' | 'PUK', sw: number): PivError {
  return credential === 'PUK'
    ? new PivError(
        'PUK_BLOCKED',
        'The PUK of your PIV card is blocked after too many wrong attempts. Only a reset of the PIV ' +
          'application (which erases its keys and certificates) makes the card usable again: `ykman piv reset`.',
        { sw, retriesLeft: 0 },
      )
    : new PivError(
        'PIN_BLOCKED',
        'The PIN of your PIV card is blocked after too many wrong attempts. Unblock it with the PUK: ' +
          '`keyport piv unblock` (or `ykman piv access unblock-pin`), then try again.',
        { sw, retriesLeft: 0 },
      );
}

/** The answer's data when its status is 9000; the typed error otherwise. */
export function checkStatus(response: ResponseApdu, context: StatusContext): Uint8Array {
  if (response.sw !== SW.OK) throw statusError(response.sw, context);
  return response.data;
}
