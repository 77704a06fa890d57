// PC/SC facts the I/O layer acts on, kept pure: the return codes of pcsc-lite (PCSC/pcsclite.h) that
// pcsclite puts at the end of its error messages ("SCardTransmit error: Card was removed.(0x80100069)"),
// what each means for a session (card gone, card reset, pcscd gone), the reader state bits, and which
// reader to use.
import { PivError, hex } from './errors';

export const SCARD = {
  E_CANCELLED: 0x80100002,
  E_INVALID_HANDLE: 0x80100003,
  E_UNKNOWN_READER: 0x80100009,
  E_TIMEOUT: 0x8010000a,
  E_SHARING_VIOLATION: 0x8010000b,
  E_NO_SMARTCARD: 0x8010000c,
  E_PROTO_MISMATCH: 0x8010000f,
  E_NOT_READY: 0x80100010,
  F_COMM_ERROR: 0x80100013,
  E_READER_UNAVAILABLE: 0x80100017,
  E_NO_SERVICE: 0x8010001d,
  E_SERVICE_STOPPED: 0x8010001e,
  E_NO_READERS_AVAILABLE: 0x8010002e,
  W_UNRESPONSIVE_CARD: 0x80100066,
  W_UNPOWERED_CARD: 0x80100067,
  W_RESET_CARD: 0x80100068,
  W_REMOVED_CARD: 0x80100069,
} as const;

/** Reader state bits of SCardGetStatusChange, as pcsclite's 'status' event carries them. */
export const SCARD_STATE = {
  UNKNOWN: 0x0004,
  UNAVAILABLE: 0x0008,
  EMPTY: 0x0010,
  PRESENT: 0x0020,
  EXCLUSIVE: 0x0080,
  INUSE: 0x0100,
  MUTE: 0x0200,
} as const;

export const SCARD_SHARE_SHARED = 2;
export const SCARD_PROTOCOL_T0 = 1;
export const SCARD_PROTOCOL_T1 = 2;
export const SCARD_LEAVE_CARD = 0;
export const SCARD_RESET_CARD = 1;

/** A card is there and answers (present, not mute). */
export function cardPresentIn(state: number): boolean {
  return (state & SCARD_STATE.PRESENT) !== 0 && (state & SCARD_STATE.MUTE) === 0;
}

/** pcsc-lite's count of card events in a reader, kept in the state's upper 16 bits. */
export function cardEventCount(state: number): number {
  return (state >>> 16) & 0xffff;
}

/** The PC/SC return code at the end of a pcsclite error message, if there is one. */
export function pcscCodeOf(error: unknown): number | undefined {
  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : '';
  const match = /\(0x([0-9a-f]{8})\)\s*$/i.exec(message);
  return match ? Number.parseInt(match[1]!, 16) : undefined;
}

/**
 * What a failure means for the session:
 * - card-removed: the card left the reader; the operation is lost, the person is asked to reinsert it;
 * - card-reset: another application reset the card: connect again, SELECT again, the PIN is no longer
 *   verified;
 * - service-lost: pcscd went away (restarted, stopped) or our handles died with it: a new PC/SC context;
 * - no-card, in-use, other: said as they are.
 */
export type PcscFailure = 'card-removed' | 'card-reset' | 'service-lost' | 'no-card' | 'in-use' | 'other';

export function classifyPcscCode(code: number | undefined): PcscFailure {
  switch (code) {
    case SCARD.W_REMOVED_CARD:
      return 'card-removed';
    case SCARD.W_RESET_CARD:
    case SCARD.W_UNPOWERED_CARD:
      return 'card-reset';
    case SCARD.E_NO_SERVICE:
    case SCARD.E_SERVICE_STOPPED:
    case SCARD.F_COMM_ERROR:
    case SCARD.E_INVALID_HANDLE:
    case SCARD.E_READER_UNAVAILABLE:
    case SCARD.E_UNKNOWN_READER:
      return 'service-lost';
    case SCARD.E_NO_SMARTCARD:
      return 'no-card';
    case SCARD.E_SHARING_VIOLATION:
      return 'in-use';
    default:
      return 'other';
  }
}

/** A pcsclite failure as the PivError a person reads. */
export function pcscError(error: unknown, what: string, reader?: string): PivError {
  const code = pcscCodeOf(error);
  const details = code === undefined ? {} : { pcscCode: code };
  const where = reader ? ` in "${reader}"` : '';
  const codeText = code === undefined ? '' : ` (PC/SC 0x${hex(code, 8)})`;
  switch (classifyPcscCode(code)) {
    case 'card-removed':
      return cardRemoved(what, reader, code);
    case 'no-card':
      return new PivError(
        'NO_CARD',
        `No card${where}. Insert your PIV card (YubiKey) and try again.`,
        details,
      );
    case 'in-use':
      return new PivError(
        'CARD_IN_USE',
        `Another application holds the PIV card${where} for itself. Close it (or wait for it) and try again.`,
        details,
      );
    case 'service-lost':
      return new PivError(
        'PCSC_UNAVAILABLE',
        `The smart card service (pcscd) went away while trying to ${what}${codeText}. Start pcscd ` +
          '(`systemctl start pcscd.socket`) and try again.',
        details,
      );
    case 'card-reset':
    case 'other': {
      const text = error instanceof Error ? error.message : String(error);
      return new PivError('PCSC_ERROR', `The smart card service could not ${what}${where}: ${text}`, details);
    }
  }
}

export function cardRemoved(what: string, reader?: string, code?: number): PivError {
  return new PivError(
    'CARD_REMOVED',
    `The PIV card was removed${reader ? ` from "${reader}"` : ''} while trying to ${what}. ` +
      'Reinsert it and try again.',
    code === undefined ? {} : { pcscCode: code },
  );
}

export interface ReaderInfo {
  name: string;
  /** Whether a card is in it; undefined while pcscd has not said yet. */
  cardPresent: boolean | undefined;
}

/**
 * The readers to try, in order. A name picks that reader (exactly, else the only one whose name contains
 * it, ignoring case). Without a name: readers with a card first, then those not yet known, in pcscd's
 * order; readers known to be empty are left out.
 */
export function readerCandidates(readers: readonly ReaderInfo[], wanted?: string): string[] {
  if (readers.length === 0)
    throw new PivError('NO_READER', 'No smart card reader found. Plug in your YubiKey (or PIV card reader).');
  if (wanted !== undefined) {
    const exact = readers.find((reader) => reader.name === wanted);
    if (exact) return [exact.name];
    const lower = wanted.toLowerCase();
    const matches = readers.filter((reader) => reader.name.toLowerCase().includes(lower));
    if (matches.length === 1) return [matches[0]!.name];
    const list = readers.map((reader) => `"${reader.name}"`).join(', ');
    throw new PivError(
      'NO_READER',
      matches.length === 0
        ? `No smart card reader named "${wanted}". Readers: ${list}.`
        : `"${wanted}" names several smart card readers (${list}); give the whole name.`,
    );
  }
  const withCard = readers.filter((reader) => reader.cardPresent === true).map((reader) => reader.name);
  const unknown = readers.filter((reader) => reader.cardPresent === undefined).map((reader) => reader.name);
  const candidates = [...withCard, ...unknown];
  if (candidates.length === 0)
    throw new PivError(
      'NO_CARD',
      'No card in any smart card reader. Insert your PIV card (YubiKey) and try again.',
    );
  return candidates;
}
