// The card's attestation, after Yubico's PIV attestation (docs.yubico.com "PIV Attestation OID Arc"):
// a lab root CA (standing in for Yubico's PIV root) certifies the card's f9 key, and ATTEST has the f9 key
// sign, on the spot, a certificate for a slot key generated on the card:
//   serial: 16 random bytes; issuer: the f9 certificate's subject; validity: copied from the f9 certificate;
//   subject: "YubiKey PIV Attestation <slot>"; signature: ECDSA-SHA256 (the f9 key is P-256 here);
//   extensions 1.3.6.1.4.1.41482.3.3 firmware (3 bytes), .3.7 serial (DER INTEGER), .3.8 PIN and touch
//   policy (2 bytes), .3.9 form factor (1 byte).
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import { ECDSA_P256_SHA256, randomCertificateSerial, serialToHex, x509 } from '../../auth/ca/x509-library';

export const YUBICO_OID = {
  firmware: '1.3.6.1.4.1.41482.3.3',
  serial: '1.3.6.1.4.1.41482.3.7',
  policy: '1.3.6.1.4.1.41482.3.8',
  formFactor: '1.3.6.1.4.1.41482.3.9',
} as const;

const CLOCK_SKEW_MS = 5 * 60_000;
const ROOT_VALIDITY_YEARS = 30;
const DEVICE_VALIDITY_YEARS = 20;

export interface StoredAuthority {
  /** PKCS#8 PEM. A lab card: the keys sit in the state file, not in a secure element. */
  keyPem: string;
  certPem: string;
}

export interface CardAttestation {
  /** The lab PIV attestation root: what a cluster is told to trust in place of Yubico's root. */
  root: StoredAuthority;
  /** The card's f9 key and certificate, signed by the root. */
  device: StoredAuthority;
}

export interface AttestedKey {
  slot: number;
  publicKey: KeyObject;
  pinPolicy: number;
  touchPolicy: number;
}

export interface DeviceFacts {
  serial: number;
  firmware: readonly [number, number, number];
  formFactor: number;
}

export async function createCardAttestation(serial: number): Promise<CardAttestation> {
  const rootKey = newKey();
  const rootName = 'C=ZZ, O=Keyport Lab, CN=Keyport Lab PIV Attestation Root';
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.create({
    serialNumber: serialToHex(randomCertificateSerial()),
    subject: rootName,
    issuer: rootName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: yearsFrom(now, ROOT_VALIDITY_YEARS),
    publicKey: spki(rootKey),
    signingKey: await signingKey(rootKey),
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(spki(rootKey)),
    ],
  });
  const deviceKey = newKey();
  const device = await x509.X509CertificateGenerator.create({
    serialNumber: serialToHex(randomCertificateSerial()),
    subject: `C=ZZ, O=Keyport Lab, CN=Keyport Lab PIV Attestation ${serial}`,
    issuer: root.subjectName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: yearsFrom(now, DEVICE_VALIDITY_YEARS),
    publicKey: spki(deviceKey),
    signingKey: await signingKey(rootKey),
    signingAlgorithm: ECDSA_P256_SHA256,
    // A CA certificate: it issues the attestation certificates, so verifiers (OpenSSL) accept it there.
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      await x509.SubjectKeyIdentifierExtension.create(spki(deviceKey)),
      await x509.AuthorityKeyIdentifierExtension.create(spki(rootKey)),
    ],
  });
  return {
    root: { keyPem: pkcs8Pem(rootKey), certPem: root.toString('pem') },
    device: { keyPem: pkcs8Pem(deviceKey), certPem: device.toString('pem') },
  };
}

/** The DER attestation certificate for a generated slot key, signed by the card's f9 key. */
export async function attestSlotKey(
  device: StoredAuthority,
  facts: DeviceFacts,
  key: AttestedKey,
): Promise<Uint8Array> {
  const issuer = new x509.X509Certificate(device.certPem);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: positiveSerialHex(randomBytes(16)),
    subject: `CN=YubiKey PIV Attestation ${key.slot.toString(16).padStart(2, '0')}`,
    issuer: issuer.subjectName,
    notBefore: issuer.notBefore,
    notAfter: issuer.notAfter,
    publicKey: new Uint8Array(key.publicKey.export({ type: 'spki', format: 'der' })),
    signingKey: await signingKey(createPrivateKey(device.keyPem)),
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [
      new x509.Extension(YUBICO_OID.firmware, false, Uint8Array.from(facts.firmware)),
      new x509.Extension(YUBICO_OID.serial, false, derUnsignedInteger(facts.serial)),
      new x509.Extension(YUBICO_OID.policy, false, Uint8Array.of(key.pinPolicy, key.touchPolicy)),
      new x509.Extension(YUBICO_OID.formFactor, false, Uint8Array.of(facts.formFactor)),
    ],
  });
  return new Uint8Array(certificate.rawData);
}

/** DER INTEGER of a non-negative number below 2^53. */
export function derUnsignedInteger(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a serial: ${value}`);
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 1), 16) >= 8) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  return Uint8Array.from([0x02, body.length, ...body]);
}

function positiveSerialHex(bytes: Uint8Array): string {
  const copy = Uint8Array.from(bytes);
  copy[0] = (copy[0] as number) & 0x7f || 0x01; // positive and 16 bytes long, as the YubiKey's
  return Buffer.from(copy).toString('hex');
}

function yearsFrom(now: number, years: number): Date {
  const date = new Date(now);
  date.setUTCFullYear(date.getUTCFullYear() + years);
  return date;
}

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

function spki(key: KeyObject): Uint8Array {
  return new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
}

function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function signingKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  return (await x509.cryptoProvider
    .get()
    .subtle.importKey(
      'pkcs8',
      key.export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    )) as webcrypto.CryptoKey;
}
