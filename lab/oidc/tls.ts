// The lab IdP's TLS: a lab CA and a server certificate for 127.0.0.1 and localhost, made at each start and
// kept in memory. Shaped as strict verifiers want it (LAB.md): the CA has critical basicConstraints CA:TRUE,
// keyCertSign and SKI/AKI; the server certificate has the SANs and EKU serverAuth.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import { ECDSA_P256_SHA256, randomCertificateSerial, serialToHex, x509 } from '../../auth/ca/x509-library';

export interface LabTls {
  /** The lab CA's certificate: what a relying party must trust to talk to the lab IdP. */
  caPem: string;
  certPem: string;
  keyPem: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export async function createLabTls(commonName = 'Keyport Lab OIDC Provider'): Promise<LabTls> {
  const caKey = newKey();
  const caName = `CN=${commonName} CA, O=Keyport Lab`;
  const ca = await certificate({
    subject: caName,
    issuer: caName,
    subjectKey: caKey,
    issuerKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const serverKey = newKey();
  const server = await certificate({
    subject: `CN=${commonName}, O=Keyport Lab`,
    issuer: caName,
    subjectKey: serverKey,
    issuerKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
    ],
  });
  return {
    caPem: ca.toString('pem'),
    certPem: server.toString('pem'),
    keyPem: serverKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

async function certificate(options: {
  subject: string;
  issuer: string;
  subjectKey: KeyObject;
  issuerKey: KeyObject;
  extensions: x509.Extension[];
}): Promise<x509.X509Certificate> {
  const now = Date.now();
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
    // A day either side: the lab clock may move keyport-auth's time forward, never the IdP's certificate out.
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 30 * DAY_MS),
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
