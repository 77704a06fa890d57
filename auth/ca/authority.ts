// The cluster's two certificate authorities (an SSH user CA and a TLS CA), the TLS CA pin clients trust
// on first use, and the auth service's own TLS certificate. keyport-auth keeps the CAs in the database
// (auth/authorities.ts); the files in `<dataDir>/ca/` are where data dirs from before kept them (read
// once, to import them) and what the CA unit tests use.
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
} from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { basename, join } from 'node:path';
import { isSealed } from '../secrets';
import type { Sealer } from '../secrets';
import { CaError } from './errors';
import { isPlainText } from './text';
import {
  PRIVATE_FILE_MODE,
  ensurePrivateDirectory,
  readPrivateFile,
  readPublicFile,
  replacePrivateFile,
  writeFileIfAbsent,
} from './key-files';
import { sshPublicKeyFromKeyObject } from './ssh';
import type { SshPublicKey } from './ssh';
import { ECDSA_P256_SHA256, randomCertificateSerial, serialToHex, x509 } from './x509-library';

export const CA_DIRECTORY = 'ca';
export const SSH_USER_CA_KEY_FILE = 'ssh-user-ca.key';
export const TLS_CA_KEY_FILE = 'tls-ca.key';
export const TLS_CA_CERT_FILE = 'tls-ca.crt';
const PUBLIC_FILE_MODE = 0o644;

const TLS_CA_VALIDITY_YEARS = 10;
const HOST_CERTIFICATE_VALIDITY_DAYS = 365;
// Certificates start a little in the past so that a peer whose clock lags ours still accepts them.
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface SshUserCertificateAuthority {
  readonly privateKey: KeyObject;
  readonly publicKey: SshPublicKey;
}

export interface TlsCertificateAuthority {
  readonly privateKey: KeyObject;
  /** The same private key imported into WebCrypto, which @peculiar/x509 signs with. */
  readonly signingKey: webcrypto.CryptoKey;
  readonly certificate: X509Certificate;
  readonly certPem: string;
  /** caPin(certificate), computed once. */
  readonly pin: string;
}

export interface Authorities {
  readonly clusterName: string;
  readonly ssh: SshUserCertificateAuthority;
  readonly tls: TlsCertificateAuthority;
  /**
   * The SSH host CA (Ed25519), which signs nodes' host certificates. keyport-auth always has one
   * (auth/authorities.ts withHostAuthority); the file-based CAs of the unit tests do not.
   */
  readonly sshHost?: SshUserCertificateAuthority;
}

export interface HostCertificate {
  /** PKCS#8 PEM of a key generated for this certificate only. */
  readonly keyPem: string;
  readonly certPem: string;
  /** The host certificate followed by the CA certificate, so that a client can pin the CA on first use. */
  readonly chainPem: string;
}

export interface HostNames {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
}

export type KeyKind = 'Ed25519' | 'ECDSA P-256';

function keyKindOf(key: KeyObject): KeyKind | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    return 'ECDSA P-256';
  return undefined;
}

export function generatePrivateKey(kind: KeyKind): KeyObject {
  return kind === 'Ed25519'
    ? generateKeyPairSync('ed25519').privateKey
    : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

function toPem(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

function spkiDer(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** Key files are sealed at rest by `sealer` (auth/secrets.ts); without one (CA unit tests), plain PEM. */
async function loadOrCreatePrivateKey(path: string, kind: KeyKind, sealer?: Sealer): Promise<KeyObject> {
  const context = `ca-key:${basename(path)}`;
  let stored = await readPrivateFile(path);
  if (stored === undefined) {
    const generated = generatePrivateKey(kind).export({ type: 'pkcs8', format: 'pem' }).toString();
    const contents = sealer ? sealer.seal(generated, context) : generated;
    const created = await writeFileIfAbsent(path, contents, PRIVATE_FILE_MODE);
    stored = created ? contents : await readPrivateFile(path);
    if (stored === undefined) throw new CaError('INTERNAL', `${path} vanished while it was being created`);
  }
  let pem: string;
  if (isSealed(stored)) {
    if (!sealer) throw new CaError('INTERNAL', `${path} is sealed: it needs the key-encryption key`);
    pem = sealer.open(stored, context);
  } else {
    pem = stored;
    // A plain key from before keys were sealed: sealed in place, atomically, from now on.
    if (sealer) await replacePrivateFile(path, sealer.seal(pem, context));
  }
  return parsePrivateKey(pem, kind, path);
}

async function importSigningKey(privateKey: KeyObject): Promise<webcrypto.CryptoKey> {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  return x509.cryptoProvider
    .get()
    .subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
    ]) as Promise<webcrypto.CryptoKey>;
}

async function createTlsCaCertificatePem(
  clusterName: string,
  privateKey: KeyObject,
  signingKey: webcrypto.CryptoKey,
): Promise<string> {
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + TLS_CA_VALIDITY_YEARS);
  const publicKey = spkiDer(privateKey);
  const name: x509.JsonName = [{ CN: [`${clusterName} Keyport TLS CA`] }];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialToHex(randomCertificateSerial()),
    subject: name,
    issuer: name,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter,
    publicKey,
    signingKey,
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [
      // Path length 0: this CA signs end-entity certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  return toPem(certificate.toString('pem'));
}

function parseTlsCaCertificate(path: string, pem: string, privateKey: KeyObject): X509Certificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (cause) {
    throw new CaError('INTERNAL', `${path} is not an X.509 certificate`, { cause });
  }
  if (!certificate.ca) throw new CaError('INTERNAL', `${path} is not a CA certificate`);
  if (!spkiDer(certificate.publicKey).equals(spkiDer(privateKey))) {
    throw new CaError('INTERNAL', `${path} does not belong to the key in ${TLS_CA_KEY_FILE}`);
  }
  return certificate;
}

/** A PEM private key of `kind`, or CaError naming `where` it came from. */
export function parsePrivateKey(pem: string, kind: KeyKind, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (cause) {
    throw new CaError('INTERNAL', `${where} is not a PKCS#8 private key`, { cause });
  }
  if (keyKindOf(key) !== kind)
    throw new CaError('INTERNAL', `${where} holds a ${key.asymmetricKeyType} key, not ${kind}`);
  return key;
}

export function checkClusterName(clusterName: string): void {
  if (!isPlainText(clusterName) || clusterName.trim() !== clusterName) {
    throw new CaError(
      'INVALID_ARGUMENT',
      'cluster name must be non-empty text without control characters or surrounding spaces',
    );
  }
}

/** A new TLS CA certificate for `privateKey`, named after the cluster. */
export async function newTlsCaCertificatePem(clusterName: string, privateKey: KeyObject): Promise<string> {
  return createTlsCaCertificatePem(clusterName, privateKey, await importSigningKey(privateKey));
}

/** The authorities from their keys and the TLS CA certificate (checked to belong to the TLS key). */
export async function authoritiesFromKeys(
  clusterName: string,
  sshPrivateKey: KeyObject,
  tlsPrivateKey: KeyObject,
  certPem: string,
  where = 'the TLS CA certificate',
): Promise<Authorities> {
  const signingKey = await importSigningKey(tlsPrivateKey);
  const certificate = parseTlsCaCertificate(where, certPem, tlsPrivateKey);
  return {
    clusterName,
    ssh: {
      privateKey: sshPrivateKey,
      publicKey: sshPublicKeyFromKeyObject(sshPrivateKey, `${clusterName} Keyport SSH user CA`),
    },
    tls: { privateKey: tlsPrivateKey, signingKey, certificate, certPem, pin: caPin(certificate) },
  };
}

export interface LegacyCaFiles {
  ssh?: KeyObject;
  tls?: KeyObject;
  certPem?: string;
}

/**
 * What a data dir from before the CAs moved into the database holds in `<dataDir>/ca/`, creating
 * nothing. A key still in plain PEM (from before sealing) is sealed in place first, so that no plain key
 * stays under the data dir; a sealed one must open with `sealer`.
 */
export async function readLegacyCaFiles(dataDir: string, sealer: Sealer): Promise<LegacyCaFiles> {
  const directory = join(dataDir, CA_DIRECTORY);
  const readKey = async (file: string, kind: KeyKind): Promise<KeyObject | undefined> => {
    const path = join(directory, file);
    const stored = await readPrivateFile(path);
    if (stored === undefined) return undefined;
    const context = `ca-key:${file}`;
    let pem = stored;
    if (isSealed(stored)) pem = sealer.open(stored, context);
    else await replacePrivateFile(path, sealer.seal(stored, context));
    return parsePrivateKey(pem, kind, path);
  };
  const ssh = await readKey(SSH_USER_CA_KEY_FILE, 'Ed25519');
  const tls = await readKey(TLS_CA_KEY_FILE, 'ECDSA P-256');
  const certPem = await readPublicFile(join(directory, TLS_CA_CERT_FILE));
  return { ssh, tls, certPem };
}

/**
 * Loads the CAs from `<dataDir>/ca/`, creating whatever is missing. A missing TLS CA certificate is
 * re-issued from the existing key, which keeps the pin (it covers the key, not the certificate).
 */
export async function loadOrCreateAuthorities(
  dataDir: string,
  clusterName: string,
  options: { sealer?: Sealer } = {},
): Promise<Authorities> {
  checkClusterName(clusterName);
  const directory = join(dataDir, CA_DIRECTORY);
  await ensurePrivateDirectory(directory);

  const sshPrivateKey = await loadOrCreatePrivateKey(
    join(directory, SSH_USER_CA_KEY_FILE),
    'Ed25519',
    options.sealer,
  );
  const tlsPrivateKey = await loadOrCreatePrivateKey(
    join(directory, TLS_CA_KEY_FILE),
    'ECDSA P-256',
    options.sealer,
  );
  const certPath = join(directory, TLS_CA_CERT_FILE);
  let certPem = await readPublicFile(certPath);
  if (certPem === undefined) {
    const created = await newTlsCaCertificatePem(clusterName, tlsPrivateKey);
    certPem = (await writeFileIfAbsent(certPath, created, PUBLIC_FILE_MODE))
      ? created
      : await readPublicFile(certPath);
    if (certPem === undefined)
      throw new CaError('INTERNAL', `${certPath} vanished while it was being created`);
  }
  return authoritiesFromKeys(clusterName, sshPrivateKey, tlsPrivateKey, certPem, certPath);
}

/**
 * `sha256:<hex>` of the DER SubjectPublicKeyInfo (the form of RFC 7469 §2.4 pins). Given PEM holding
 * several certificates, the first one is pinned, so pass the CA certificate itself.
 */
export function caPin(certificate: string | X509Certificate | x509.X509Certificate): string {
  let nodeCertificate: X509Certificate;
  try {
    nodeCertificate =
      certificate instanceof X509Certificate
        ? certificate
        : new X509Certificate(
            typeof certificate === 'string' ? certificate : Buffer.from(certificate.rawData),
          );
  } catch (cause) {
    throw new CaError('INVALID_ARGUMENT', 'not an X.509 certificate', { cause });
  }
  return `sha256:${createHash('sha256').update(spkiDer(nodeCertificate.publicKey)).digest('hex')}`;
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

function checkHostNames({ dnsNames, ipAddresses }: HostNames): void {
  if (dnsNames.length + ipAddresses.length === 0) {
    throw new CaError('INVALID_ARGUMENT', 'a host certificate needs at least one DNS name or IP address');
  }
  for (const name of dnsNames) {
    if (name.length > 253 || !DNS_NAME.test(name))
      throw new CaError('INVALID_ARGUMENT', `invalid DNS name "${name}"`);
  }
  for (const address of ipAddresses) {
    if (isIP(address) === 0) throw new CaError('INVALID_ARGUMENT', `invalid IP address "${address}"`);
  }
}

/** A TLS server certificate for the auth service, with a fresh P-256 key, signed by the TLS CA. */
export async function issueHostCertificate(
  authorities: Authorities,
  names: HostNames,
): Promise<HostCertificate> {
  checkHostNames(names);
  const hostKey = generatePrivateKey('ECDSA P-256');
  const caCertificate = new x509.X509Certificate(authorities.tls.certPem);
  const caPublicKey = spkiDer(authorities.tls.privateKey);
  const hostPublicKey = spkiDer(hostKey);
  const now = Date.now();
  const notAfter = Math.min(now + HOST_CERTIFICATE_VALIDITY_DAYS * DAY_MS, caCertificate.notAfter.getTime());
  const commonName = names.dnsNames[0] ?? names.ipAddresses[0] ?? '';

  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialToHex(randomCertificateSerial()),
    subject: [{ CN: [commonName] }],
    issuer: caCertificate.subjectName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    publicKey: hostPublicKey,
    signingKey: authorities.tls.signingKey,
    signingAlgorithm: ECDSA_P256_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...names.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(hostPublicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caPublicKey),
    ],
  });
  const certPem = toPem(certificate.toString('pem'));
  return {
    keyPem: hostKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem,
    chainPem: certPem + toPem(authorities.tls.certPem),
  };
}
