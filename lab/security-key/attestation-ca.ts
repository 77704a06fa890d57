// The lab attestation CA: root -> intermediate -> one attestation certificate per AAGUID, made once and
// kept in the state file. Clusters allow or deny the root (attestation_allowed_cas / _denied_cas).
// The attestation certificate follows WebAuthn Level 3 §8.2.1 (packed attestation certificate
// requirements): version 3; subject C, O, OU="Authenticator Attestation", CN; basicConstraints CA=false;
// id-fido-gen-ce-aaguid (1.3.6.1.4.1.45724.1.1.4), non-critical, holding the AAGUID as an OCTET STRING.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import { ECDSA_P256_SHA256, randomCertificateSerial, serialToHex, x509 } from '../../auth/ca/x509-library';

export const ID_FIDO_GEN_CE_AAGUID = '1.3.6.1.4.1.45724.1.1.4';
const CLOCK_SKEW_MS = 5 * 60_000;
const CA_VALIDITY_YEARS = 20;
const LEAF_VALIDITY_YEARS = 10;

export interface StoredAuthority {
  /** PKCS#8 PEM. A lab device: keys sit in the state file, not in a secure element. */
  keyPem: string;
  certPem: string;
}

export interface StoredAttestation {
  root: StoredAuthority;
  intermediate: StoredAuthority;
  /** The attestation key and certificate for `aaguid`; remade when the AAGUID changes. */
  leaf: StoredAuthority & { aaguid: string };
}

export interface AttestationSigner {
  /** DER certificates: attestation certificate first, then the intermediate (x5c order). */
  x5c: Uint8Array[];
  sign(data: Uint8Array): Uint8Array;
}

export async function createAuthorities(): Promise<Pick<StoredAttestation, 'root' | 'intermediate'>> {
  const rootKey = newKey();
  const rootName: x509.JsonName = [
    { C: ['ZZ'] },
    { O: ['Keyport Lab'] },
    { CN: ['Keyport Lab Security Key Attestation Root'] },
  ];
  const root = await certificate({
    subject: rootName,
    issuer: rootName,
    subjectKey: rootKey,
    issuerKey: rootKey,
    years: CA_VALIDITY_YEARS,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const intermediateKey = newKey();
  const intermediate = await certificate({
    subject: [{ C: ['ZZ'] }, { O: ['Keyport Lab'] }, { CN: ['Keyport Lab Security Key Attestation CA 1'] }],
    issuer: root.subjectName,
    subjectKey: intermediateKey,
    issuerKey: rootKey,
    years: CA_VALIDITY_YEARS,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return {
    root: { keyPem: pemOf(rootKey), certPem: root.toString('pem') },
    intermediate: { keyPem: pemOf(intermediateKey), certPem: intermediate.toString('pem') },
  };
}

export async function createAttestationLeaf(
  intermediate: StoredAuthority,
  aaguid: string,
): Promise<StoredAttestation['leaf']> {
  const issuer = new x509.X509Certificate(intermediate.certPem);
  const leafKey = newKey();
  const leaf = await certificate({
    subject: [
      { C: ['ZZ'] },
      { O: ['Keyport Lab'] },
      { OU: ['Authenticator Attestation'] },
      { CN: ['Keyport Lab Software Security Key'] },
    ],
    issuer: issuer.subjectName,
    subjectKey: leafKey,
    issuerKey: createPrivateKey(intermediate.keyPem),
    years: LEAF_VALIDITY_YEARS,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.Extension(ID_FIDO_GEN_CE_AAGUID, false, derOctetString(uuidBytes(aaguid))),
    ],
  });
  return { keyPem: pemOf(leafKey), certPem: leaf.toString('pem'), aaguid };
}

export function attestationSigner(attestation: StoredAttestation): AttestationSigner {
  const key = createPrivateKey(attestation.leaf.keyPem);
  return {
    x5c: [derOf(attestation.leaf.certPem), derOf(attestation.intermediate.certPem)],
    sign: (data) => new Uint8Array(sign('sha256', data, key)),
  };
}

export function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function derOf(pem: string): Uint8Array {
  return new Uint8Array(new x509.X509Certificate(pem).rawData);
}

function derOctetString(content: Uint8Array): Uint8Array {
  if (content.length > 127) throw new Error('short-form DER length only');
  return Uint8Array.of(0x04, content.length, ...content);
}

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

function pemOf(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

async function certificate(options: {
  subject: x509.JsonName | string;
  issuer: x509.JsonName | x509.Name | string;
  subjectKey: KeyObject;
  issuerKey: KeyObject;
  years: number;
  extensions: x509.Extension[];
}): Promise<x509.X509Certificate> {
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + options.years);
  const subjectPublic = createPublicKey(options.subjectKey).export({ type: 'spki', format: 'der' });
  const issuerPublic = createPublicKey(options.issuerKey).export({ type: 'spki', format: 'der' });
  const signingKey = (await x509.cryptoProvider
    .get()
    .subtle.importKey(
      'pkcs8',
      options.issuerKey.export({ type: 'pkcs8', format: 'der' }),
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign'],
    )) as webcrypto.CryptoKey;
  return x509.X509CertificateGenerator.create({
    serialNumber: serialToHex(randomCertificateSerial()),
    subject: options.subject,
    issuer: options.issuer,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter,
    publicKey: subjectPublic,
    signingKey,
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [
      ...options.extensions,
      await x509.SubjectKeyIdentifierExtension.create(subjectPublic),
      await x509.AuthorityKeyIdentifierExtension.create(issuerPublic),
    ],
  });
}
