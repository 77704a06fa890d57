// The one error of client/hardware/piv: a KeyportError with a PIV `reason` callers switch on, plus what
// the UI needs to say what to do next (PIN attempts left, the status word, the PC/SC code). Every parser
// here throws PivError and nothing else, whatever bytes the card sent.
import type { KeyportErrorCode } from '../../../proto/errors';
import { KeyportError } from '../../../proto/errors';

export const pivErrorReasons = [
  /** The card's answer is not what the spec allows (truncated TLV, wrong tag, bad length, no SW). */
  'MALFORMED_RESPONSE',
  /** The caller's input cannot be sent (a PIN of 9 bytes, a digest of 20, a certificate of 5 KB). */
  'INVALID_ARGUMENT',
  /** VERIFY, CHANGE REFERENCE DATA or RESET RETRY COUNTER with a wrong PIN or PUK: 63Cx, x > 0. */
  'PIN_INCORRECT',
  'PUK_INCORRECT',
  /** 6983, or 63C0: no attempts left. */
  'PIN_BLOCKED',
  'PUK_BLOCKED',
  /** The key's PIN policy needs the PIN now and no PIN was given. */
  'PIN_REQUIRED',
  /** 6982: the PIN is not verified, the touch did not come, or the management key is not authenticated. */
  'SECURITY_STATUS_NOT_SATISFIED',
  /** 6982 to the management key's answer: the card holds another management key. */
  'MANAGEMENT_KEY_REJECTED',
  /** The card's answer to our challenge is wrong: it does not hold the management key we hold. */
  'CARD_AUTHENTICATION_FAILED',
  /** 6A82 to SELECT: this card has no PIV application. */
  'APPLET_NOT_FOUND',
  /** 6A82: the data object or the key is not on the card. */
  'NOT_FOUND',
  'INCORRECT_DATA',
  'WRONG_LENGTH',
  'INS_NOT_SUPPORTED',
  'CLA_NOT_SUPPORTED',
  'INCORRECT_P1P2',
  'FUNCTION_NOT_SUPPORTED',
  'CONDITIONS_NOT_SATISFIED',
  'REFERENCE_NOT_FOUND',
  'NOT_ENOUGH_MEMORY',
  'LAST_COMMAND_EXPECTED',
  'CHAINING_NOT_SUPPORTED',
  'MEMORY_FAILURE',
  'NO_PRECISE_DIAGNOSIS',
  'UNKNOWN_STATUS',
  /** pcscd is not running or not reachable (PCSCLITE_CSOCK_NAME names its socket). */
  'PCSC_UNAVAILABLE',
  /** No smart card reader, or not the one asked for. */
  'NO_READER',
  /** A reader, but no card in it. */
  'NO_CARD',
  /** The card left its reader during an operation. */
  'CARD_REMOVED',
  /** The card back in the reader is another card (another serial). */
  'CARD_CHANGED',
  /** Another application holds the card exclusively. */
  'CARD_IN_USE',
  /** Any other PC/SC failure. */
  'PCSC_ERROR',
  /** The session was closed. */
  'SESSION_CLOSED',
  /** The caller gave up waiting (its AbortSignal). */
  'CANCELLED',
  /** A wait (for a card, for pcscd) ran out. */
  'TIMEOUT',
  /** The slot holds a key Keyport did not make: it is not overwritten without the person's say. */
  'SLOT_IN_USE',
] as const;
export type PivErrorReason = (typeof pivErrorReasons)[number];

export interface PivErrorDetails {
  /** The status word (SW1SW2) the card answered, when the error comes from one. */
  sw?: number;
  /** PIN or PUK attempts left, when the card said. */
  retriesLeft?: number;
  /** The PC/SC return code (0x801000xx), when the error comes from pcsclite. */
  pcscCode?: number;
}

const codeOf: Record<PivErrorReason, KeyportErrorCode> = {
  MALFORMED_RESPONSE: 'INTERNAL',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  PIN_INCORRECT: 'MFA_FAILED',
  PUK_INCORRECT: 'MFA_FAILED',
  PIN_BLOCKED: 'LOCKED',
  PUK_BLOCKED: 'LOCKED',
  PIN_REQUIRED: 'PRECONDITION_FAILED',
  SECURITY_STATUS_NOT_SATISFIED: 'ACCESS_DENIED',
  MANAGEMENT_KEY_REJECTED: 'ACCESS_DENIED',
  CARD_AUTHENTICATION_FAILED: 'ACCESS_DENIED',
  APPLET_NOT_FOUND: 'NOT_FOUND',
  NOT_FOUND: 'NOT_FOUND',
  INCORRECT_DATA: 'INVALID_ARGUMENT',
  WRONG_LENGTH: 'INVALID_ARGUMENT',
  INS_NOT_SUPPORTED: 'PRECONDITION_FAILED',
  CLA_NOT_SUPPORTED: 'PRECONDITION_FAILED',
  INCORRECT_P1P2: 'INVALID_ARGUMENT',
  FUNCTION_NOT_SUPPORTED: 'PRECONDITION_FAILED',
  CONDITIONS_NOT_SATISFIED: 'PRECONDITION_FAILED',
  REFERENCE_NOT_FOUND: 'NOT_FOUND',
  NOT_ENOUGH_MEMORY: 'RESOURCE_EXHAUSTED',
  LAST_COMMAND_EXPECTED: 'INTERNAL',
  CHAINING_NOT_SUPPORTED: 'PRECONDITION_FAILED',
  MEMORY_FAILURE: 'INTERNAL',
  NO_PRECISE_DIAGNOSIS: 'INTERNAL',
  UNKNOWN_STATUS: 'INTERNAL',
  PCSC_UNAVAILABLE: 'UNAVAILABLE',
  NO_READER: 'UNAVAILABLE',
  NO_CARD: 'UNAVAILABLE',
  CARD_REMOVED: 'UNAVAILABLE',
  CARD_CHANGED: 'PRECONDITION_FAILED',
  CARD_IN_USE: 'UNAVAILABLE',
  PCSC_ERROR: 'UNAVAILABLE',
  SESSION_CLOSED: 'CANCELLED',
  CANCELLED: 'CANCELLED',
  TIMEOUT: 'EXPIRED',
  SLOT_IN_USE: 'ALREADY_EXISTS',
};

export class PivError extends KeyportError {
  readonly sw: number | undefined;
  readonly retriesLeft: number | undefined;
  readonly pcscCode: number | undefined;

  constructor(
    readonly reason: PivErrorReason,
    message: string,
    details: PivErrorDetails = {},
  ) {
    super(codeOf[reason], message);
    this.name = 'PivError';
    this.sw = details.sw;
    this.retriesLeft = details.retriesLeft;
    this.pcscCode = details.pcscCode;
  }
}

/** The card sent bytes the spec does not allow. */
export function malformed(what: string): PivError {
  return new PivError(
    'MALFORMED_RESPONSE',
    `The PIV card sent a malformed answer (${what}). Remove the card, insert it again and try again.`,
  );
}

export function invalidArgument(message: string): PivError {
  return new PivError('INVALID_ARGUMENT', message);
}

export function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, '0');
}
