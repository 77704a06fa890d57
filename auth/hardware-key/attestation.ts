// YubiKey PIV attestation (developers.yubico.com "PIV attestation"; docs.yubico.com "PIV Attestation OID
// Arc"), verified on bytes, without I/O. A card proves that a key was generated on it, with a PIN and a
// touch policy it will enforce, by an attestation certificate for the slot key signed by its f9
// attestation key; the f9 certificate chains to Yubico's PIV root (or, in the lab, to a root the cluster
// adds). Two steps, so the parser can be fuzzed on its own:
//   parsePivAttestation   DER → certificates and Yubico's extensions; malformed bytes are
//                         HardwareKeyFormatError (INVALID_ARGUMENT, with the field path) and nothing else.
//   verifyPivAttestation  the chain, the validity periods, the attested key against the session key, and the
//                         attested policies against the required one; refusals are HardwareKeyRefusal
//                         (ACCESS_DENIED, with a reason), a policy below the required one
//                         PRIVATE_KEY_POLICY_NOT_MET naming the required policy.
import { createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { policyOf, policySatisfies, unmetPolicyMessage } from '../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import { x509 } from '../ca/x509-library';
import { YUBICO_PIV_INTERMEDIATES, YUBICO_PIV_ROOTS } from './yubico-roots';

export const YUBICO_PIV_OID = {
  firmware: '1.3.6.1.4.1.41482.3.3',
  serial: '1.3.6.1.4.1.41482.3.7',
  policy: '1.3.6.1.4.1.41482.3.8',
  formFactor: '1.3.6.1.4.1.41482.3.9',
} as const;

/** YubiKey's PIN policy bytes (1 never, 2 once, 3 always) and touch policy bytes (1 never, 2 always, 3 cached). */
export type PinPolicyName = 'never' | 'once' | 'always' | 'unknown';
export type TouchPolicyName = 'never' | 'always' | 'cached' | 'unknown';

const PIN_POLICIES: Readonly<Record<number, PinPolicyName>> = { 1: 'never', 2: 'once', 3: 'always' };
const TOUCH_POLICIES: Readonly<Record<number, TouchPolicyName>> = { 1: 'never', 2: 'always', 3: 'cached' };

/** Yubico's extensions on the slot's attestation certificate. Firmware before 5 has no serial or form factor. */
export interface YubicoAttestationFacts {
  firmware?: string;
  serial?: number;
  pinPolicy: PinPolicyName;
  touchPolicy: TouchPolicyName;
  formFactor?: number;
  /** From the subject "YubiKey PIV Attestation 9c", when it says one. */
  slot?: string;
}

export interface PivAttestationInput {
  /** The slot key's attestation certificate (YubiKey ATTEST), DER. */
  slotCertificate: Uint8Array;
  /** The card's f9 attestation certificate, DER. */
  attestationCertificate: Uint8Array;
  /** Any further intermediates between f9 and a root, DER. Yubico's own ship with keyport-auth. */
  intermediates?: readonly Uint8Array[];
}

interface ParsedCertificate {
  node: X509Certificate;
  /** Basic constraints as written: undefined when the certificate has none. */
  ca: boolean | undefined;
  /** Key usage as written: undefined when the certificate has none. */
  keyCertSign: boolean | undefined;
  notBefore: Date;
  notAfter: Date;
  fieldPath: string;
}

export interface ParsedPivAttestation {
  slot: ParsedCertificate;
  f9: ParsedCertificate;
  intermediates: ParsedCertificate[];
  facts: YubicoAttestationFacts;
  /** The attested key's SubjectPublicKeyInfo, DER. */
  attestedSpki: Buffer;
}

export class HardwareKeyFormatError extends KeyportError {
  constructor(fieldPath: string, detail: string) {
    super('INVALID_ARGUMENT', `${fieldPath} is not a valid PIV attestation: ${detail}`, { fieldPath });
    this.name = 'HardwareKeyFormatError';
  }
}

export type HardwareKeyRefusalReason =
  /** No path from the attestation to a trusted root, or a signature on it does not verify. */
  | 'untrusted-chain'
  /** A certificate on the path is outside its validity period. */
  | 'expired'
  /** An intermediate is not a CA certificate (basic constraints), or may not sign certificates. */
  | 'not-a-ca'
  /** The attested key is not the session key being certified. */
  | 'key-mismatch';

export class HardwareKeyRefusal extends KeyportError {
  constructor(
    readonly reason: HardwareKeyRefusalReason,
    message: string,
    fieldPath?: string,
  ) {
    super('ACCESS_DENIED', message, fieldPath === undefined ? {} : { fieldPath });
    this.name = 'HardwareKeyRefusal';
  }
}

/** At most this many further intermediates: Yubico's chains need two, which ship with keyport-auth. */
export const MAX_INTERMEDIATES = 4;
const MAX_CHAIN_LENGTH = 8;

function parseCertificate(der: Uint8Array, fieldPath: string): ParsedCertificate {
  if (!(der instanceof Uint8Array) || der.length === 0) throw new HardwareKeyFormatError(fieldPath, 'empty');
  let node: X509Certificate;
  let peculiar: x509.X509Certificate;
  try {
    node = new X509Certificate(Buffer.from(der));
    peculiar = new x509.X509Certificate(Uint8Array.from(der));
  } catch {
    throw new HardwareKeyFormatError(fieldPath, 'not a DER X.509 certificate');
  }
  // Two parsers read the same bytes (OpenSSL verifies signatures, asn1js reads extensions): they must
  // agree on the key and the serial, or one of them read something else.
  let sameKey: boolean;
  try {
    sameKey = Buffer.from(peculiar.publicKey.rawData).equals(
      node.publicKey.export({ type: 'spki', format: 'der' }),
    );
  } catch {
    sameKey = false;
  }
  if (!sameKey || !sameSerial(peculiar.serialNumber, node.serialNumber)) {
    throw new HardwareKeyFormatError(fieldPath, 'the certificate does not read the same in every parser');
  }
  let ca: boolean | undefined;
  let keyCertSign: boolean | undefined;
  try {
    const constraints = peculiar.getExtension(x509.BasicConstraintsExtension);
    ca = constraints === null ? undefined : constraints.ca;
    const usages = peculiar.getExtension(x509.KeyUsagesExtension);
    keyCertSign = usages === null ? undefined : (usages.usages & x509.KeyUsageFlags.keyCertSign) !== 0;
  } catch {
    throw new HardwareKeyFormatError(fieldPath, 'a basic constraints or key usage extension is malformed');
  }
  const notBefore = peculiar.notBefore;
  const notAfter = peculiar.notAfter;
  if (!Number.isFinite(notBefore.getTime()) || !Number.isFinite(notAfter.getTime())) {
    throw new HardwareKeyFormatError(fieldPath, 'the validity period does not parse');
  }
  return { node, ca, keyCertSign, notBefore, notAfter, fieldPath };
}

function sameSerial(left: string, right: string): boolean {
  try {
    return BigInt(`0x${left}`) === BigInt(`0x${right}`);
  } catch {
    return false;
  }
}

function extensionValue(certificate: x509.X509Certificate, oid: string): Uint8Array | undefined {
  const extension = certificate.getExtension(oid);
  return extension === null ? undefined : new Uint8Array(extension.value);
}

/** A DER INTEGER holding a non-negative number below 2^53. */
function derUnsigned(bytes: Uint8Array): number | undefined {
  if (bytes.length < 3 || bytes[0] !== 0x02 || bytes[1] !== bytes.length - 2 || bytes[1]! > 8)
    return undefined;
  const body = bytes.subarray(2);
  if ((body[0]! & 0x80) !== 0) return undefined;
  let value = 0n;
  for (const byte of body) value = (value << 8n) | BigInt(byte);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function yubicoFacts(der: Uint8Array, fieldPath: string): YubicoAttestationFacts {
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(Uint8Array.from(der));
  } catch {
    throw new HardwareKeyFormatError(fieldPath, 'not a DER X.509 certificate');
  }
  const bad = (what: string): never => {
    throw new HardwareKeyFormatError(fieldPath, `Yubico's ${what} extension is malformed`);
  };
  const policy = extensionValue(certificate, YUBICO_PIV_OID.policy);
  if (policy === undefined) {
    throw new HardwareKeyFormatError(
      fieldPath,
      "the certificate has no PIN and touch policy (Yubico's 1.3.6.1.4.1.41482.3.8)",
    );
  }
  if (policy.length !== 2) bad('PIN and touch policy');
  const facts: YubicoAttestationFacts = {
    pinPolicy: PIN_POLICIES[policy[0]!] ?? 'unknown',
    touchPolicy: TOUCH_POLICIES[policy[1]!] ?? 'unknown',
  };
  const firmware = extensionValue(certificate, YUBICO_PIV_OID.firmware);
  if (firmware !== undefined) {
    if (firmware.length !== 3) bad('firmware');
    facts.firmware = Array.from(firmware).join('.');
  }
  const serial = extensionValue(certificate, YUBICO_PIV_OID.serial);
  if (serial !== undefined) facts.serial = derUnsigned(serial) ?? bad('serial');
  const formFactor = extensionValue(certificate, YUBICO_PIV_OID.formFactor);
  if (formFactor !== undefined) {
    if (formFactor.length !== 1) bad('form factor');
    facts.formFactor = formFactor[0]!;
  }
  const slot = /^CN=YubiKey PIV Attestation ([0-9a-f]{2})$/i.exec(certificate.subject)?.[1];
  if (slot !== undefined) facts.slot = slot.toLowerCase();
  return facts;
}

/** Reads the certificates of an attestation and Yubico's extensions; checks nothing about trust. */
export function parsePivAttestation(
  input: PivAttestationInput,
  fieldPath = 'hardware_key_attestation',
): ParsedPivAttestation {
  const intermediates = input.intermediates ?? [];
  if (intermediates.length > MAX_INTERMEDIATES) {
    throw new HardwareKeyFormatError(
      `${fieldPath}.intermediates`,
      `at most ${MAX_INTERMEDIATES} intermediates (Yubico's own ship with keyport-auth)`,
    );
  }
  const slotPath = `${fieldPath}.slot_certificate`;
  const slot = parseCertificate(input.slotCertificate, slotPath);
  const f9 = parseCertificate(input.attestationCertificate, `${fieldPath}.attestation_certificate`);
  return {
    slot,
    f9,
    intermediates: intermediates.map((der, index) =>
      parseCertificate(der, `${fieldPath}.intermediates[${index}]`),
    ),
    facts: yubicoFacts(input.slotCertificate, slotPath),
    attestedSpki: slot.node.publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** The policy an attested key meets: touch "always" or "cached" counts as touch, PIN "once" or "always" as a PIN. */
export function attestedPolicy(facts: YubicoAttestationFacts): PrivateKeyPolicy {
  return policyOf({
    hardware: true,
    touch: facts.touchPolicy === 'always' || facts.touchPolicy === 'cached',
    pin: facts.pinPolicy === 'once' || facts.pinPolicy === 'always',
  });
}

export interface VerifyPivAttestationOptions {
  /** The session key the certificates will name (the Login's TLS key). */
  sessionKey: KeyObject;
  /** The policy the session must meet. */
  required: PrivateKeyPolicy;
  /** The cap's hardware_key.attestation_roots (PEM), trusted besides Yubico's. */
  extraRoots: readonly string[];
  now: Date;
}

export interface VerifiedHardwareKey {
  /** What the key meets (may be more than required). */
  policy: PrivateKeyPolicy;
  facts: YubicoAttestationFacts;
  /** The root the chain ended at: its subject. */
  root: string;
}

interface TrustStore {
  roots: X509Certificate[];
  intermediates: ParsedCertificate[];
}

let yubicoStore: TrustStore | undefined;
function yubico(): TrustStore {
  yubicoStore ??= {
    roots: YUBICO_PIV_ROOTS.map((pem) => new X509Certificate(pem)),
    intermediates: YUBICO_PIV_INTERMEDIATES.map((pem, index) =>
      parseCertificate(new X509Certificate(pem).raw, `yubico intermediate ${index}`),
    ),
  };
  return yubicoStore;
}

function issued(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function within(from: Date, to: Date, now: Date): boolean {
  return from.getTime() <= now.getTime() && now.getTime() <= to.getTime();
}

function extraRootCertificates(pems: readonly string[]): X509Certificate[] {
  const roots: X509Certificate[] = [];
  for (const pem of pems) {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      try {
        roots.push(new X509Certificate(block));
      } catch {
        // The cap's entries were validated when stored; one that no longer parses trusts nothing.
      }
    }
  }
  return roots;
}

/**
 * Checks a parsed attestation: the slot certificate is signed by the f9 certificate, which chains (through
 * the given intermediates and Yubico's) to one of Yubico's PIV roots or the cap's roots; every certificate
 * on the path is within its validity period, and every intermediate is a CA (the f9 certificate may lack
 * basic constraints: YubiKey 4 firmware wrote none, but one that says it is not a CA is refused); the
 * attested key is the session key; its PIN and touch policies meet `required`. Path length constraints are
 * not enforced: the 2016 Yubico root says 0 with the f9 certificate under it, which is why Yubico reissued it.
 */
export function verifyPivAttestation(
  parsed: ParsedPivAttestation,
  options: VerifyPivAttestationOptions,
): VerifiedHardwareKey {
  const { slot, f9 } = parsed;
  const now = options.now;
  const trust = yubico();
  const roots = [...trust.roots, ...extraRootCertificates(options.extraRoots)];

  // 1. The slot certificate is the f9 key's.
  if (!issued(slot.node, f9.node)) {
    throw new HardwareKeyRefusal(
      'untrusted-chain',
      'The attestation is not signed by the card attestation certificate (f9) sent with it.',
      slot.fieldPath,
    );
  }
  if (!within(slot.notBefore, slot.notAfter, now)) {
    throw new HardwareKeyRefusal(
      'expired',
      'The attestation certificate is outside its validity period.',
      slot.fieldPath,
    );
  }

  // 2. From f9 up to a root: each step an issuer among the given intermediates and Yubico's.
  const pool = [...parsed.intermediates, ...trust.intermediates];
  const path: ParsedCertificate[] = [];
  let current: ParsedCertificate = f9;
  let root: X509Certificate | undefined;
  for (;;) {
    checkIntermediate(current, current === f9, now);
    path.push(current);
    const child = current;
    root = roots.find((candidate) => child.node.raw.equals(candidate.raw) || issued(child.node, candidate));
    if (root) break;
    const next = pool.find((candidate) => !path.includes(candidate) && issued(child.node, candidate.node));
    if (!next || path.length >= MAX_CHAIN_LENGTH) {
      throw new HardwareKeyRefusal(
        'untrusted-chain',
        "The hardware key's attestation does not chain to Yubico's PIV attestation root or to a root this cluster trusts (cap hardware_key.attestation_roots).",
        f9.fieldPath,
      );
    }
    current = next;
  }
  if (!within(new Date(root.validFrom), new Date(root.validTo), now)) {
    throw new HardwareKeyRefusal(
      'expired',
      `The attestation root "${root.subject}" is outside its validity period.`,
      f9.fieldPath,
    );
  }

  // 3. The attested key is the key the session's certificates will name.
  const sessionSpki = publicKeyOf(options.sessionKey).export({ type: 'spki', format: 'der' });
  if (!sessionSpki.equals(parsed.attestedSpki)) {
    throw new HardwareKeyRefusal(
      'key-mismatch',
      "The attestation is for another key than this login's public key.",
      slot.fieldPath,
    );
  }

  // 4. The key's PIN and touch policies meet the policy.
  const policy = attestedPolicy(parsed.facts);
  if (!policySatisfies(policy, options.required)) {
    throw new KeyportError(
      'PRIVATE_KEY_POLICY_NOT_MET',
      `${unmetPolicyMessage(options.required)} The attested key has PIN policy "${parsed.facts.pinPolicy}" and touch policy "${parsed.facts.touchPolicy}".`,
      { privateKeyPolicy: options.required, resolvableByRelogin: true },
    );
  }
  return { policy, facts: parsed.facts, root: root.subject };
}

function checkIntermediate(certificate: ParsedCertificate, isF9: boolean, now: Date): void {
  const what = isF9 ? 'The card attestation certificate (f9)' : 'An attestation intermediate';
  if (!within(certificate.notBefore, certificate.notAfter, now)) {
    throw new HardwareKeyRefusal('expired', `${what} is outside its validity period.`, certificate.fieldPath);
  }
  const notCa = isF9 ? certificate.ca === false : certificate.ca !== true;
  if (notCa || certificate.keyCertSign === false) {
    throw new HardwareKeyRefusal(
      'not-a-ca',
      `${what} is not a CA certificate that may sign certificates.`,
      certificate.fieldPath,
    );
  }
}

function publicKeyOf(key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key);
}
