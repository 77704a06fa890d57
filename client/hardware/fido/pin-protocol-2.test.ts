import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeCtap, encodeCtap } from './cbor';
import { parseCoseKey } from './ctap2';
import {
  authenticate,
  AuthenticatorKeyAgreement,
  decrypt,
  encapsulate,
  encrypt,
  pinHash,
  pinHashEnc,
  PinProtocolError,
  setPinParams,
  unpadPin,
  verify,
} from './pin-protocol-2';

function handshake() {
  const authenticator = new AuthenticatorKeyAgreement();
  // The key travels as CBOR, as it would over CTAPHID.
  const authenticatorKey = parseCoseKey(decodeCtap(encodeCtap(authenticator.publicKey())));
  const platform = encapsulate(authenticatorKey);
  const platformKey = parseCoseKey(decodeCtap(encodeCtap(platform.keyAgreement)));
  return { authenticator, platform, authenticatorSecret: authenticator.decapsulate(platformKey) };
}

describe('PIN/UV auth protocol 2', () => {
  it('derives the same 64-byte shared secret on both sides', () => {
    const { platform, authenticatorSecret } = handshake();
    expect(platform.sharedSecret).toHaveLength(64);
    expect(authenticatorSecret).toEqual(platform.sharedSecret);
    expect(platform.keyAgreement.get(3)).toBe(-25);
  });

  it('round-trips setPIN: the authenticator verifies pinUvAuthParam and recovers the PIN', () => {
    const { platform, authenticatorSecret } = handshake();
    const { newPinEnc, pinUvAuthParam } = setPinParams(platform.sharedSecret, '1234ü');
    expect(newPinEnc).toHaveLength(16 + 64);
    expect(pinUvAuthParam).toHaveLength(32);
    expect(verify(authenticatorSecret, newPinEnc, pinUvAuthParam)).toBe(true);
    expect(unpadPin(decrypt(authenticatorSecret, newPinEnc))).toBe('1234ü');
  });

  it('round-trips pinHashEnc and the encrypted pinUvAuthToken', () => {
    const { platform, authenticatorSecret } = handshake();
    const hashEnc = pinHashEnc(platform.sharedSecret, '123456');
    expect(decrypt(authenticatorSecret, hashEnc)).toEqual(
      new Uint8Array(createHash('sha256').update('123456').digest().subarray(0, 16)),
    );
    const token = new Uint8Array(32).fill(9);
    expect(decrypt(platform.sharedSecret, encrypt(authenticatorSecret, token))).toEqual(token);
  });

  it('uses a random IV, so equal plaintexts encrypt differently', () => {
    const { platform } = handshake();
    const block = new Uint8Array(16);
    expect(encrypt(platform.sharedSecret, block)).not.toEqual(encrypt(platform.sharedSecret, block));
  });

  it('authenticates with a pinUvAuthToken and rejects a tampered message', () => {
    const token = new Uint8Array(32).fill(4);
    const clientDataHash = new Uint8Array(32).fill(1);
    const param = authenticate(token, clientDataHash);
    expect(param).toHaveLength(32);
    expect(verify(token, clientDataHash, param)).toBe(true);
    expect(verify(token, new Uint8Array(32), param)).toBe(false);
    expect(verify(token, clientDataHash, param.subarray(0, 16))).toBe(false);
  });

  it('rejects an off-curve key, bad ciphertext and bad PINs with typed errors', () => {
    const { platform } = handshake();
    const offCurve = {
      kty: 2,
      crv: 1,
      x: new Uint8Array(32).fill(1),
      y: new Uint8Array(32).fill(1),
      map: new Map(),
    };
    expect(() => encapsulate(offCurve)).toThrow(PinProtocolError);
    expect(() => decrypt(platform.sharedSecret, new Uint8Array(15))).toThrow(PinProtocolError);
    expect(() => decrypt(platform.sharedSecret, new Uint8Array(33))).toThrow(PinProtocolError);
    expect(() => setPinParams(platform.sharedSecret, '123')).toThrow(PinProtocolError);
    expect(() => setPinParams(platform.sharedSecret, 'x'.repeat(64))).toThrow(PinProtocolError);
    expect(pinHash('1234')).toHaveLength(16);
  });
});
