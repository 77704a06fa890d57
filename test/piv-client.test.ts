// Keyport's PIV client (client/hardware/piv) against the lab's virtual PIV card on a real pcscd: the card
// is a separate implementation (lab/piv), so each side checks the other. One card per file:
// libpcsclite reads PCSCLITE_CSOCK_NAME once per process.
import { createHash, createPublicKey, verify, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../auth/ca/x509-library';
import { PivError } from '../client/hardware/piv/errors';
import type { PivSession } from '../client/hardware/piv/session';
import { openPivSession } from '../client/hardware/piv/session';
import { managementKey } from '../client/hardware/piv/management-key';
import { FIXTURE_CERT_DER } from '../client/hardware/piv/test-bytes.test-support';
import { YUBICO_OID } from '../lab/piv/attestation';
import { startLabPivCard } from '../lab/piv/lab';
import type { LabPivCard } from '../lab/piv/lab';

const PIN = '123456';
const PUK = '12345678';
const message = Buffer.from('a Keyport session key proves possession');
const digest = createHash('sha256').update(message).digest();

async function rejection(promise: Promise<unknown>): Promise<PivError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PivError);
  return error as PivError;
}

/** The PIN and touch policy bytes of a Yubico attestation certificate (extension 1.3.6.1.4.1.41482.3.8). */
function attestedPolicy(certificate: X509Certificate): number[] {
  const extension = new x509.X509Certificate(certificate.raw).getExtension(YUBICO_OID.policy);
  return [...new Uint8Array(extension!.value)];
}

describe('the PIV client on the lab card through pcscd', () => {
  let card: LabPivCard;
  let session: PivSession;

  /** APDUs the card itself counted while `work` ran. */
  async function cardApdus<T>(
    work: () => Promise<T>,
  ): Promise<{ result: T; apdus: number; byIns: Record<string, number> }> {
    await card.stats({ reset: true });
    const result = await work();
    const stats = await card.stats({ reset: true });
    return { result, apdus: stats.apdus, byIns: stats.byIns };
  }

  beforeAll(async () => {
    card = await startLabPivCard({ touch: 'manual', touchTimeoutMs: 5_000 });
    session = await openPivSession({ socketPath: card.socketPath });
  });

  afterAll(async () => {
    await session?.close();
    await card?.stop();
  });

  it('picks the reader with the card, SELECTs once and reads the firmware version and serial', () => {
    expect(session.readerName).toBe(card.readerName);
    expect(session.serial).toBe(card.serial);
    expect(session.version).toEqual({ major: 5, minor: 7, patch: 1 });
    expect(session.apduCount).toBe(3); // SELECT, GET VERSION, GET SERIAL
  });

  it('tells the PIN attempts left after a wrong PIN, and a right PIN restores them', async () => {
    expect(await session.pinStatus()).toEqual({ state: 'not-verified', retriesLeft: 3 });
    const wrong = await rejection(session.verifyPin('654321'));
    expect(wrong).toMatchObject({ reason: 'PIN_INCORRECT', code: 'MFA_FAILED', retriesLeft: 2, sw: 0x63c2 });
    expect(wrong.message).toContain('2 attempts left');
    expect(await session.pinStatus()).toEqual({ state: 'not-verified', retriesLeft: 2 });
    await session.verifyPin(PIN);
    expect(await session.pinStatus()).toEqual({ state: 'verified' });
  });

  it('generates P-256 keys with the PIN and touch policies asked for, as metadata and attestation show', async () => {
    const cases = [
      { slot: 0x9a, pin: 'once', touch: 'never', bytes: [2, 1] },
      { slot: 0x9c, pin: 'always', touch: 'never', bytes: [3, 1] },
      { slot: 0x9d, pin: 'never', touch: 'always', bytes: [1, 2] },
      { slot: 0x9e, pin: 'never', touch: 'never', bytes: [1, 1] },
    ] as const;
    for (const { slot, pin, touch, bytes } of cases) {
      const key = await session.generate(slot, { pin, touch });
      expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      const metadata = await session.metadata(slot);
      expect(metadata).toMatchObject({ algorithm: 0x11, policy: { pin, touch }, origin: 'generated' });
      expect(metadata.publicKey?.equals(key)).toBe(true);
      const attestation = await session.attest(slot);
      expect(attestedPolicy(attestation)).toEqual(bytes);
      expect(attestation.publicKey.equals(key)).toBe(true);
    }
  });

  it('signs with one APDU for PIN policy never, VERIFY + sign for always, and VERIFY only the first time for once', async () => {
    const never = await session.generate(0x9e, { pin: 'never', touch: 'never' });
    const once = await session.generate(0x9a, { pin: 'once', touch: 'never' });
    const always = await session.generate(0x9c, { pin: 'always', touch: 'never' });

    const n = await cardApdus(() => session.sign(0x9e, digest));
    expect(n.byIns).toEqual({ '87': 1 });
    expect(verify('sha256', message, never, n.result)).toBe(true);

    // A fresh connection has no PIN verified: the session after a card reset (another application).
    await card.remove();
    await card.insert();
    await session.waitForCard();
    const first = await cardApdus(() => session.sign(0x9a, digest, { pin: PIN }));
    expect(first.byIns).toEqual({ '20': 1, '87': 1, a4: 1, f8: 1 }); // reconnect: SELECT + serial check
    expect(verify('sha256', message, once, first.result)).toBe(true);
    const second = await cardApdus(() => session.sign(0x9a, digest, { pin: PIN }));
    expect(second.byIns).toEqual({ '87': 1 });
    expect(verify('sha256', message, once, second.result)).toBe(true);

    for (let i = 0; i < 2; i++) {
      const each = await cardApdus(() => session.sign(0x9c, digest, { pin: async () => PIN }));
      expect(each.byIns).toEqual({ '20': 1, '87': 1 });
      expect(verify('sha256', message, always, each.result)).toBe(true);
    }
    const needsPin = await rejection(session.sign(0x9c, digest));
    expect(needsPin).toMatchObject({ reason: 'PIN_REQUIRED', code: 'PRECONDITION_FAILED' });
  });

  it('waits for the touch of a touch-always key, once per signature', async () => {
    const key = await session.generate(0x9d, { pin: 'never', touch: 'always' });
    let touches = 0;
    const count = () => touches++;
    card.events.on('touch-needed', count);
    try {
      for (let i = 0; i < 2; i++) {
        const signature = await card.touchingWhile(() => session.sign(0x9d, digest));
        expect(verify('sha256', message, key, signature)).toBe(true);
      }
    } finally {
      card.events.off('touch-needed', count);
    }
    expect(touches).toBe(2);
  });

  it("attests a slot's key under the f9 certificate, which chains to the lab root", async () => {
    const key = await session.generate(0x9a, { pin: 'once', touch: 'never' });
    const attestation = await session.attest(0x9a);
    const f9 = await session.readAttestationCertificate();
    const root = new X509Certificate(card.attestationRootPem);
    expect(f9.raw).toEqual(new X509Certificate(card.attestationCertificatePem).raw);
    expect(attestation.checkIssued(f9)).toBe(true);
    expect(attestation.verify(f9.publicKey)).toBe(true);
    expect(f9.checkIssued(root)).toBe(true);
    expect(f9.verify(root.publicKey)).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(attestation.publicKey.equals(key)).toBe(true);
  });

  it('writes a certificate to a slot and reads it back; an empty slot has none', async () => {
    await session.writeCertificate(0x9a, FIXTURE_CERT_DER);
    const read = await session.readCertificate(0x9a);
    expect(new Uint8Array(read!.raw)).toEqual(FIXTURE_CERT_DER);
    expect(await session.readCertificate(0x9e)).toBeUndefined();
  });

  it('refuses a management key the card does not hold, with the fix in the message', async () => {
    // A second session on the same card (shared), with another key: it must not generate anything.
    const other = await openPivSession({
      reader: card.readerName,
      managementKey: managementKey('aes192', new Uint8Array(24).fill(7)),
    });
    try {
      const refused = await rejection(other.generate(0x9e, { pin: 'never', touch: 'never' }));
      expect(refused).toMatchObject({ reason: 'MANAGEMENT_KEY_REJECTED', code: 'ACCESS_DENIED', sw: 0x6982 });
      expect(refused.message).toContain('ykman piv reset');
    } finally {
      await other.close();
    }
    // Its close reset the card: this session reconnects by itself (and has to verify the PIN again).
    const key = (await session.metadata(0x9e)).publicKey!;
    expect(verify('sha256', message, key, await session.sign(0x9e, digest))).toBe(true);
  });

  it('runs a VERIFY again after another session reset the card (pcscd sent nothing)', async () => {
    await session.pinStatus();
    const other = await openPivSession({ reader: card.readerName });
    await other.pinStatus();
    await other.close(); // resets the card: this session's next command hears SCARD_W_RESET_CARD
    await session.verifyPin('123456');
    expect((await session.pinStatus()).state).toBe('verified');
  });

  it('does not ask the PIN of a PIN-never key whose touch was refused', async () => {
    const key = await session.generate(0x9d, { pin: 'never', touch: 'always' });
    let asked = 0;
    const pin = () => {
      asked++;
      return Promise.resolve('123456');
    };
    await card.setTouchMode('denied');
    try {
      const refused = await rejection(session.sign(0x9d, digest, { pinPolicy: 'never', pin }));
      expect(refused).toMatchObject({ sw: 0x6982 });
    } finally {
      await card.setTouchMode('manual');
    }
    expect(asked).toBe(0);
    const signature = await card.touchingWhile(() => session.sign(0x9d, digest, { pinPolicy: 'never', pin }));
    expect(verify('sha256', message, key, signature)).toBe(true);
    expect(asked).toBe(0);
  });

  it('turns a card pulled during a signature into CARD_REMOVED, and goes on once it is back', async () => {
    const key = await session.generate(0x9d, { pin: 'never', touch: 'always' });
    const events: string[] = [];
    const unsubscribe = session.onCardEvent((event) => events.push(event));
    const signing = session.sign(0x9d, digest);
    await card.nextTouchRequest();
    await card.remove();
    const removed = await rejection(signing);
    expect(removed).toMatchObject({ reason: 'CARD_REMOVED', code: 'UNAVAILABLE' });
    expect(removed.message).toContain('Reinsert it');
    expect(session.cardPresent).toBe(false);
    expect((await rejection(session.sign(0x9d, digest))).reason).toBe('CARD_REMOVED');

    const back = session.waitForCard({ timeoutMs: 20_000 });
    await card.insert();
    await back;
    const signature = await card.touchingWhile(() => session.sign(0x9d, digest));
    expect(verify('sha256', message, key, signature)).toBe(true);
    unsubscribe();
    expect(events).toEqual(['removed', 'inserted']);
  });

  it('stops waiting for the card when the caller gives up or the session closes', async () => {
    const other = await openPivSession({ reader: card.readerName });
    await card.remove();
    await expect.poll(() => session.cardPresent || other.cardPresent).toBe(false); // pcscd's 400 ms poll
    try {
      const controller = new AbortController();
      const waiting = session.waitForCard({ signal: controller.signal });
      controller.abort();
      expect(await rejection(waiting)).toMatchObject({ reason: 'CANCELLED', code: 'CANCELLED' });
      const closing = other.waitForCard();
      await other.close();
      expect(await rejection(closing)).toMatchObject({ reason: 'SESSION_CLOSED' });
      expect((await rejection(other.pinStatus())).reason).toBe('SESSION_CLOSED');
    } finally {
      await other.close();
      await card.insert();
      await session.waitForCard();
    }
  });

  it('survives a pcscd restart between operations and during one', async () => {
    const key = createPublicKey(
      (await session.metadata(0x9e)).publicKey!.export({ type: 'spki', format: 'pem' }),
    );
    await card.restartPcscd();
    expect(verify('sha256', message, key, await session.sign(0x9e, digest))).toBe(true);

    const touchKey = (await session.metadata(0x9d)).publicKey!;
    const signing = session.sign(0x9d, digest);
    await card.nextTouchRequest();
    await card.restartPcscd(); // the touch in wait is lost with the connection; the signature runs again
    await card.nextTouchRequest();
    await card.touch();
    expect(verify('sha256', message, touchKey, await signing)).toBe(true);
  });

  it('blocks the PIN after three wrong ones, says how to unblock it, and the PUK unblocks it', async () => {
    for (const left of [2, 1]) {
      expect(await rejection(session.verifyPin('000000'))).toMatchObject({
        reason: 'PIN_INCORRECT',
        retriesLeft: left,
      });
    }
    const blocked = await rejection(session.verifyPin('000000'));
    expect(blocked).toMatchObject({ reason: 'PIN_BLOCKED', code: 'LOCKED', retriesLeft: 0 });
    expect(blocked.message).toContain('PUK');
    expect(await session.pinStatus()).toEqual({ state: 'blocked', retriesLeft: 0 });
    expect((await rejection(session.verifyPin(PIN))).reason).toBe('PIN_BLOCKED');

    const wrongPuk = await rejection(session.unblockPin('87654321', '111111'));
    expect(wrongPuk).toMatchObject({ reason: 'PUK_INCORRECT', retriesLeft: 2 });
    await session.unblockPin(PUK, '111111');
    await session.verifyPin('111111');
    await session.changePin('111111', PIN);
    await session.verifyPin(PIN);
    expect(await session.pinStatus()).toEqual({ state: 'verified' });
  });
});
