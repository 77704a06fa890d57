// OpenSSH user certificates, encoded by hand from PROTOCOL.certkeys (openssh-portable). No maintained JS
// library writes OpenSSH certificates with custom extensions, and the format is small: a sequence of SSH
// wire fields (RFC 4251 §5) followed by the CA's signature over them. Parsing and encoding only; no I/O.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { randomPooled } from '../random';
import type { KeyObject } from 'node:crypto';
import type { Authorities, SshUserCertificateAuthority } from './authority';
import type { ClientPublicKey } from './spki';
import { signInPool } from './crypto-pool';
import { CaError } from './errors';
import { isPlainText } from './text';
import { SshWireReader, sshString, sshUint32, sshUint64 } from './ssh-wire';

export type SshPublicKeyAlgorithm = 'ssh-ed25519' | 'ecdsa-sha2-nistp256';
export type SshCertificateAlgorithm =
  'ssh-ed25519-cert-v01@openssh.com' | 'ecdsa-sha2-nistp256-cert-v01@openssh.com';

export interface SshPublicKey {
  readonly algorithm: SshPublicKeyAlgorithm;
  /** The key blob (RFC 4253 §6.6, RFC 8709 §4, RFC 5656 §3.1): what an authorized_keys line carries. */
  readonly blob: Buffer;
  readonly key: KeyObject;
  readonly comment: string;
  /** `SHA256:<unpadded base64>`, the form `ssh-keygen -l` prints. */
  readonly fingerprint: string;
}

/** The extensions OpenSSH grants to a user certificate by default (`ssh-keygen -s` without `-O clear`). */
export const SSH_STANDARD_USER_EXTENSIONS = [
  'permit-X11-forwarding',
  'permit-agent-forwarding',
  'permit-port-forwarding',
  'permit-pty',
  'permit-user-rc',
] as const;
export type SshStandardUserExtension = (typeof SSH_STANDARD_USER_EXTENSIONS)[number];

/** PROTOCOL.certkeys "Critical options" and "Extensions": the names defined without a domain suffix. */
const KNOWN_CRITICAL_OPTIONS = new Set(['force-command', 'source-address', 'verify-required']);
const KNOWN_EXTENSIONS = new Set<string>([...SSH_STANDARD_USER_EXTENSIONS, 'no-touch-required']);

export interface SshUserCertificateRequest {
  ca: SshUserCertificateAuthority;
  /** The subject's key, parsed or as an authorized_keys line. */
  publicKey: SshPublicKey | string;
  keyId: string;
  /** At least one: a user certificate without principals is valid for every login (PROTOCOL.certkeys). */
  principals: readonly string[];
  validAfter: Date;
  validBefore: Date;
  /** Added to `standardExtensions`; `''` for a flag, any other value is carried as text. */
  extensions: Readonly<Record<string, string>>;
  criticalOptions?: Readonly<Record<string, string>>;
  /** Random non-zero 64-bit value when absent (serial 0 cannot be revoked individually in a KRL). */
  serial?: bigint;
  /** Defaults to all of SSH_STANDARD_USER_EXTENSIONS; pass a subset to withhold some (e.g. forwarding). */
  standardExtensions?: readonly SshStandardUserExtension[];
  /** 'user' (the default) or 'host': a host certificate carries no extensions and names host names. */
  certificateType?: 'user' | 'host';
}

export interface SshCertificate {
  readonly algorithm: SshCertificateAlgorithm;
  readonly certificateType: 'user' | 'host';
  readonly nonce: Buffer;
  readonly publicKey: SshPublicKey;
  readonly serial: bigint;
  readonly keyId: string;
  readonly principals: readonly string[];
  readonly validAfter: Date;
  /** Times past the range of Date (OpenSSH's "forever" is 2^64-1) are clamped to the latest Date. */
  readonly validBefore: Date;
  readonly criticalOptions: Readonly<Record<string, string>>;
  readonly extensions: Readonly<Record<string, string>>;
  /** The CA key that signed the certificate; the signature has been verified against it. */
  readonly signatureKey: SshPublicKey;
  readonly comment: string;
}

const CERTIFICATE_ALGORITHM_OF: Record<SshPublicKeyAlgorithm, SshCertificateAlgorithm> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
};
const SUBJECT_ALGORITHM_OF = new Map<string, SshPublicKeyAlgorithm>(
  Object.entries(CERTIFICATE_ALGORITHM_OF).map(([key, cert]) => [cert, key as SshPublicKeyAlgorithm]),
);
const CERTIFICATE_TYPE_USER = 1;
const CERTIFICATE_TYPE_HOST = 2;
const NONCE_LENGTH = 32;
const ED25519_KEY_LENGTH = 32;
const P256_COORDINATE_LENGTH = 32;
const MAX_LINE_LENGTH = 16 * 1024;
const LATEST_DATE_MS = 8.64e15;
const UINT64_LIMIT = 1n << 64n;

function isSupportedKeyAlgorithm(name: string): name is SshPublicKeyAlgorithm {
  return Object.hasOwn(CERTIFICATE_ALGORITHM_OF, name);
}

function invalid(message: string): CaError {
  return new CaError('INVALID_ARGUMENT', message);
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function makeSshPublicKey(
  algorithm: SshPublicKeyAlgorithm,
  blob: Buffer,
  key: KeyObject,
  comment: string,
): SshPublicKey {
  return { algorithm, blob, key, comment, fingerprint: fingerprintOf(blob) };
}

/** Reads the key fields that follow the algorithm name in a key blob or a certificate. */
function readPublicKeyFields(reader: SshWireReader, algorithm: SshPublicKeyAlgorithm): KeyObject {
  if (algorithm === 'ssh-ed25519') {
    const raw = reader.readString();
    if (raw.length !== ED25519_KEY_LENGTH) throw reader.malformed('Ed25519 key is not 32 bytes');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(raw) }, format: 'jwk' });
  }
  const curve = reader.readUtf8();
  if (curve !== 'nistp256') throw reader.malformed(`curve "${curve}" does not match ${algorithm}`);
  // RFC 5656 §3.1: Q is an uncompressed SEC1 point.
  const point = reader.readString();
  if (point.length !== 1 + 2 * P256_COORDINATE_LENGTH || point[0] !== 0x04) {
    throw reader.malformed('P-256 point is not an uncompressed 65-byte point');
  }
  const x = point.subarray(1, 1 + P256_COORDINATE_LENGTH);
  const y = point.subarray(1 + P256_COORDINATE_LENGTH);
  try {
    return createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: base64url(x), y: base64url(y) },
      format: 'jwk',
    });
  } catch (cause) {
    throw new CaError('INVALID_ARGUMENT', 'malformed SSH public key: point is not on P-256', { cause });
  }
}

function publicKeyFromBlob(blob: Buffer, comment: string, what: string): SshPublicKey {
  const reader = new SshWireReader(blob, what);
  const algorithm = reader.readUtf8();
  if (!isSupportedKeyAlgorithm(algorithm))
    throw invalid(`unsupported SSH key type "${algorithm}" in ${what}`);
  const key = readPublicKeyFields(reader, algorithm);
  reader.expectEnd();
  return makeSshPublicKey(algorithm, blob, key, comment);
}

/** Builds the SSH form of a Node key: Ed25519 or ECDSA P-256. */
/**
 * A client's key (spki.ts) as SSH names it, from its bytes: its KeyObject is asked for only when the SSH
 * key's is (a hardware key's attestation), so a login does not import the key a second way.
 */
export function sshPublicKeyOfClientKey(client: ClientPublicKey): SshPublicKey {
  const algorithm = client.kind === 'ed25519' ? 'ssh-ed25519' : 'ecdsa-sha2-nistp256';
  const blob =
    client.kind === 'ed25519'
      ? Buffer.concat([sshString('ssh-ed25519'), sshString(client.publicBytes)])
      : Buffer.concat([
          sshString('ecdsa-sha2-nistp256'),
          sshString('nistp256'),
          sshString(client.publicBytes),
        ]);
  return {
    algorithm,
    blob,
    get key() {
      return client.key;
    },
    comment: '',
    fingerprint: fingerprintOf(blob),
  };
}

export function sshPublicKeyFromKeyObject(key: KeyObject, comment = ''): SshPublicKey {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = publicKey.export({ format: 'jwk' });
  if (publicKey.asymmetricKeyType === 'ed25519' && jwk.x !== undefined) {
    const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.from(jwk.x, 'base64url'))]);
    return makeSshPublicKey('ssh-ed25519', blob, publicKey, comment);
  }
  if (
    publicKey.asymmetricKeyType === 'ec' &&
    jwk.crv === 'P-256' &&
    jwk.x !== undefined &&
    jwk.y !== undefined
  ) {
    const point = Buffer.concat([
      Buffer.of(0x04),
      Buffer.from(jwk.x, 'base64url'),
      Buffer.from(jwk.y, 'base64url'),
    ]);
    const blob = Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(point)]);
    return makeSshPublicKey('ecdsa-sha2-nistp256', blob, publicKey, comment);
  }
  throw invalid(
    `unsupported key for SSH: ${publicKey.asymmetricKeyType ?? 'unknown'} (need Ed25519 or P-256)`,
  );
}

interface KeyLine {
  algorithm: string;
  blob: Buffer;
  comment: string;
}

/** `<algorithm> <base64 blob> [comment]`; authorized_keys options before the algorithm are not accepted. */
function splitKeyLine(line: string, what: string): KeyLine {
  const trimmed = line.trim();
  if (trimmed.length === 0) throw invalid(`empty ${what}`);
  if (trimmed.length > MAX_LINE_LENGTH) throw invalid(`${what} is longer than ${MAX_LINE_LENGTH} characters`);
  if (/[\r\n\0]/.test(trimmed)) throw invalid(`${what} must be a single line`);
  const match = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(trimmed);
  if (match === null) throw invalid(`${what} must be "<type> <base64> [comment]"`);
  const [, algorithm = '', encoded = '', comment = ''] = match;
  const blob = Buffer.from(encoded, 'base64');
  // Buffer.from skips characters it does not understand; insist on canonical base64 instead.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || blob.toString('base64') !== encoded) {
    throw invalid(`${what} is not valid base64`);
  }
  return { algorithm, blob, comment };
}

export function parseSshPublicKey(authorizedKeysLine: string): SshPublicKey {
  const { algorithm, blob, comment } = splitKeyLine(authorizedKeysLine, 'SSH public key');
  if (SUBJECT_ALGORITHM_OF.has(algorithm)) throw invalid('expected an SSH public key, got a certificate');
  if (!isSupportedKeyAlgorithm(algorithm)) {
    throw invalid(`unsupported SSH key type "${algorithm}" (supported: ssh-ed25519, ecdsa-sha2-nistp256)`);
  }
  const key = publicKeyFromBlob(blob, comment, 'SSH public key');
  if (key.algorithm !== algorithm) {
    throw invalid(`SSH public key line says ${algorithm} but the key is ${key.algorithm}`);
  }
  return key;
}

/**
 * parseSshPublicKey for a line that may carry a key already read (a login's SSH key is most often its TLS
 * key): when the line's blob and algorithm are `known`'s, `known`'s key object, checked on its curve when it
 * was read, is taken instead of importing the same point again. Any other line is parsed in full.
 */
export function parseSshPublicKeyOf(authorizedKeysLine: string, known: SshPublicKey): SshPublicKey {
  const { algorithm, blob, comment } = splitKeyLine(authorizedKeysLine, 'SSH public key');
  if (algorithm === known.algorithm && blob.equals(known.blob)) {
    // known's KeyObject, when it is asked for (sshPublicKeyOfClientKey makes it at the first ask).
    return {
      algorithm,
      blob,
      get key() {
        return known.key;
      },
      comment,
      fingerprint: known.fingerprint,
    };
  }
  return parseSshPublicKey(authorizedKeysLine);
}

export function sshPublicKeyLine(key: SshPublicKey): string {
  const line = `${key.algorithm} ${key.blob.toString('base64')}`;
  return key.comment === '' ? line : `${line} ${key.comment}`;
}

/** The CA line for sshd's TrustedUserCAKeys (or a `cert-authority` authorized_keys entry). */
export function sshCaPublicKeyLine(authorities: Authorities): string {
  return sshPublicKeyLine(authorities.ssh.publicKey);
}

function compareUtf8(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

function checkOptionNames(
  options: Readonly<Record<string, string>>,
  known: ReadonlySet<string>,
  kind: string,
) {
  for (const [name, value] of Object.entries(options)) {
    if (!isPlainText(name) || /\s/.test(name)) {
      throw invalid(`invalid ${kind} name ${JSON.stringify(name)}`);
    }
    // PROTOCOL.certkeys: custom options carry the author's domain, e.g. my-option@example.com.
    if (!known.has(name) && !name.includes('@')) {
      throw invalid(`${kind} "${name}" is not a standard one and has no @domain suffix`);
    }
    if (typeof value !== 'string') throw invalid(`${kind} "${name}" must have a string value`);
  }
}

/**
 * PROTOCOL.certkeys: options are (name, data) pairs in lexical order of name, where data is empty for a
 * flag and otherwise holds the value as an SSH string, as OpenSSH writes it.
 */
function encodeOptions(options: Readonly<Record<string, string>>): Buffer {
  const names = Object.keys(options).sort(compareUtf8);
  return Buffer.concat(
    names.flatMap((name) => {
      const value = options[name] ?? '';
      return [sshString(name), sshString(value === '' ? Buffer.alloc(0) : sshString(value))];
    }),
  );
}

function decodeOptions(encoded: Buffer, what: string): Record<string, string> {
  const reader = new SshWireReader(encoded, what);
  const entries: [string, string][] = [];
  let previous: string | undefined;
  while (!reader.atEnd) {
    const name = reader.readUtf8();
    if (previous !== undefined && compareUtf8(previous, name) >= 0) {
      throw reader.malformed(`"${name}" is out of lexical order or repeated`);
    }
    previous = name;
    const data = reader.readString();
    if (data.length === 0) {
      entries.push([name, '']);
      continue;
    }
    const valueReader = new SshWireReader(data, `${what} "${name}"`);
    entries.push([name, valueReader.readUtf8()]);
    valueReader.expectEnd();
  }
  return Object.fromEntries(entries);
}

function decodeNameList(encoded: Buffer, what: string): string[] {
  const reader = new SshWireReader(encoded, what);
  const names: string[] = [];
  while (!reader.atEnd) names.push(reader.readUtf8());
  return names;
}

function toSshTime(date: Date, field: string): bigint {
  const milliseconds = date.getTime();
  if (!Number.isFinite(milliseconds) || milliseconds < 0) throw invalid(`${field} is not a valid time`);
  return BigInt(Math.floor(milliseconds / 1000));
}

function fromSshTime(seconds: bigint): Date {
  const milliseconds = seconds * 1000n;
  return new Date(milliseconds > BigInt(LATEST_DATE_MS) ? LATEST_DATE_MS : Number(milliseconds));
}

function randomSerial(): bigint {
  for (;;) {
    const serial = randomPooled(8).readBigUInt64BE();
    if (serial !== 0n) return serial;
  }
}

/** RFC 4251 §5 mpint of a non-negative big-endian integer. */
function mpint(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start += 1;
  const digits = magnitude.subarray(start);
  const needsSignByte = digits.length > 0 && (digits[0]! & 0x80) !== 0;
  return sshString(needsSignByte ? Buffer.concat([Buffer.of(0), digits]) : digits);
}

/** The signature blob of RFC 8709 §6 (Ed25519) or RFC 5656 §3.1.2 (ECDSA). */
async function signAsSsh(ca: SshUserCertificateAuthority, data: Buffer): Promise<Buffer> {
  const algorithm = ca.publicKey.algorithm;
  if (algorithm === 'ssh-ed25519') {
    return Buffer.concat([sshString(algorithm), sshString(await signInPool(null, data, ca.privateKey))]);
  }
  const rs = await signInPool('sha256', data, { key: ca.privateKey, dsaEncoding: 'ieee-p1363' });
  const ecdsaSignature = Buffer.concat([
    mpint(rs.subarray(0, P256_COORDINATE_LENGTH)),
    mpint(rs.subarray(P256_COORDINATE_LENGTH)),
  ]);
  return Buffer.concat([sshString(algorithm), sshString(ecdsaSignature)]);
}

function leftPad(bytes: Buffer, length: number): Buffer {
  return Buffer.concat([Buffer.alloc(length - bytes.length), bytes]);
}

function verifySshSignature(signer: SshPublicKey, data: Buffer, signatureBlob: Buffer): boolean {
  try {
    const reader = new SshWireReader(signatureBlob, 'SSH signature');
    const algorithm = reader.readUtf8();
    const signature = reader.readString();
    reader.expectEnd();
    if (algorithm !== signer.algorithm) return false;
    if (algorithm === 'ssh-ed25519') return verify(null, data, signer.key, signature);
    const rsReader = new SshWireReader(signature, 'ECDSA signature');
    const r = rsReader.readPositiveMpint();
    const s = rsReader.readPositiveMpint();
    rsReader.expectEnd();
    if (r.length > P256_COORDINATE_LENGTH || s.length > P256_COORDINATE_LENGTH) return false;
    const rs = Buffer.concat([leftPad(r, P256_COORDINATE_LENGTH), leftPad(s, P256_COORDINATE_LENGTH)]);
    return verify('sha256', data, { key: signer.key, dsaEncoding: 'ieee-p1363' }, rs);
  } catch (error) {
    if (error instanceof CaError) return false;
    throw error;
  }
}

function checkText(value: string, field: string): void {
  if (!isPlainText(value)) {
    throw invalid(`${field} must be non-empty text without control characters`);
  }
}

/**
 * Signs an OpenSSH user (or host) certificate (PROTOCOL.certkeys "Certificates"); returns its one-line form.
 * The request is checked before anything is signed; the signature is made on the thread pool.
 */
export async function signSshUserCertificate(request: SshUserCertificateRequest): Promise<string> {
  const subject =
    typeof request.publicKey === 'string' ? parseSshPublicKey(request.publicKey) : request.publicKey;
  checkText(request.keyId, 'key id');
  if (request.principals.length === 0) throw invalid('at least one principal is required');
  for (const principal of request.principals) checkText(principal, 'principal');
  const validAfter = toSshTime(request.validAfter, 'validAfter');
  const validBefore = toSshTime(request.validBefore, 'validBefore');
  if (validBefore <= validAfter) throw invalid('validBefore must be later than validAfter');
  const serial = request.serial ?? randomSerial();
  if (serial < 0n || serial >= UINT64_LIMIT) throw invalid('serial must fit in an unsigned 64-bit integer');

  const host = request.certificateType === 'host';
  const criticalOptions = request.criticalOptions ?? {};
  checkOptionNames(criticalOptions, KNOWN_CRITICAL_OPTIONS, 'critical option');
  checkOptionNames(request.extensions, KNOWN_EXTENSIONS, 'extension');
  if (host && (Object.keys(criticalOptions).length > 0 || Object.keys(request.extensions).length > 0)) {
    throw invalid('a host certificate carries no critical options or extensions');
  }
  const standardExtensions = host ? [] : (request.standardExtensions ?? SSH_STANDARD_USER_EXTENSIONS);
  const extensions = {
    ...Object.fromEntries(standardExtensions.map((name): [string, string] => [name, ''])),
    ...request.extensions,
  };

  const certificateAlgorithm = CERTIFICATE_ALGORITHM_OF[subject.algorithm];
  // The certificate carries the subject's key fields without the key's own algorithm name.
  const subjectKeyFields = subject.blob.subarray(sshString(subject.algorithm).length);
  const signedPart = Buffer.concat([
    sshString(certificateAlgorithm),
    sshString(randomPooled(NONCE_LENGTH)),
    subjectKeyFields,
    sshUint64(serial),
    sshUint32(host ? CERTIFICATE_TYPE_HOST : CERTIFICATE_TYPE_USER),
    sshString(request.keyId),
    sshString(Buffer.concat(request.principals.map((principal) => sshString(principal)))),
    sshUint64(validAfter),
    sshUint64(validBefore),
    sshString(encodeOptions(criticalOptions)),
    sshString(encodeOptions(extensions)),
    sshString(''), // reserved
    sshString(request.ca.publicKey.blob),
  ]);
  const certificate = Buffer.concat([signedPart, sshString(await signAsSsh(request.ca, signedPart))]);
  return `${certificateAlgorithm} ${certificate.toString('base64')} ${request.keyId}`;
}

export interface ParseSshCertificateOptions {
  /** When given, a certificate signed by any other key is rejected with UNAUTHENTICATED. */
  trustedCa?: SshPublicKey;
}

/**
 * Decodes a certificate line and verifies its signature against the signature key it names (and, with
 * `trustedCa`, that this key is ours). Malformed input is INVALID_ARGUMENT, a bad signature UNAUTHENTICATED.
 * Validity times are returned, not enforced.
 */
export function parseSshCertificate(line: string, options: ParseSshCertificateOptions = {}): SshCertificate {
  const { algorithm, blob, comment } = splitKeyLine(line, 'SSH certificate');
  const subjectAlgorithm = SUBJECT_ALGORITHM_OF.get(algorithm);
  if (subjectAlgorithm === undefined) throw invalid(`unsupported SSH certificate type "${algorithm}"`);

  const reader = new SshWireReader(blob, 'SSH certificate');
  if (reader.readUtf8() !== algorithm) throw reader.malformed(`the blob is not a ${algorithm}`);
  const nonce = reader.readString();
  const keyFieldsStart = reader.position;
  const subjectKey = readPublicKeyFields(reader, subjectAlgorithm);
  const subjectBlob = Buffer.concat([
    sshString(subjectAlgorithm),
    blob.subarray(keyFieldsStart, reader.position),
  ]);
  const serial = reader.readUint64();
  const typeCode = reader.readUint32();
  if (typeCode !== CERTIFICATE_TYPE_USER && typeCode !== CERTIFICATE_TYPE_HOST) {
    throw reader.malformed(`unknown certificate type ${typeCode}`);
  }
  const keyId = reader.readUtf8();
  const principals = decodeNameList(reader.readString(), 'SSH certificate principals');
  const validAfter = fromSshTime(reader.readUint64());
  const validBefore = fromSshTime(reader.readUint64());
  const criticalOptions = decodeOptions(reader.readString(), 'SSH certificate critical options');
  const extensions = decodeOptions(reader.readString(), 'SSH certificate extensions');
  reader.readString(); // reserved
  const signatureKey = publicKeyFromBlob(reader.readString(), '', 'SSH certificate signature key');
  const signedLength = reader.position;
  const signature = reader.readString();
  reader.expectEnd();

  if (!verifySshSignature(signatureKey, blob.subarray(0, signedLength), signature)) {
    throw new CaError('UNAUTHENTICATED', 'SSH certificate signature does not verify');
  }
  if (options.trustedCa !== undefined && !options.trustedCa.blob.equals(signatureKey.blob)) {
    throw new CaError(
      'UNAUTHENTICATED',
      `SSH certificate is signed by ${signatureKey.fingerprint}, not our CA`,
    );
  }
  return {
    algorithm: algorithm as SshCertificateAlgorithm,
    certificateType: typeCode === CERTIFICATE_TYPE_USER ? 'user' : 'host',
    nonce,
    publicKey: makeSshPublicKey(subjectAlgorithm, subjectBlob, subjectKey, ''),
    serial,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    comment,
  };
}
