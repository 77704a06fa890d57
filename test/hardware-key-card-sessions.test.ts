// Long-lived card sessions (client/hardware/piv/card-sessions.ts; issue 10: "the PIN is verified once per
// policy"): Keyport Connect signs each call with a new signer (connectAsProfile), all of them on one PC/SC
// session per card. The lab PIV card on a real pcscd: a PIN-"once" key asks its PIN once across many
// signers; an "always" key at every signature; a card pulled and reinserted, an idle time on the lab clock,
// a failed signature and closeAll each end the session, so the PIN is asked again; once disposed (app quit),
// no session opens.
import { verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProfileCardSigner } from '../client/ceremonies/hardware-key';
import { CARD_SESSION_IDLE_MS, CardSessions } from '../client/hardware/piv/card-sessions';
import { openPivSession } from '../client/hardware/piv/session';
import type { HardwareKeyRecord } from '../client/profiles';
import { KeyportError } from '../proto/errors';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';

const PIN = '123456';

let card: LabPivCard;
let clock: LabClock;
let cards: CardSessions;
let onceKey: { record: HardwareKeyRecord; publicKey: KeyObject };
let alwaysKey: { record: HardwareKeyRecord; publicKey: KeyObject };
/** PIN prompts since the last reset; `cancelNext` makes the next one be given up. */
let pinsAsked = 0;
let cancelNext = false;

const prompts = {
  pin: async () => {
    pinsAsked++;
    if (cancelNext) {
      cancelNext = false;
      throw new KeyportError('CANCELLED', 'The PIN prompt was closed.');
    }
    return PIN;
  },
  touch: () => {},
};

/** One call of the app: a new signer (as connectAsProfile makes one per call) that signs once and closes. */
async function call(key: { record: HardwareKeyRecord; publicKey: KeyObject }): Promise<void> {
  const card = openProfileCardSigner(key.record, key.publicKey, prompts, cards);
  try {
    const data = Buffer.from(`call ${Math.random()}`);
    const signature = await card.signer.sign(data);
    expect(verify('sha256', data, key.publicKey, signature)).toBe(true);
  } finally {
    await card.close();
  }
}

async function pinsFor(calls: number, key = onceKey): Promise<number> {
  pinsAsked = 0;
  for (let i = 0; i < calls; i++) await call(key);
  return pinsAsked;
}

beforeAll(async () => {
  card = await startLabPivCard({ touch: 'auto' });
  // libpcsclite reads it once per process: this file talks to this card's pcscd.
  process.env.PCSCLITE_CSOCK_NAME = card.socketPath;
  clock = createLabClock();
  const setup = await openPivSession();
  try {
    const record = (slot: string, pinPolicy: 'once' | 'always'): HardwareKeyRecord => ({
      slot,
      ...(setup.serial !== undefined ? { serial: setup.serial } : {}),
      policy: 'hardware_key_pin',
      pinPolicy,
      touchPolicy: 'never',
    });
    const once = await setup.generate(0x9a, { pin: 'once', touch: 'never' });
    const always = await setup.generate(0x9e, { pin: 'always', touch: 'never' });
    onceKey = { record: record('9a', 'once'), publicKey: once };
    alwaysKey = { record: record('9e', 'always'), publicKey: always };
  } finally {
    await setup.close();
  }
  cards = new CardSessions({ clock: clock.now });
}, 120_000);

afterAll(async () => {
  await cards?.dispose();
  await card?.stop();
  clock?.dispose();
  delete process.env.PCSCLITE_CSOCK_NAME;
});

describe('the app keeps one PC/SC session per card between calls', () => {
  it('a PIN-once key asks its PIN once across several calls, on one session', async () => {
    expect(await pinsFor(4)).toBe(1);
    expect(cards.size).toBe(1);
    expect(await pinsFor(2)).toBe(0);
  });

  it('a PIN-always key asks its PIN at every signature, on the same session', async () => {
    expect(await pinsFor(3, alwaysKey)).toBe(3);
    expect(cards.size).toBe(1);
  });

  it('a card pulled and reinserted ends the session: the PIN is asked again, once', async () => {
    expect(await pinsFor(1)).toBe(0);
    await card.remove();
    await expect.poll(() => cards.size, { timeout: 30_000 }).toBe(0);
    await card.insert();
    expect(await pinsFor(3)).toBe(1);
  });

  it('an idle session (on the lab clock) is closed: the PIN is asked again', async () => {
    expect(await pinsFor(1)).toBe(0);
    clock.advance(CARD_SESSION_IDLE_MS - 1_000);
    expect(await pinsFor(1)).toBe(0);
    clock.advance(CARD_SESSION_IDLE_MS);
    expect(await pinsFor(2)).toBe(1);
  });

  it('closeAll (sign-out) ends the session, and a failed signature resets it', async () => {
    expect(await pinsFor(1)).toBe(0);
    await cards.closeAll();
    expect(cards.size).toBe(0);
    // A new session: the PIN once, then not again.
    expect(await pinsFor(2)).toBe(1);
    // A signature that fails (its PIN prompt closed) ends the session: the once-key asks again.
    cancelNext = true;
    await expect(call(alwaysKey)).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(cards.size).toBe(0);
    expect(await pinsFor(2)).toBe(1);
  });

  it('once disposed (app quit), no session opens: a typed error', async () => {
    const quitting = new CardSessions({ clock: clock.now });
    await quitting.session(onceKey.record.serial);
    expect(quitting.size).toBe(1);
    await quitting.dispose();
    expect(quitting.size).toBe(0);
    await expect(quitting.session(onceKey.record.serial)).rejects.toMatchObject({
      reason: 'SESSION_CLOSED',
    });
  });
});
