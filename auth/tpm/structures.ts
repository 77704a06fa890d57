// TPM 2.0 structures (TPM 2.0 Part 2) that the server reads: TPMT_PUBLIC (RSA and ECC), the Name of an
// object, TPMS_ATTEST (with TPMS_QUOTE_INFO) and TPMT_SIGNATURE (ECDSA, RSASSA, RSAPSS). Parsers are pure
// functions on bytes that return a value or throw a TpmFormatError; encoders are their exact inverse
// (parse(encode(x)) deep-equals x, encode(parse(b)) equals b).
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { TpmFormatError } from './errors';
import { TpmReader, TpmWriter } from './marshal';

/** TPM_ALG_ID values (Part 2 §6.3) used here. */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  CAMELLIA: 0x0026,
  CFB: 0x0043,
  MGF1: 0x0007,
} as const;

/** TPM_ECC_CURVE values. */
export const TPM_ECC = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

/** Node digest name and size per TPM hash algorithm. */
export const HASHES: ReadonlyMap<number, { name: string; size: number }> = new Map([
  [TPM_ALG.SHA1, { name: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64 }],
]);

const MAX_DIGEST = 64; // sizeof(TPMU_HA)
const MAX_NAME = 66; // sizeof(TPMU_NAME): TPMT_HA
const MAX_DATA = 66; // sizeof(TPMT_HA)
const MAX_RSA_BYTES = 512;
const MAX_ECC_BYTES = 66;
const MAX_PCR_BANKS = 16;
const MAX_PCR_SELECT = 32;

/** TPMT_SYM_DEF_OBJECT: keyBits and mode only when algorithm is not TPM_ALG_NULL. */
export type SymDef =
  { algorithm: typeof TPM_ALG.NULL } | { algorithm: number; keyBits: number; mode: number };
/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME: hashAlg when the scheme has one, count for ECDAA. */
export interface Scheme {
  scheme: number;
  hashAlg?: number;
  count?: number;
}

interface PublicCommon {
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  symmetric: SymDef;
  scheme: Scheme;
}
export interface RsaPublic extends PublicCommon {
  type: typeof TPM_ALG.RSA;
  keyBits: number;
  /** 0 means 65537. */
  exponent: number;
  /** The modulus. */
  unique: Uint8Array;
}
export interface EccPublic extends PublicCommon {
  type: typeof TPM_ALG.ECC;
  curveId: number;
  kdf: Scheme;
  unique: { x: Uint8Array; y: Uint8Array };
}
export type TpmtPublic = RsaPublic | EccPublic;

const SYM_OBJECT_ALGS = new Set<number>([TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA]);
const SCHEMES_WITH_HASH = new Set<number>([
  TPM_ALG.RSASSA,
  TPM_ALG.RSAPSS,
  TPM_ALG.OAEP,
  TPM_ALG.ECDSA,
  TPM_ALG.ECDH,
  TPM_ALG.ECDAA,
  TPM_ALG.SM2,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.ECMQV,
]);
const KDF_SCHEMES = new Set<number>([
  TPM_ALG.MGF1,
  TPM_ALG.KDF1_SP800_56A,
  TPM_ALG.KDF2,
  TPM_ALG.KDF1_SP800_108,
]);

function readSymDef(r: TpmReader): SymDef {
  const algorithm = r.u16('symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return { algorithm };
  if (!SYM_OBJECT_ALGS.has(algorithm)) r.fail(`unknown symmetric algorithm 0x${algorithm.toString(16)}`);
  return { algorithm, keyBits: r.u16('symmetric.keyBits'), mode: r.u16('symmetric.mode') };
}

/** `rsa`: TPMT_RSA_SCHEME, where RSAES (no hash) is allowed too. */
function readScheme(r: TpmReader, what: string, known: ReadonlySet<number>, rsa = false): Scheme {
  const scheme = r.u16(`${what}.scheme`);
  if (scheme === TPM_ALG.NULL || (rsa && scheme === TPM_ALG.RSAES)) return { scheme };
  if (!known.has(scheme)) r.fail(`unknown ${what} 0x${scheme.toString(16)}`);
  const hashAlg = r.u16(`${what}.hashAlg`);
  if (scheme === TPM_ALG.ECDAA) return { scheme, hashAlg, count: r.u16(`${what}.count`) };
  return { scheme, hashAlg };
}

function writeSymDef(w: TpmWriter, s: SymDef): void {
  w.u16(s.algorithm);
  if ('keyBits' in s) w.u16(s.keyBits).u16(s.mode);
}

function writeScheme(w: TpmWriter, s: Scheme): void {
  w.u16(s.scheme);
  if (s.hashAlg !== undefined) w.u16(s.hashAlg);
  if (s.count !== undefined) w.u16(s.count);
}

/** Parses a marshalled TPMT_PUBLIC (no TPM2B size prefix), refusing trailing bytes. */
export function parseTpmtPublic(bytes: Uint8Array, fieldPath: string): TpmtPublic {
  const r: TpmReader = new TpmReader(bytes, fieldPath);
  const type = r.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) r.fail(`unsupported key type 0x${type.toString(16)}`);
  const nameAlg = r.u16('nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b(MAX_DIGEST, 'authPolicy');
  const symmetric = readSymDef(r);
  let out: TpmtPublic;
  if (type === TPM_ALG.RSA) {
    const scheme = readScheme(r, 'scheme', SCHEMES_WITH_HASH, true);
    const keyBits = r.u16('keyBits');
    const exponent = r.u32('exponent');
    const unique = r.tpm2b(MAX_RSA_BYTES, 'unique.rsa');
    out = { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, keyBits, exponent, unique };
  } else {
    const scheme = readScheme(r, 'scheme', SCHEMES_WITH_HASH);
    const curveId = r.u16('curveID');
    const kdf = readScheme(r, 'kdf', KDF_SCHEMES);
    const x = r.tpm2b(MAX_ECC_BYTES, 'unique.ecc.x');
    const y = r.tpm2b(MAX_ECC_BYTES, 'unique.ecc.y');
    out = { type, nameAlg, objectAttributes, authPolicy, symmetric, scheme, curveId, kdf, unique: { x, y } };
  }
  r.end('TPMT_PUBLIC');
  return out;
}

export function encodeTpmtPublic(p: TpmtPublic): Uint8Array {
  const w = new TpmWriter()
    .u16(p.type)
    .u16(p.nameAlg)
    .u32(p.objectAttributes >>> 0)
    .tpm2b(p.authPolicy);
  writeSymDef(w, p.symmetric);
  writeScheme(w, p.scheme);
  if (p.type === TPM_ALG.RSA) {
    w.u16(p.keyBits).u32(p.exponent).tpm2b(p.unique);
  } else {
    w.u16(p.curveId);
    writeScheme(w, p.kdf);
    w.tpm2b(p.unique.x).tpm2b(p.unique.y);
  }
  return w.finish();
}

/** Name = nameAlg (2 bytes) ‖ H_nameAlg(marshalled TPMT_PUBLIC). The bytes must parse as a TPMT_PUBLIC. */
export function tpmName(publicBytes: Uint8Array, fieldPath = 'public'): Uint8Array {
  const { nameAlg } = parseTpmtPublic(publicBytes, fieldPath);
  const hash = HASHES.get(nameAlg);
  if (!hash) throw new TpmFormatError(fieldPath, `nameAlg 0x${nameAlg.toString(16)} is not supported`);
  const digest = createHash(hash.name).update(publicBytes).digest();
  return new TpmWriter().u16(nameAlg).bytes(digest).finish();
}

const CURVES: ReadonlyMap<number, { crv: string; size: number }> = new Map([
  [TPM_ECC.NIST_P256, { crv: 'P-256', size: 32 }],
  [TPM_ECC.NIST_P384, { crv: 'P-384', size: 48 }],
  [TPM_ECC.NIST_P521, { crv: 'P-521', size: 66 }],
]);

/** Curve size in bytes, or undefined for a curve Node is not asked to handle. */
export function curveSize(curveId: number): number | undefined {
  return CURVES.get(curveId)?.size;
}

function leftPad(value: Uint8Array, size: number, fieldPath: string, what: string): Buffer {
  let v = value;
  while (v.length > size && v[0] === 0) v = v.subarray(1);
  if (v.length > size) throw new TpmFormatError(fieldPath, `${what} is longer than the curve`);
  const out = Buffer.alloc(size);
  out.set(v, size - v.length);
  return out;
}

/** The public key of a TPMT_PUBLIC as a Node KeyObject (ECC NIST P-256/384/521 or RSA). */
export function publicKeyOf(p: TpmtPublic, fieldPath = 'public'): KeyObject {
  let jwk: Record<string, string>;
  if (p.type === TPM_ALG.ECC) {
    const curve = CURVES.get(p.curveId);
    if (!curve) throw new TpmFormatError(fieldPath, `curve 0x${p.curveId.toString(16)} is not supported`);
    const x = leftPad(p.unique.x, curve.size, fieldPath, 'x');
    const y = leftPad(p.unique.y, curve.size, fieldPath, 'y');
    jwk = { kty: 'EC', crv: curve.crv, x: x.toString('base64url'), y: y.toString('base64url') };
  } else {
    if (p.unique.length === 0) throw new TpmFormatError(fieldPath, 'the RSA modulus is empty');
    const e = p.exponent === 0 ? 65537 : p.exponent;
    const eBytes = Buffer.from(e.toString(16).padStart(8, '0'), 'hex');
    let start = 0;
    while (start < 3 && eBytes[start] === 0) start++;
    jwk = {
      kty: 'RSA',
      n: Buffer.from(p.unique).toString('base64url'),
      e: eBytes.subarray(start).toString('base64url'),
    };
  }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (error) {
    throw new TpmFormatError(fieldPath, `the public key is invalid (${(error as Error).message})`);
  }
}

export interface PcrSelection {
  hash: number;
  /** The pcrSelect bitmap (sizeofSelect bytes). */
  select: Uint8Array;
}
export interface QuoteInfo {
  pcrSelect: PcrSelection[];
  pcrDigest: Uint8Array;
}
export interface ClockInfo {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}
export interface TpmsAttest {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  /** TPMS_QUOTE_INFO for TPM_ST_ATTEST_QUOTE; for any other type, the attested union left as bytes. */
  attested: { kind: 'quote'; quote: QuoteInfo } | { kind: 'other'; bytes: Uint8Array };
}

/** Parses a marshalled TPMS_ATTEST (contents of TPM2B_ATTEST); the magic must be TPM_GENERATED_VALUE. */
export function parseTpmsAttest(bytes: Uint8Array, fieldPath: string): TpmsAttest {
  const r: TpmReader = new TpmReader(bytes, fieldPath);
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) r.fail(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`);
  const type = r.u16('type');
  const qualifiedSigner = r.tpm2b(MAX_NAME, 'qualifiedSigner');
  const extraData = r.tpm2b(MAX_DATA, 'extraData');
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safeByte = r.u8('clockInfo.safe');
  if (safeByte > 1) r.fail('clockInfo.safe is neither YES nor NO');
  const firmwareVersion = r.u64('firmwareVersion');
  let attested: TpmsAttest['attested'];
  if (type === TPM_ST_ATTEST_QUOTE) {
    const count = r.u32('pcrSelect.count');
    if (count > MAX_PCR_BANKS) r.fail(`pcrSelect.count ${count} is over ${MAX_PCR_BANKS}`);
    const pcrSelect: PcrSelection[] = [];
    for (let i = 0; i < count; i++) {
      const hash = r.u16(`pcrSelect[${i}].hash`);
      const size = r.u8(`pcrSelect[${i}].sizeofSelect`);
      if (size > MAX_PCR_SELECT) r.fail(`pcrSelect[${i}].sizeofSelect ${size} is over ${MAX_PCR_SELECT}`);
      pcrSelect.push({ hash, select: r.bytes(size, `pcrSelect[${i}].pcrSelect`) });
    }
    const pcrDigest = r.tpm2b(MAX_DIGEST, 'pcrDigest');
    r.end('TPMS_ATTEST');
    attested = { kind: 'quote', quote: { pcrSelect, pcrDigest } };
  } else {
    attested = { kind: 'other', bytes: r.bytes(r.remaining, 'attested') };
  }
  const clockInfo = { clock, resetCount, restartCount, safe: safeByte === 1 };
  return { magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested };
}

export function encodeTpmsAttest(a: TpmsAttest): Uint8Array {
  const w = new TpmWriter()
    .u32(a.magic)
    .u16(a.type)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData)
    .u64(a.clockInfo.clock)
    .u32(a.clockInfo.resetCount)
    .u32(a.clockInfo.restartCount)
    .u8(a.clockInfo.safe ? 1 : 0)
    .u64(a.firmwareVersion);
  if (a.attested.kind === 'quote') {
    w.u32(a.attested.quote.pcrSelect.length);
    for (const s of a.attested.quote.pcrSelect) w.u16(s.hash).u8(s.select.length).bytes(s.select);
    w.tpm2b(a.attested.quote.pcrDigest);
  } else {
    w.bytes(a.attested.bytes);
  }
  return w.finish();
}

export type TpmtSignature =
  | { sigAlg: typeof TPM_ALG.ECDSA; hashAlg: number; r: Uint8Array; s: Uint8Array }
  | { sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; hashAlg: number; sig: Uint8Array };

/** Parses a marshalled TPMT_SIGNATURE: ECDSA, RSASSA or RSAPSS. */
export function parseTpmtSignature(bytes: Uint8Array, fieldPath: string): TpmtSignature {
  const r: TpmReader = new TpmReader(bytes, fieldPath);
  const sigAlg = r.u16('sigAlg');
  let out: TpmtSignature;
  if (sigAlg === TPM_ALG.ECDSA) {
    const hashAlg = r.u16('hash');
    out = {
      sigAlg,
      hashAlg,
      r: r.tpm2b(MAX_ECC_BYTES, 'signatureR'),
      s: r.tpm2b(MAX_ECC_BYTES, 'signatureS'),
    };
  } else if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const hashAlg = r.u16('hash');
    out = { sigAlg, hashAlg, sig: r.tpm2b(MAX_RSA_BYTES, 'sig') };
  } else {
    r.fail(`unsupported signature algorithm 0x${sigAlg.toString(16)}`);
  }
  r.end('TPMT_SIGNATURE');
  return out;
}

export function encodeTpmtSignature(s: TpmtSignature): Uint8Array {
  const w = new TpmWriter().u16(s.sigAlg).u16(s.hashAlg);
  if (s.sigAlg === TPM_ALG.ECDSA) w.tpm2b(s.r).tpm2b(s.s);
  else w.tpm2b(s.sig);
  return w.finish();
}
