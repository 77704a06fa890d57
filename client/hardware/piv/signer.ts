// A session key on a PIV card as a SessionSigner (client/keystore/signer.ts): the card signs, the key never
// leaves it (exportable false: its calls carry a proof of possession, client/api.ts). sign(data) is the
// card's ECDSA P-256 over SHA-256(data), DER. The PIN is asked through `prompts.pin` only when the card
// needs it (PIN policy "always" each time, "once" the first time per connection), again with the attempts
// left after a wrong one; "Tap your YubiKey" is said when the key's touch policy makes the card wait; a card
// pulled mid-sign is waited for and signs once back, where the caller can say so (prompts.reinsert).
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { SessionSigner } from '../../keystore/signer';
import { formatSshPublicKey, sshPublicKeyParts } from '../../keystore/session-key';
import type { PinPolicy, PivSlot, TouchPolicy } from './commands';
import { effectivePinPolicy } from './commands';
import { PivError } from './errors';
import type { PivSession } from './session';

/** The seed's words (Teleport's `tsh`), said when the card waits for a touch. */
export const TAP_YOUR_YUBIKEY = 'Tap your YubiKey';
/** Said when the card left its reader during a signature, to a caller that waits for it to come back. */
export const REINSERT_YOUR_CARD = 'Your PIV card was removed. Reinsert it to go on.';
/** How long a signature waits for a pulled card to come back before it gives up (TIMEOUT). */
const REINSERT_WAIT_MS = 5 * 60_000;

export interface PivPrompts {
  /** The card's PIV PIN, asked only when the card needs it; `retriesLeft` after a wrong one. */
  pin(retriesLeft?: number): Promise<string>;
  /** Says "Tap your YubiKey" when a signature waits for a touch. */
  touch(message: string): void;
  /**
   * Says that the card was pulled during a signature: with it, the signature waits (up to 5 minutes) for
   * the card to come back and runs again; without it, the signature fails with CARD_REMOVED.
   */
  reinsert?(message: string): void;
}

export interface PivSignerOptions {
  session: PivSession;
  slot: PivSlot;
  /** The slot key's public key (GET METADATA or GENERATE): the session certificate's key. */
  publicKey: KeyObject | string;
  /** The key's PIN and touch policies, as GET METADATA reads them. */
  policy: { pin: PinPolicy; touch: TouchPolicy };
  prompts: PivPrompts;
}

/**
 * A cached touch (YubiKey: 15 s) may not be needed: the prompt waits this long for the card's answer
 * first. A touch-always key prompts as soon as the PIN (if any) is in.
 */
const CACHED_TOUCH_PROMPT_DELAY_MS = 200;
/** Before a PIN that may be asked first, so the two prompts come in the order the card needs them. */
const TOUCH_PROMPT_AFTER_PIN_CHANCE_MS = 100;

function p256Key(key: KeyObject | string): KeyObject {
  const publicKey = typeof key === 'string' ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PivError('INVALID_ARGUMENT', 'A PIV session key is ECDSA P-256.');
  }
  return publicKey;
}

/** What a card signer shows: the public key, and that the key cannot leave the card. */
function publicFields(publicKey: KeyObject): Omit<SessionSigner, 'sign'> {
  return {
    source: 'piv',
    algorithm: 'ecdsa-p256',
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    sshPublicKey: formatSshPublicKey(sshPublicKeyParts(publicKey)),
    exportable: false,
  };
}

export function openPivSigner(options: PivSignerOptions): SessionSigner {
  const { session, slot, policy, prompts } = options;
  const publicKey = p256Key(options.publicKey);
  const touches = policy.touch === 'always' || policy.touch === 'cached';
  const pinPolicy = effectivePinPolicy(slot, policy.pin);

  async function signOnce(digest: Uint8Array, retriesLeft: number | undefined): Promise<Buffer> {
    let timer: NodeJS.Timeout | undefined;
    let said = false;
    const sayTap = () => {
      timer = undefined;
      if (said) return;
      said = true;
      prompts.touch(TAP_YOUR_YUBIKEY);
    };
    const schedule = (delayMs: number) => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (!touches) return;
      if (delayMs === 0) sayTap();
      else timer = setTimeout(sayTap, delayMs);
    };
    // A touch-always key waits for the touch at once, after the PIN when the card asks for one first.
    schedule(
      policy.touch === 'cached'
        ? CACHED_TOUCH_PROMPT_DELAY_MS
        : pinPolicy === 'never'
          ? 0
          : TOUCH_PROMPT_AFTER_PIN_CHANCE_MS,
    );
    try {
      const signature = await session.sign(slot, digest, {
        pinPolicy: policy.pin,
        pin: async () => {
          if (timer) clearTimeout(timer);
          timer = undefined;
          const pin = await prompts.pin(retriesLeft);
          schedule(policy.touch === 'always' ? 0 : CACHED_TOUCH_PROMPT_DELAY_MS);
          return pin;
        },
      });
      return Buffer.from(signature);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  return Object.freeze({
    ...publicFields(publicKey),
    async sign(data: Buffer): Promise<Buffer> {
      const digest = createHash('sha256').update(data).digest();
      let retriesLeft: number | undefined;
      for (;;) {
        try {
          return await signOnce(digest, retriesLeft);
        } catch (error) {
          if (!(error instanceof PivError)) throw error;
          if (error.reason === 'CARD_REMOVED' && prompts.reinsert) {
            // Pulled mid-sign: once it is back (the same card: the session checks its serial), again.
            prompts.reinsert(REINSERT_YOUR_CARD);
            await session.waitForCard({ timeoutMs: REINSERT_WAIT_MS });
            continue;
          }
          // A wrong PIN: asked again, with the attempts left, until it is right or the PIN blocks.
          if (error.reason !== 'PIN_INCORRECT') throw error;
          retriesLeft = error.retriesLeft;
        }
      }
    },
  });
}

export interface CardSignerOptions extends Omit<PivSignerOptions, 'session'> {
  /** The card's serial (GET SERIAL) the key was made on: another card in the reader is refused. */
  serial?: number;
  /** Opens the PIV session (default: the first reader with a card, over PCSCLITE_CSOCK_NAME's pcscd). */
  open: () => Promise<PivSession>;
  /**
   * The session is someone else's (CardSessions: one per card, kept between signers): `close` leaves it
   * open, every signature asks `open` for it, and a failed signature or open is told `failed` instead.
   */
  shared?: { failed(session: PivSession): Promise<void> };
}

/**
 * A signer for a slot key whose session is opened at the first signature, not before (a command that makes
 * no signed call never touches the card); `close` ends the session, if one was opened (not a shared one).
 */
export function openCardSigner(options: CardSignerOptions): {
  signer: SessionSigner;
  close(): Promise<void>;
} {
  const { shared } = options;
  let opening: Promise<{ session: PivSession; signer: SessionSigner }> | undefined;
  const open = async () => {
    const session = await options.open();
    try {
      if (options.serial !== undefined && session.serial !== options.serial) {
        throw new PivError(
          'CARD_CHANGED',
          `This session's key is on the PIV card with serial ${options.serial}, not on the card in ` +
            `"${session.readerName}" (serial ${session.serial ?? 'unknown'}). Insert that card, or log in again.`,
        );
      }
      return { session, signer: openPivSigner({ ...options, session }) };
    } catch (error) {
      await (shared ? shared.failed(session) : session.close());
      throw error;
    }
  };
  const signer: SessionSigner = Object.freeze({
    ...publicFields(p256Key(options.publicKey)),
    async sign(data: Buffer): Promise<Buffer> {
      if (shared) {
        // The shared session of the moment (a pulled card or an idle time may have replaced it).
        const opened = await open();
        try {
          return await opened.signer.sign(data);
        } catch (error) {
          await shared.failed(opened.session);
          throw error;
        }
      }
      opening ??= open();
      // A failed open (no card yet) is tried again at the next signature.
      opening.catch(() => (opening = undefined));
      return (await opening).signer.sign(data);
    },
  });
  return {
    signer,
    async close() {
      const opened = await opening?.catch(() => undefined);
      await opened?.session.close();
    },
  };
}
