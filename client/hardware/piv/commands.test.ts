// Known answers: each builder's bytes as SP 800-73-4 Part 2 and Yubico's PIV APDU pages write them, and
// each parser on the answers a YubiKey sends.
import { createHash, createVerify, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeCommandApdu } from './apdu';
import type { CommandApdu } from './apdu';
import {
  attestCommand,
  changeReferenceDataCommand,
  effectivePinPolicy,
  generateCommand,
  getDataCommand,
  getMetadataCommand,
  getSerialCommand,
  getVersionCommand,
  p256PublicKey,
  padReferenceData,
  parseAttestation,
  parseGeneratedPublicKey,
  parseGetData,
  parseMetadata,
  parsePinStatus,
  parseSelect,
  parseSerial,
  parseSignature,
  parseSlot,
  parseVersion,
  pinStatusCommand,
  putDataCommand,
  resetRetryCounterCommand,
  selectCommand,
  signCommand,
  verifyPinCommand,
} from './commands';
import { FIXTURE_CERT_DER, expectReason, h, toHex } from './test-bytes.test-support';
import { encodeTlv } from './tlv';

const bytes = (command: CommandApdu) => toHex(encodeCommandApdu(command));
const DIGEST = h('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F');

function p256Point(): {
  point: Uint8Array;
  spki: Buffer;
  privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'];
} {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { point: new Uint8Array(spki.subarray(-65)), spki, privateKey };
}

describe('SELECT', () => {
  it('selects the PIV AID A0 00 00 03 08', () => {
    expect(bytes(selectCommand())).toBe('00A4040005A00000030800');
  });

  it("reads a YubiKey's application property template", () => {
    const info = parseSelect(h('61 11 4F 06 000010000100 79 07 4F 05 A000000308'));
    expect(toHex(info.aid!)).toBe('000010000100');
    expect(parseSelect(h(''))).toEqual({});
    expectReason(() => parseSelect(h('62 00')), 'MALFORMED_RESPONSE');
  });
});

describe('PIN and PUK', () => {
  it('pads the PIN to 8 bytes with FF', () => {
    expect(bytes(verifyPinCommand('123456'))).toBe('0020008008313233343536FFFF');
    expect(bytes(verifyPinCommand('12345678'))).toBe('00200080083132333435363738');
  });

  it('refuses PINs shorter than 6 or longer than 8 bytes', () => {
    expectReason(() => verifyPinCommand('12345'), 'INVALID_ARGUMENT');
    expectReason(() => verifyPinCommand('123456789'), 'INVALID_ARGUMENT');
    expectReason(() => padReferenceData('ééééé', 'PIN'), 'INVALID_ARGUMENT'); // 10 bytes of UTF-8
  });

  it('asks for the retries with an empty VERIFY', () => {
    expect(bytes(pinStatusCommand())).toBe('00200080');
    expect(parsePinStatus({ data: h(''), sw: 0x9000 })).toEqual({ state: 'verified' });
    expect(parsePinStatus({ data: h(''), sw: 0x63c3 })).toEqual({ state: 'not-verified', retriesLeft: 3 });
    expect(parsePinStatus({ data: h(''), sw: 0x63c0 })).toEqual({ state: 'blocked', retriesLeft: 0 });
    expect(parsePinStatus({ data: h(''), sw: 0x6983 })).toEqual({ state: 'blocked', retriesLeft: 0 });
    expect(parsePinStatus({ data: h(''), sw: 0x6a80 })).toBeUndefined();
    expectReason(() => parsePinStatus({ data: h('00'), sw: 0x9000 }), 'MALFORMED_RESPONSE');
  });

  it('changes the PIN (P2 80) and the PUK (P2 81): old ‖ new, each padded', () => {
    expect(bytes(changeReferenceDataCommand('PIN', '123456', '654321'))).toBe(
      '0024008010313233343536FFFF363534333231FFFF',
    );
    expect(bytes(changeReferenceDataCommand('PUK', '12345678', '87654321'))).toBe(
      '002400811031323334353637383837363534333231',
    );
  });

  it('unblocks the PIN with the PUK: RESET RETRY COUNTER, PUK ‖ new PIN', () => {
    expect(bytes(resetRetryCounterCommand('12345678', '123456'))).toBe(
      '002C0080103132333435363738313233343536FFFF',
    );
  });
});

describe('GENERATE ASYMMETRIC KEY PAIR', () => {
  it('asks for ECC P-256 with the PIN and touch policy tags AA and AB', () => {
    expect(bytes(generateCommand(0x9a, { pin: 'once', touch: 'always' }))).toBe(
      '0047009A0BAC09800111AA0102AB010200',
    );
    expect(bytes(generateCommand(0x9c, { pin: 'always', touch: 'cached' }))).toBe(
      '0047009C0BAC09800111AA0103AB010300',
    );
    expect(bytes(generateCommand(0x9e, { pin: 'never', touch: 'never' }))).toBe(
      '0047009E0BAC09800111AA0101AB010100',
    );
  });

  it('leaves a default policy out, so the slot default applies', () => {
    expect(bytes(generateCommand(0x9a, { pin: 'default', touch: 'default' }))).toBe('0047009A05AC0380011100');
    expect(bytes(generateCommand(0x9d, { pin: 'default', touch: 'always' }))).toBe(
      '0047009D08AC06800111AB010200',
    );
  });

  it('reads the 7F49{86 point} answer into a KeyObject', () => {
    const { point, spki } = p256Point();
    const key = parseGeneratedPublicKey(encodeTlv(0x7f49, encodeTlv(0x86, point)));
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.export({ type: 'spki', format: 'der' })).toEqual(spki);
  });

  it('refuses a point off the curve, a compressed point and a missing point', () => {
    const off = new Uint8Array(65).fill(1);
    off[0] = 0x04;
    expectReason(
      () => parseGeneratedPublicKey(encodeTlv(0x7f49, encodeTlv(0x86, off))),
      'MALFORMED_RESPONSE',
    );
    expectReason(() => p256PublicKey(h(`02${'11'.repeat(32)}`)), 'MALFORMED_RESPONSE');
    expectReason(
      () => parseGeneratedPublicKey(encodeTlv(0x7f49, encodeTlv(0x87, off))),
      'MALFORMED_RESPONSE',
    );
    expectReason(() => parseGeneratedPublicKey(h('7F49 00')), 'MALFORMED_RESPONSE');
  });
});

describe('GENERAL AUTHENTICATE: sign', () => {
  it('sends 7C{82 00, 81 digest} with algorithm 11 and the slot', () => {
    expect(bytes(signCommand(0x9a, DIGEST))).toBe(`0087119A267C2482008120${toHex(DIGEST)}00`);
  });

  it('takes only a 32-byte digest', () => {
    expectReason(() => signCommand(0x9a, new Uint8Array(20)), 'INVALID_ARGUMENT');
    expectReason(() => signCommand(0x9a, new Uint8Array(48)), 'INVALID_ARGUMENT');
  });

  it('returns the DER signature out of 7C{82 …}, and it verifies', () => {
    const { privateKey, spki } = p256Point();
    const data = Buffer.from('to be signed');
    const der = sign('sha256', data, privateKey);
    const signature = parseSignature(encodeTlv(0x7c, encodeTlv(0x82, der)));
    expect(Buffer.from(signature)).toEqual(der);
    const verifier = createVerify('sha256').update(data);
    expect(verifier.verify({ key: spki, format: 'der', type: 'spki' }, signature)).toBe(true);
    expect(createHash('sha256').update(data).digest().length).toBe(32);
  });

  it('refuses signatures that are not SEQUENCE { INTEGER, INTEGER } in minimal DER', () => {
    const wrap = (der: string) => encodeTlv(0x7c, encodeTlv(0x82, h(der)));
    expectReason(() => parseSignature(wrap('3006 020101 020101 00')), 'MALFORMED_RESPONSE'); // trailing
    expectReason(() => parseSignature(wrap('3009 020101 020101 020101')), 'MALFORMED_RESPONSE'); // 3 ints
    expectReason(() => parseSignature(wrap('3006 020181 020101')), 'MALFORMED_RESPONSE'); // negative
    expectReason(() => parseSignature(wrap('3007 02020001 020101')), 'MALFORMED_RESPONSE'); // not minimal
    expectReason(() => parseSignature(wrap('3006 020100 020101')), 'MALFORMED_RESPONSE'); // zero
    expectReason(() => parseSignature(wrap('3106 020101 020101')), 'MALFORMED_RESPONSE'); // SET
    expectReason(() => parseSignature(h('7C 00')), 'MALFORMED_RESPONSE');
    expect(parseSignature(wrap('3006 020101 020101'))).toEqual(h('3006020101020101'));
  });
});

describe('GET DATA and PUT DATA', () => {
  it('reads the 9a certificate object 5FC105 and the f9 certificate 5FFF01', () => {
    expect(bytes(getDataCommand(0x5fc105))).toBe('00CB3FFF055C035FC10500');
    expect(bytes(getDataCommand(0x5fff01))).toBe('00CB3FFF055C035FFF0100');
  });

  it('takes the content out of 53', () => {
    expect(parseGetData(h('53 03 700100'))).toEqual(h('700100'));
    expectReason(() => parseGetData(h('54 00')), 'MALFORMED_RESPONSE');
  });

  it('writes 5C{object} 53{content}', () => {
    const command = putDataCommand(0x5fc10a, h('7001AA710100FE00'));
    expect(toHex(command.data!)).toBe('5C035FC10A53087001AA710100FE00');
    expect([command.ins, command.p1, command.p2]).toEqual([0xdb, 0x3f, 0xff]);
  });
});

describe("YubiKey's GET VERSION, GET SERIAL and ATTEST", () => {
  it('sends them as yubico-piv-tool does', () => {
    expect(bytes(getVersionCommand())).toBe('00FD000000');
    expect(bytes(getSerialCommand())).toBe('00F8000000');
    expect(bytes(attestCommand(0x9a))).toBe('00F99A0000');
    expect(bytes(attestCommand(0x9e))).toBe('00F99E0000');
  });

  it('reads the version and the serial', () => {
    expect(parseVersion(h('050704'))).toEqual({ major: 5, minor: 7, patch: 4 });
    expect(parseSerial(h('00BC614E'))).toBe(12345678);
    expect(parseSerial(h('FFFFFFFF'))).toBe(0xffffffff);
    expectReason(() => parseVersion(h('0507')), 'MALFORMED_RESPONSE');
    expectReason(() => parseSerial(h('00BC61')), 'MALFORMED_RESPONSE');
  });

  it('reads the attestation certificate, bare DER', () => {
    const certificate = parseAttestation(FIXTURE_CERT_DER);
    expect(certificate.subject).toContain('keyport piv fixture');
    expectReason(() => parseAttestation(Uint8Array.from([...FIXTURE_CERT_DER, 0])), 'MALFORMED_RESPONSE');
    expectReason(() => parseAttestation(FIXTURE_CERT_DER.subarray(0, 100)), 'MALFORMED_RESPONSE');
    expectReason(() => parseAttestation(h('3003 020101')), 'MALFORMED_RESPONSE');
  });
});

describe('slots and policies', () => {
  it('parses slot names', () => {
    expect(parseSlot('9a')).toBe(0x9a);
    expect(parseSlot('9C')).toBe(0x9c);
    expect(parseSlot('0x9d')).toBe(0x9d);
    expectReason(() => parseSlot('9b'), 'INVALID_ARGUMENT');
    expectReason(() => parseSlot('f9'), 'INVALID_ARGUMENT');
  });

  it("resolves a default PIN policy to the slot's", () => {
    expect(effectivePinPolicy(0x9a, 'default')).toBe('once');
    expect(effectivePinPolicy(0x9c, 'default')).toBe('always');
    expect(effectivePinPolicy(0x9e, 'default')).toBe('never');
    expect(effectivePinPolicy(0x9e, 'always')).toBe('always');
  });
});

describe("YubiKey's GET METADATA", () => {
  it('asks for a slot, the management key, the PIN or the PUK', () => {
    expect(bytes(getMetadataCommand(0x9b))).toBe('00F7009B00');
    expect(bytes(getMetadataCommand(0x9a))).toBe('00F7009A00');
  });

  it("reads the management key's algorithm and whether it is the factory key", () => {
    expect(parseMetadata(h('01010A 02020101 050101'))).toEqual({
      algorithm: 0x0a,
      policy: { pin: 'never', touch: 'never' },
      isDefault: true,
    });
  });

  it("reads the PIN's retries", () => {
    expect(parseMetadata(h('0101FF 050100 06020302'))).toEqual({
      algorithm: 0xff,
      isDefault: false,
      retries: { total: 3, left: 2 },
    });
  });

  it("reads a slot key's policies, origin and public key", () => {
    const { point, spki } = p256Point();
    const metadata = parseMetadata(
      Buffer.concat([h('010111 02020203 030101'), encodeTlv(0x04, encodeTlv(0x86, point))]),
    );
    expect(metadata).toMatchObject({
      algorithm: 0x11,
      policy: { pin: 'once', touch: 'cached' },
      origin: 'generated',
    });
    expect(metadata.publicKey!.export({ type: 'spki', format: 'der' })).toEqual(spki);
  });

  it('refuses unknown policies, origins and tags, and fields of the wrong size', () => {
    expectReason(() => parseMetadata(h('02020901')), 'MALFORMED_RESPONSE');
    expectReason(() => parseMetadata(h('020102')), 'MALFORMED_RESPONSE');
    expectReason(() => parseMetadata(h('030103')), 'MALFORMED_RESPONSE');
    expectReason(() => parseMetadata(h('01020011')), 'MALFORMED_RESPONSE');
    expectReason(() => parseMetadata(h('060103')), 'MALFORMED_RESPONSE');
    expectReason(() => parseMetadata(h('0701 00')), 'MALFORMED_RESPONSE');
  });
});
