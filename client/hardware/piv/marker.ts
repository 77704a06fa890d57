// Keyport's mark on a PIV slot: a certificate for the slot's own public key, with a Keyport subject, stored
// in the slot's certificate object. A slot whose certificate is such a one, for the key in the slot, holds
// a Keyport session key and may be reused or replaced; any other key is someone else's and is never
// overwritten without the person's say. The certificate is signed by a throwaway key, not by the slot's:
// it only marks the slot (nothing trusts its signature), and the slot's key may need a touch or the PIN
// (Teleport marks its slots the same way). Pure: DER built by hand with the BER-TLV encoder (DER's
// definite, minimal lengths are what encodeTlv writes).
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { concatBytes, encodeTlv } from './tlv';

export const MARKER_ORGANIZATION = 'Keyport';
export const MARKER_UNIT = 'keyport-session-key';
export const MARKER_COMMON_NAME = 'Keyport session key';

const OID = {
  commonName: Uint8Array.of(0x55, 0x04, 0x03),
  organization: Uint8Array.of(0x55, 0x04, 0x0a),
  organizationalUnit: Uint8Array.of(0x55, 0x04, 0x0b),
  ecdsaWithSha256: Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02),
};

const sequence = (...parts: Uint8Array[]) => encodeTlv(0x30, concatBytes(...parts));
const text = (value: string) => new TextEncoder().encode(value);

function attribute(oid: Uint8Array, value: string): Uint8Array {
  // RelativeDistinguishedName: SET OF one AttributeTypeAndValue, the value a UTF8String.
  return encodeTlv(0x31, sequence(encodeTlv(0x06, oid), encodeTlv(0x0c, text(value))));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; 99991231235959Z: no end. */
function time(date: Date | 'never'): Uint8Array {
  if (date === 'never') return encodeTlv(0x18, text('99991231235959Z'));
  const iso = date.toISOString();
  const digits = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return encodeTlv(0x17, text(digits));
}

/** A positive INTEGER of 16 random bytes (RFC 5280 §4.1.2.2). */
function serialNumber(): Uint8Array {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return encodeTlv(0x02, bytes);
}

/** The marker certificate (DER) for the key in a slot: subject and issuer O=Keyport, OU=keyport-session-key. */
export function markerCertificate(slotPublicKey: KeyObject, notBefore = new Date()): Uint8Array {
  const name = sequence(
    attribute(OID.organization, MARKER_ORGANIZATION),
    attribute(OID.organizationalUnit, MARKER_UNIT),
    attribute(OID.commonName, MARKER_COMMON_NAME),
  );
  const algorithm = sequence(encodeTlv(0x06, OID.ecdsaWithSha256));
  const spki = new Uint8Array(slotPublicKey.export({ format: 'der', type: 'spki' }));
  const tbs = sequence(
    encodeTlv(0xa0, encodeTlv(0x02, Uint8Array.of(0x02))), // v3
    serialNumber(),
    algorithm,
    name,
    sequence(time(notBefore), time('never')),
    name,
    spki,
  );
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signature = sign('sha256', tbs, privateKey);
  return sequence(tbs, algorithm, encodeTlv(0x03, concatBytes(Uint8Array.of(0x00), signature)));
}

/** Node's one-per-line "KEY=value" form of a name, as a map (the last value of a key wins). */
function nameFields(name: string): Map<string, string> {
  return new Map(
    name
      .split('\n')
      .map((line) => line.split('='))
      .filter((parts) => parts.length >= 2)
      .map(([key, ...value]) => [key!, value.join('=')]),
  );
}

/** Whether `certificate` is Keyport's mark for the key `slotPublicKey` (a foreign key is not). */
export function isKeyportMarker(certificate: X509Certificate | undefined, slotPublicKey: KeyObject): boolean {
  if (!certificate) return false;
  const subject = nameFields(certificate.subject);
  return (
    subject.get('O') === MARKER_ORGANIZATION &&
    subject.get('OU') === MARKER_UNIT &&
    certificate.publicKey.equals(slotPublicKey)
  );
}
