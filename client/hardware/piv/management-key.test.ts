// The management key's mutual authentication on known answers: the block cipher against vectors made
// with the openssl command line (3DES) and NIST SP 800-38A F.1.3 (AES-192), and the three steps' bytes.
import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import {
  DEFAULT_MANAGEMENT_KEY_BYTES,
  answerWitness,
  checkCardProof,
  decryptBlock,
  encryptBlock,
  managementKey,
  managementKeyRejected,
  parseWitness,
  requestWitnessCommand,
} from './management-key';
import { expectReason, h, toHex } from './test-bytes.test-support';
import { encodeTlv } from './tlv';

const tdes = managementKey('tdes', DEFAULT_MANAGEMENT_KEY_BYTES);
const aes192 = managementKey('aes192', DEFAULT_MANAGEMENT_KEY_BYTES);

describe('management key cipher', () => {
  it('encrypts one 3DES block under the default key', () => {
    // openssl enc -des-ede3 -K 010203040506070801020304050607080102030405060708 -nopad
    expect(toHex(encryptBlock(tdes, h('0102030405060708')))).toBe('77A7D6BCF57962B9');
    expect(toHex(encryptBlock(tdes, h('1122334455667788')))).toBe('6C5E94DCADD39F1D');
    expect(toHex(decryptBlock(tdes, h('77A7D6BCF57962B9')))).toBe('0102030405060708');
  });

  it('encrypts one AES-192 block (SP 800-38A F.1.3) and under the default key', () => {
    const nist = managementKey('aes192', h('8E73B0F7DA0E6452C810F32B809079E562F8EAD2522C6B7B'));
    expect(toHex(encryptBlock(nist, h('6BC1BEE22E409F96E93D7E117393172A')))).toBe(
      'BD334F1D6E45F25FF712A214571FA5CC',
    );
    expect(toHex(encryptBlock(aes192, h('00112233445566778899AABBCCDDEEFF')))).toBe(
      'C53C74BB02939C2FD3D923078F3E757D',
    );
  });

  it('refuses keys of the wrong length', () => {
    expectReason(() => managementKey('tdes', new Uint8Array(16)), 'INVALID_ARGUMENT');
    expectReason(() => managementKey('aes256', new Uint8Array(24)), 'INVALID_ARGUMENT');
  });
});

describe('mutual authentication', () => {
  it('asks for the witness: 00 87 03 9B 04 7C 02 80 00 (AES-192: P1 0A)', () => {
    expect(toHex(encodeCommandApdu(requestWitnessCommand('tdes')))).toBe('0087039B047C02800000');
    expect(toHex(encodeCommandApdu(requestWitnessCommand('aes192')))).toBe('00870A9B047C02800000');
  });

  it('answers with the decrypted witness and its own challenge, and expects E(K, challenge)', () => {
    const witness = parseWitness('tdes', h('7C0A 8008 77A7D6BCF57962B9'));
    const { command, expected } = answerWitness(tdes, witness, h('1122334455667788'));
    expect(toHex(encodeCommandApdu(command))).toBe(
      '0087039B167C1480080102030405060708' + '81081122334455667788' + '00',
    );
    expect(toHex(expected)).toBe('6C5E94DCADD39F1D');
    checkCardProof(expected, h('7C0A 8208 6C5E94DCADD39F1D'));
  });

  it('does the same with 16-byte AES blocks', () => {
    const witness = parseWitness('aes192', h('7C12 8010 C53C74BB02939C2FD3D923078F3E757D'));
    const { command, expected } = answerWitness(aes192, witness, h('00112233445566778899AABBCCDDEEFF'));
    expect(toHex(command.data!)).toBe(
      '7C2480100011223344556677' + '8899AABBCCDDEEFF' + '811000112233445566778899AABBCCDDEEFF',
    );
    expect(toHex(expected)).toBe('C53C74BB02939C2FD3D923078F3E757D');
  });

  it('uses a fresh random challenge by default', () => {
    const witness = h('77A7D6BCF57962B9');
    expect(answerWitness(tdes, witness).expected).not.toEqual(answerWitness(tdes, witness).expected);
  });

  it('refuses a card whose proof is wrong, even after 9000', () => {
    const error = expectReason(
      () => checkCardProof(h('6C5E94DCADD39F1D'), h('7C0A 8208 6C5E94DCADD39F1E')),
      'CARD_AUTHENTICATION_FAILED',
    );
    expect(error.code).toBe('ACCESS_DENIED');
    expectReason(() => checkCardProof(h('6C5E94DCADD39F1D'), h('7C00')), 'MALFORMED_RESPONSE');
    expectReason(
      () => checkCardProof(h('6C5E94DCADD39F1D'), h('7C06 8204 6C5E94DC')),
      'CARD_AUTHENTICATION_FAILED',
    );
  });

  it('refuses a witness of the wrong size or shape', () => {
    expectReason(() => parseWitness('aes192', h('7C0A 8008 77A7D6BCF57962B9')), 'MALFORMED_RESPONSE');
    expectReason(
      () => parseWitness('tdes', encodeTlv(0x7c, encodeTlv(0x81, new Uint8Array(8)))),
      'MALFORMED_RESPONSE',
    );
  });

  it("words a refused management key as the seed's troubleshooting entry, with the fix", () => {
    const error = managementKeyRejected(0x6982);
    expect(error.message).toContain(
      'authenticating with management key: auth challenge: smart card error 6982: security status not satisfied',
    );
    expect(error.message).toContain('ykman piv reset');
    expect(error.code).toBe('ACCESS_DENIED');
  });
});
