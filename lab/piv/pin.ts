// PIN and PUK (SP 800-73-4 Part 2 §3.2.1 VERIFY, §3.2.2 CHANGE REFERENCE DATA, §3.2.3 RESET RETRY COUNTER),
// as a YubiKey keeps them: 6 to 8 bytes padded with 0xFF to 8, three tries each, 63Cx for x tries left,
// 6983 once blocked. A right value restores its counter.
import { timingSafeEqual } from 'node:crypto';
import type { CardResponse, CommandApdu } from './apdu';
import { ok, retriesLeft, status, SW } from './apdu';
import type { CardContext } from './context';
import { PIN_REFERENCE, PUK_REFERENCE } from './policy';

const REFERENCE_LENGTH = 8;
const MIN_LENGTH = 6;

type Reference = 'pin' | 'puk';

function referenceOf(p2: number): Reference | undefined {
  if (p2 === PIN_REFERENCE) return 'pin';
  if (p2 === PUK_REFERENCE) return 'puk';
  return undefined;
}

/** Compares and counts: 9000 (counter restored), 63Cx (one try spent, x left) or 6983 (blocked before). */
function check(ctx: CardContext, which: Reference, offered: Uint8Array): CardResponse {
  const stored = ctx.state[which];
  if (stored.retries === 0) return status(SW.AUTH_METHOD_BLOCKED);
  if (timingSafeEqual(Buffer.from(stored.paddedHex, 'hex'), offered)) {
    if (stored.retries !== stored.maxRetries) {
      stored.retries = stored.maxRetries;
      ctx.save();
    }
    return ok();
  }
  stored.retries -= 1;
  ctx.save();
  // The try that blocks still answers 63C0 (SP 800-73-4 Part 2 §3.2.1); 6983 is for tries after it.
  return retriesLeft(stored.retries);
}

/** A new PIN or PUK: 6 to 8 bytes, then only 0xFF padding; no 0xFF inside the value itself. */
function isWellFormedNewValue(padded: Uint8Array): boolean {
  const end = padded.indexOf(0xff);
  const length = end === -1 ? REFERENCE_LENGTH : end;
  if (length < MIN_LENGTH) return false;
  return padded.subarray(length).every((b) => b === 0xff);
}

/** VERIFY (INS 20): P2 80 only. Empty data asks the status; P1 FF (YubiKey) forgets a verification. */
export function verify(ctx: CardContext, cmd: CommandApdu): CardResponse {
  if (cmd.p2 !== PIN_REFERENCE) return status(SW.REFERENCE_NOT_FOUND);
  if (cmd.p1 === 0xff) {
    if (cmd.data.length !== 0) return status(SW.WRONG_LENGTH);
    ctx.session.pinVerified = false;
    ctx.session.pinFresh = false;
    return ok();
  }
  if (cmd.p1 !== 0x00) return status(SW.INCORRECT_P1P2);
  if (cmd.data.length === 0) {
    if (ctx.state.pin.retries === 0) return status(SW.AUTH_METHOD_BLOCKED);
    return ctx.session.pinVerified ? ok() : retriesLeft(ctx.state.pin.retries);
  }
  if (cmd.data.length !== REFERENCE_LENGTH) return status(SW.WRONG_LENGTH);
  const result = check(ctx, 'pin', cmd.data);
  const verified = result.sw === SW.OK;
  ctx.session.pinVerified = verified;
  ctx.session.pinFresh = verified;
  return result;
}

/** CHANGE REFERENCE DATA (INS 24): P2 80 (PIN) or 81 (PUK); data = old value ‖ new value, 8 bytes each. */
export function changeReferenceData(ctx: CardContext, cmd: CommandApdu): CardResponse {
  const which = referenceOf(cmd.p2);
  if (cmd.p1 !== 0x00) return status(SW.INCORRECT_P1P2);
  if (!which) return status(SW.REFERENCE_NOT_FOUND);
  if (cmd.data.length !== 2 * REFERENCE_LENGTH) return status(SW.WRONG_LENGTH);
  const next = cmd.data.subarray(REFERENCE_LENGTH);
  if (ctx.state[which].retries > 0 && !isWellFormedNewValue(next)) return status(SW.INCORRECT_DATA);
  const result = check(ctx, which, cmd.data.subarray(0, REFERENCE_LENGTH));
  if (which === 'pin' && result.sw !== SW.OK) {
    ctx.session.pinVerified = false;
    ctx.session.pinFresh = false;
  }
  if (result.sw !== SW.OK) return result;
  ctx.state[which].paddedHex = Buffer.from(next).toString('hex');
  ctx.save();
  return result;
}

/** RESET RETRY COUNTER (INS 2C): P2 80; data = PUK ‖ new PIN. Unblocks the PIN. */
export function resetRetryCounter(ctx: CardContext, cmd: CommandApdu): CardResponse {
  if (cmd.p1 !== 0x00) return status(SW.INCORRECT_P1P2);
  if (cmd.p2 !== PIN_REFERENCE) return status(SW.REFERENCE_NOT_FOUND);
  if (cmd.data.length !== 2 * REFERENCE_LENGTH) return status(SW.WRONG_LENGTH);
  const newPin = cmd.data.subarray(REFERENCE_LENGTH);
  if (ctx.state.puk.retries > 0 && !isWellFormedNewValue(newPin)) return status(SW.INCORRECT_DATA);
  const result = check(ctx, 'puk', cmd.data.subarray(0, REFERENCE_LENGTH));
  if (result.sw !== SW.OK) return result;
  ctx.state.pin.paddedHex = Buffer.from(newPin).toString('hex');
  ctx.state.pin.retries = ctx.state.pin.maxRetries;
  ctx.save();
  return result;
}

/** GET METADATA (INS F7) for 80/81: 05 default value?, 06 total and remaining tries. */
export function referenceMetadata(ctx: CardContext, which: Reference, defaultPaddedHex: string): Uint8Array {
  const stored = ctx.state[which];
  return Uint8Array.from([
    0x01,
    0x01,
    0xff, // algorithm: FF, "PIN or PUK"
    0x05,
    0x01,
    stored.paddedHex === defaultPaddedHex ? 0x01 : 0x00,
    0x06,
    0x02,
    stored.maxRetries,
    stored.retries,
  ]);
}
