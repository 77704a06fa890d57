import { describe, expect, it } from 'vitest';
import {
  SCARD,
  SCARD_STATE,
  cardEventCount,
  cardPresentIn,
  classifyPcscCode,
  pcscCodeOf,
  pcscError,
  readerCandidates,
} from './pcsc';
import { expectReason } from './test-bytes.test-support';

describe('PC/SC return codes', () => {
  it("reads the code at the end of pcsclite's messages", () => {
    expect(pcscCodeOf(new Error('SCardTransmit error: Card was removed.(0x80100069)'))).toBe(
      SCARD.W_REMOVED_CARD,
    );
    expect(pcscCodeOf(new Error('SCardEstablishContext error: Service not available.(0x8010001d)'))).toBe(
      SCARD.E_NO_SERVICE,
    );
    expect(pcscCodeOf(new Error('Card Reader not connected'))).toBeUndefined();
    expect(pcscCodeOf(undefined)).toBeUndefined();
  });

  it('tells a pulled card, a reset card and a pcscd that went away apart', () => {
    expect(classifyPcscCode(SCARD.W_REMOVED_CARD)).toBe('card-removed');
    expect(classifyPcscCode(SCARD.W_RESET_CARD)).toBe('card-reset');
    expect(classifyPcscCode(SCARD.F_COMM_ERROR)).toBe('service-lost');
    expect(classifyPcscCode(SCARD.E_NO_SERVICE)).toBe('service-lost');
    expect(classifyPcscCode(SCARD.E_INVALID_HANDLE)).toBe('service-lost');
    expect(classifyPcscCode(SCARD.E_NO_SMARTCARD)).toBe('no-card');
    expect(classifyPcscCode(SCARD.E_SHARING_VIOLATION)).toBe('in-use');
    expect(classifyPcscCode(SCARD.E_TIMEOUT)).toBe('other');
    expect(classifyPcscCode(undefined)).toBe('other');
  });

  it('words each as a typed error that keeps the code', () => {
    const removed = pcscError(new Error('x (0x80100069)'), 'sign', 'Reader 0');
    expect(removed).toMatchObject({
      reason: 'CARD_REMOVED',
      code: 'UNAVAILABLE',
      pcscCode: SCARD.W_REMOVED_CARD,
    });
    expect(removed.message).toContain('Reinsert it');
    expect(pcscError(new Error('x (0x8010001d)'), 'sign').reason).toBe('PCSC_UNAVAILABLE');
    expect(pcscError(new Error('x (0x8010000c)'), 'sign').reason).toBe('NO_CARD');
    expect(pcscError(new Error('x (0x8010000b)'), 'sign').reason).toBe('CARD_IN_USE');
    expect(pcscError(new Error('odd'), 'sign')).toMatchObject({ reason: 'PCSC_ERROR', pcscCode: undefined });
  });

  it('counts a card as present only when it is there and not mute', () => {
    expect(cardPresentIn(SCARD_STATE.PRESENT | SCARD_STATE.INUSE)).toBe(true);
    expect(cardPresentIn(SCARD_STATE.EMPTY)).toBe(false);
    expect(cardPresentIn(SCARD_STATE.PRESENT | SCARD_STATE.MUTE)).toBe(false);
  });

  it("reads pcsc-lite's card event count from the upper 16 bits", () => {
    expect(cardEventCount(0x30022)).toBe(3);
    expect(cardEventCount(0x22)).toBe(0);
  });
});

describe('reader choice', () => {
  const readers = [
    { name: 'Virtual PCD 00 00', cardPresent: false },
    { name: 'Yubico YubiKey OTP+FIDO+CCID 01 00', cardPresent: true },
    { name: 'Virtual PCD 00 01', cardPresent: undefined },
  ];

  it('tries readers with a card first, then those not known yet, never the empty ones', () => {
    expect(readerCandidates(readers)).toEqual(['Yubico YubiKey OTP+FIDO+CCID 01 00', 'Virtual PCD 00 01']);
  });

  it('takes a reader by its whole name or a unique part of it', () => {
    expect(readerCandidates(readers, 'Virtual PCD 00 00')).toEqual(['Virtual PCD 00 00']);
    expect(readerCandidates(readers, 'yubikey')).toEqual(['Yubico YubiKey OTP+FIDO+CCID 01 00']);
    expect(expectReason(() => readerCandidates(readers, 'Virtual'), 'NO_READER').message).toContain(
      'several',
    );
    expect(expectReason(() => readerCandidates(readers, 'Gemalto'), 'NO_READER').message).toContain(
      'Readers:',
    );
  });

  it('says there is no reader, or no card', () => {
    expectReason(() => readerCandidates([]), 'NO_READER');
    expectReason(() => readerCandidates([{ name: 'R', cardPresent: false }]), 'NO_CARD');
  });
});
