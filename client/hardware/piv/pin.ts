// The PIV PIN and PUK as the person manages them: a new PIN or PUK is checked before the card sees it (6 to
// 8 bytes, not the factory one), and a blocked (or forgotten) PIN is unblocked with the PUK, RESET RETRY
// COUNTER (SP 800-73-4 Part 2 §3.2.3), which sets a new PIN. `checkNewSecret` is pure; `unblockPivPin`
// reads top to bottom as its steps against a PivSession.
import { SW, statusError } from './apdu';
import { padReferenceData } from './commands';
import { PivError } from './errors';
import type { PivSession } from './session';

export const DEFAULT_PIN = '123456';
export const DEFAULT_PUK = '12345678';

/**
 * A new PIN or PUK as the card will take it: 6 to 8 bytes of UTF-8, and not the factory value (anyone
 * knows it). A refusal is INVALID_ARGUMENT, raised before any APDU, so the card and its counters are
 * untouched.
 */
export function checkNewSecret(secret: string, what: 'PIN' | 'PUK'): string {
  padReferenceData(secret, what);
  const factory = what === 'PIN' ? DEFAULT_PIN : DEFAULT_PUK;
  if (secret === factory) {
    throw new PivError('INVALID_ARGUMENT', `Choose a ${what} other than the default ${factory}.`);
  }
  return secret;
}

export interface PivUnblockPrompts {
  /** The card's PUK. */
  puk(): Promise<string>;
  /** The new PIN (6 to 8 characters). */
  newPin(): Promise<string>;
  /** Says something that needs no answer. */
  notice?(message: string): void;
}

export const PIN_BLOCKED_NOTICE =
  'The PIN of your PIV card is blocked. Its PUK unblocks it and sets a new PIN.';

/**
 * Unblocks the PIN with the PUK and sets a new PIN (also for a PIN that is not blocked but forgotten).
 * A blocked PUK is said before anything is asked; a wrong PUK is PUK_INCORRECT with the attempts left
 * (the PIN stays as it was); the last wrong one is PUK_BLOCKED.
 */
export async function unblockPivPin(session: PivSession, prompts: PivUnblockPrompts): Promise<void> {
  // 1. The PUK's attempts left (GET METADATA of 81, YubiKey 5.3+): a blocked PUK cannot unblock anything.
  const puk = await session.metadata(0x81).catch(() => undefined);
  if (puk?.retries?.left === 0) {
    throw statusError(SW.AUTH_METHOD_BLOCKED, { operation: 'unblock the PIN', credential: 'PUK' });
  }
  // 2. Whether the PIN is blocked, so the person knows why they are asked.
  const pin = await session.pinStatus();
  if (pin.state === 'blocked') prompts.notice?.(PIN_BLOCKED_NOTICE);
  // 3. The PUK and the new PIN, checked here before the card sees them.
  const givenPuk = await prompts.puk();
  padReferenceData(givenPuk, 'PUK');
  const newPin = checkNewSecret(await prompts.newPin(), 'PIN');
  // 4. RESET RETRY COUNTER.
  await session.unblockPin(givenPuk, newPin);
}
