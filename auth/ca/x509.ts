// X.509 client certificates: what a client presents on mTLS gRPC calls after login. The identity travels
// in a Keyport extension so the service can authorize a call from the certificate alone.
import { X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Authorities, TlsCertificateAuthority } from './authority';
import { signInPool } from './crypto-pool';
import { CaError } from './errors';
import { parseClientPublicKey } from './spki';
import type { ClientPublicKey } from './spki';
import { isPlainText } from './text';
import { MAX_CERTIFICATE_SERIAL, randomCertificateSerial, serialToHex, x509 } from './x509-library';

/**
 * Keyport's OID arc, a placeholder under the IANA Private Enterprise arc (1.3.6.1.4.1.<PEN>) until Keyport
 * registers its own PEN; changing it only invalidates certificates issued before the change. Assignments:
 *   <arc>.1       X.509 extensions
 *   <arc>.1.1     client identity: a UTF8String holding the JSON {user, roles, logins, mfaVerified, ...extra}
 * A UUID OID (2.25.<128-bit integer>, usable without registration) does not work here: asn1js under
 * @peculiar/x509 cannot re-encode arcs above 2^53 and silently writes "2.25" instead.
 */
export const KEYPORT_OID_ARC = '1.3.6.1.4.1.55555';
export const CLIENT_IDENTITY_EXTENSION_OID = `${KEYPORT_OID_ARC}.1.1`;

const CORE_IDENTITY_FIELDS = new Set(['user', 'roles', 'logins', 'mfaVerified']);
const DER_UTF8_STRING = 0x0c;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface ClientIdentity {
  readonly user: string;
  readonly roles: readonly string[];
  readonly logins: readonly string[];
  readonly mfaVerified: boolean;
  /** Further claims (device id, private-key policy, ...), carried beside the core fields. */
  readonly extra: Readonly<Record<string, string>>;
}

export interface VerifiedClientCertificate extends ClientIdentity {
  readonly serial: bigint;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
}

export interface ClientCertificateRequest {
  authorities: Authorities;
  /**
   * The client's P-256 or Ed25519 key: SPKI PEM ("BEGIN PUBLIC KEY"), or the key as parseClientPublicKey
   * (./spki.ts) already read it.
   */
  publicKeyPem: string | ClientPublicKey;
  user: string;
  roles: readonly string[];
  logins: readonly string[];
  mfaVerified: boolean;
  notBefore: Date;
  notAfter: Date;
  /** Random 128-bit when absent. */
  serial?: bigint;
  /** Names must not shadow the core fields. */
  extra?: Readonly<Record<string, string>>;
}

export interface IssuedClientCertificate {
  readonly certPem: string;
  readonly certDer: Buffer;
  readonly serial: bigint;
}

function invalid(message: string): CaError {
  return new CaError('INVALID_ARGUMENT', message);
}

function unauthenticated(message: string): CaError {
  return new CaError('UNAUTHENTICATED', message);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derElement(tag: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.of(tag), derLength(contents.length), contents]);
}

interface DerElement {
  tag: number;
  contents: Buffer;
  /** Header and contents. */
  encodedLength: number;
}

/** One DER element at the start of `bytes` (definite length only, as DER requires), or undefined. */
function readDerElement(bytes: Buffer): DerElement | undefined {
  const tag = bytes[0];
  const firstLength = bytes[1];
  if (tag === undefined || firstLength === undefined) return undefined;
  let length = firstLength;
  let offset = 2;
  if (firstLength >= 0x80) {
    const lengthBytes = firstLength & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4 || bytes.length < offset + lengthBytes) return undefined;
    length = bytes.readUIntBE(offset, lengthBytes);
    offset += lengthBytes;
  }
  if (bytes.length < offset + length) return undefined;
  return { tag, contents: bytes.subarray(offset, offset + length), encodedLength: offset + length };
}

function checkText(value: unknown, field: string): asserts value is string {
  if (!isPlainText(value)) {
    throw invalid(`${field} must be non-empty text without control characters`);
  }
}

function checkTextList(values: unknown, field: string): asserts values is readonly string[] {
  if (!Array.isArray(values)) throw invalid(`${field} must be a list`);
  for (const value of values) checkText(value, `each of ${field}`);
}

function checkExtra(extra: unknown): asserts extra is Record<string, string> {
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra))
    throw invalid('extra must be an object');
  for (const [name, value] of Object.entries(extra)) {
    checkText(name, 'an extra field name');
    if (CORE_IDENTITY_FIELDS.has(name))
      throw invalid(`extra field "${name}" would shadow the identity's own field`);
    if (typeof value !== 'string') throw invalid(`extra field "${name}" must be a string`);
  }
}

function checkIdentity(identity: ClientIdentity): void {
  checkText(identity.user, 'user');
  checkTextList(identity.roles, 'roles');
  checkTextList(identity.logins, 'logins');
  if (typeof identity.mfaVerified !== 'boolean') throw invalid('mfaVerified must be a boolean');
  checkExtra(identity.extra);
}

function encodeIdentity(identity: ClientIdentity): Buffer {
  const json = JSON.stringify({
    user: identity.user,
    roles: identity.roles,
    logins: identity.logins,
    mfaVerified: identity.mfaVerified,
    ...identity.extra,
  });
  return derElement(DER_UTF8_STRING, Buffer.from(json, 'utf8'));
}

function decodeIdentity(extensionValue: Buffer): ClientIdentity {
  const element = readDerElement(extensionValue);
  if (element?.tag !== DER_UTF8_STRING || element.encodedLength !== extensionValue.length) {
    throw unauthenticated('identity extension is not a UTF8String');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(element.contents));
  } catch {
    throw unauthenticated('identity extension does not hold JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw unauthenticated('identity extension does not hold a JSON object');
  }
  const { user, roles, logins, mfaVerified, ...extra } = parsed as Record<string, unknown>;
  const identity = { user, roles, logins, mfaVerified, extra } as ClientIdentity;
  try {
    checkIdentity(identity);
  } catch (error) {
    if (error instanceof CaError) throw unauthenticated(`identity extension is invalid: ${error.message}`);
    throw error;
  }
  return identity;
}

export async function issueClientCertificate(
  request: ClientCertificateRequest,
): Promise<IssuedClientCertificate> {
  const identity: ClientIdentity = {
    user: request.user,
    roles: request.roles,
    logins: request.logins,
    mfaVerified: request.mfaVerified,
    extra: request.extra ?? {},
  };
  checkIdentity(identity);
  const publicKey = (
    typeof request.publicKeyPem === 'string'
      ? parseClientPublicKey(request.publicKeyPem)
      : request.publicKeyPem
  ).spkiDer;
  const notBefore = request.notBefore.getTime();
  const notAfter = request.notAfter.getTime();
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter) || notAfter <= notBefore) {
    throw invalid('notAfter must be a valid time later than notBefore');
  }
  const serial = request.serial ?? randomCertificateSerial();
  if (serial <= 0n || serial > MAX_CERTIFICATE_SERIAL)
    throw invalid('serial must be positive and at most 20 octets');

  // The TBSCertificate (RFC 5280 §4.1) is assembled from DER parts: the ones that depend only on the CA
  // are encoded once per CA, and the CA's key signs with node:crypto. Building it with @peculiar/x509's
  // generator took several milliseconds of a login (schema serialisation, then parsing its own output).
  const { tls } = request.authorities;
  const issuer = await issuerPartsOf(tls);
  const tbs = derSequence([
    TBS_VERSION_3,
    derElement(DER_INTEGER, Buffer.from(serialToHex(serial), 'hex')),
    ECDSA_WITH_SHA256,
    issuer.name,
    derSequence([derTime(notBefore), derTime(notAfter)]),
    derCommonNameSubject(identity.user),
    publicKey,
    derElement(
      DER_EXTENSIONS,
      derSequence([
        ...issuer.extensions,
        // Non-critical: TLS stacks reject a chain with a critical extension they do not know.
        derSequence([
          CLIENT_IDENTITY_EXTENSION_OID_DER,
          derElement(DER_OCTET_STRING, encodeIdentity(identity)),
        ]),
      ]),
    ),
  ]);
  const signature = await signInPool('sha256', tbs, tls.privateKey);
  const certDer = derSequence([
    tbs,
    ECDSA_WITH_SHA256,
    derElement(DER_BIT_STRING, Buffer.concat([Buffer.of(0), signature])),
  ]);
  const base64 = certDer.toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`,
    certDer,
    serial,
  };
}

const DER_INTEGER = 0x02;
const DER_BIT_STRING = 0x03;
const DER_OCTET_STRING = 0x04;
const DER_UTC_TIME = 0x17;
const DER_GENERALIZED_TIME = 0x18;
const DER_SEQUENCE = 0x30;
const DER_SET = 0x31;
const DER_EXTENSIONS = 0xa3;
/** [0] EXPLICIT INTEGER 2: an X.509 v3 certificate. */
const TBS_VERSION_3 = Buffer.from('a003020102', 'hex');
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters (RFC 5758 §3.2). */
const ECDSA_WITH_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');
const CLIENT_IDENTITY_EXTENSION_OID_DER = derObjectIdentifier(CLIENT_IDENTITY_EXTENSION_OID);

function derSequence(elements: Buffer[]): Buffer {
  return derElement(DER_SEQUENCE, Buffer.concat(elements));
}

/** The id-at-commonName attribute type (2.5.4.3). */
const COMMON_NAME_OID_DER = Buffer.from('0603550403', 'hex');
const DER_PRINTABLE_STRING = 0x13;
/** X.680 §41.4's PrintableString characters. */
const PRINTABLE_STRING = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * The subject Name `CN=<user>` (RFC 5280 §4.1.2.6): one RDN holding the common name, a PrintableString
 * when every character allows it and a UTF8String otherwise, as @peculiar/x509 encodes it.
 */
function derCommonNameSubject(user: string): Buffer {
  const value = PRINTABLE_STRING.test(user)
    ? derElement(DER_PRINTABLE_STRING, Buffer.from(user, 'ascii'))
    : derElement(DER_UTF8_STRING, Buffer.from(user, 'utf8'));
  return derSequence([derElement(DER_SET, derSequence([COMMON_NAME_OID_DER, value]))]);
}

function derObjectIdentifier(oid: string): Buffer {
  const [first = 0, second = 0, ...rest] = oid.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const base128 = [arc % 128];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) {
      base128.unshift(0x80 | (value % 128));
    }
    bytes.push(...base128);
  }
  return derElement(0x06, Buffer.from(bytes));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, in UTC. */
function derTime(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = new Date(ms).getUTCFullYear();
  if (year >= 1950 && year < 2050) return derElement(DER_UTC_TIME, Buffer.from(digits.slice(2), 'ascii'));
  return derElement(DER_GENERALIZED_TIME, Buffer.from(digits, 'ascii'));
}

/** The CA's subject (the certificates' issuer) and the extensions every client certificate carries. */
interface IssuerParts {
  name: Buffer;
  extensions: Buffer[];
}

const issuerParts = new WeakMap<TlsCertificateAuthority, Promise<IssuerParts>>();

function issuerPartsOf(tls: TlsCertificateAuthority): Promise<IssuerParts> {
  let parts = issuerParts.get(tls);
  if (!parts) {
    parts = (async () => {
      const caCertificate = new x509.X509Certificate(tls.certPem);
      const extensions = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(caCertificate.publicKey),
      ];
      return {
        name: Buffer.from(caCertificate.subjectName.toArrayBuffer()),
        extensions: extensions.map((extension) => Buffer.from(extension.rawData)),
      };
    })();
    issuerParts.set(tls, parts);
    parts.catch(() => issuerParts.delete(tls));
  }
  return parts;
}

function verifiesUnder(certificate: X509Certificate, authority: X509Certificate): boolean {
  try {
    return certificate.checkIssued(authority) && certificate.verify(authority.publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies a client certificate against our TLS CA at `now` and returns the identity it carries.
 * UNAUTHENTICATED: not a certificate, not signed by our CA, not a client certificate, or no valid identity.
 * CERTIFICATE_EXPIRED: otherwise acceptable but outside its validity period, so logging in again fixes it;
 * hence the validity period is checked last.
 */
export function verifyClientCertificate(
  authorities: Authorities,
  certDerOrPem: string | Uint8Array,
  now: Date,
): VerifiedClientCertificate {
  let certificate: X509Certificate;
  let parsed: x509.X509Certificate;
  try {
    certificate = new X509Certificate(
      typeof certDerOrPem === 'string' ? certDerOrPem : Buffer.from(certDerOrPem),
    );
    parsed = new x509.X509Certificate(certificate.raw);
  } catch {
    throw unauthenticated('not an X.509 certificate');
  }
  if (!verifiesUnder(certificate, authorities.tls.certificate)) {
    throw unauthenticated('certificate is not signed by this cluster’s CA');
  }
  if (certificate.ca) throw unauthenticated('a CA certificate cannot authenticate a client');
  const extendedKeyUsage = parsed.getExtension(x509.ExtendedKeyUsageExtension);
  if (!extendedKeyUsage?.usages.includes(x509.ExtendedKeyUsage.clientAuth)) {
    throw unauthenticated('certificate is not for client authentication');
  }
  const identityExtensions = parsed.getExtensions(CLIENT_IDENTITY_EXTENSION_OID);
  const [identityExtension] = identityExtensions;
  if (identityExtension === undefined || identityExtensions.length > 1) {
    throw unauthenticated('certificate does not carry exactly one Keyport identity extension');
  }
  const identity = decodeIdentity(Buffer.from(identityExtension.value));
  const commonNames = parsed.subjectName.getField('CN');
  if (commonNames.length !== 1 || commonNames[0] !== identity.user) {
    throw unauthenticated('certificate subject does not match its identity extension');
  }
  // RFC 5280 §4.1.2.5: both bounds are inclusive.
  if (now.getTime() < parsed.notBefore.getTime()) {
    throw new CaError(
      'CERTIFICATE_EXPIRED',
      `certificate is not valid before ${parsed.notBefore.toISOString()}`,
    );
  }
  if (now.getTime() > parsed.notAfter.getTime()) {
    throw new CaError('CERTIFICATE_EXPIRED', `certificate expired at ${parsed.notAfter.toISOString()}`);
  }
  return {
    ...identity,
    serial: BigInt(`0x${parsed.serialNumber}`),
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    publicKey: certificate.publicKey,
  };
}
