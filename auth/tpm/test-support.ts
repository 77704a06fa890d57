// Test-only: software stand-ins for what a TPM produces (an AK as TPMT_PUBLIC, quotes and their
// signatures), so the parsers and verifiers can be exercised without a TPM. Only *.test.ts import it.
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { TPMA_OBJECT, TPM_ALG, TPM_ECC, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE } from './structures';
import { encodeTpmsAttest, encodeTpmtPublic, encodeTpmtSignature } from './structures';
import type { TpmsAttest, TpmtPublic } from './structures';

export const AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.sign;

export interface SoftwareAk {
  public: TpmtPublic;
  publicBytes: Uint8Array;
  privateKey: KeyObject;
  /** A marshalled TPMT_SIGNATURE over `message` in the AK's scheme. */
  sign(message: Uint8Array): Uint8Array;
}

export function softwareAk(kind: 'ecc' | 'rsassa' | 'rsapss', objectAttributes = AK_ATTRIBUTES): SoftwareAk {
  const common = { nameAlg: TPM_ALG.SHA256, objectAttributes, authPolicy: new Uint8Array(0) };
  const symmetric = { algorithm: TPM_ALG.NULL };
  if (kind === 'ecc') {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const pub: TpmtPublic = {
      type: TPM_ALG.ECC,
      ...common,
      symmetric,
      scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
      curveId: TPM_ECC.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
      unique: { x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') },
    };
    return {
      public: pub,
      publicBytes: encodeTpmtPublic(pub),
      privateKey,
      sign: (message) => {
        const rs = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const [r, s] = [rs.subarray(0, 32), rs.subarray(32)];
        return encodeTpmtSignature({ sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r, s });
      },
    };
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const sigAlg = kind === 'rsassa' ? TPM_ALG.RSASSA : TPM_ALG.RSAPSS;
  const pub: TpmtPublic = {
    type: TPM_ALG.RSA,
    ...common,
    symmetric,
    scheme: { scheme: sigAlg, hashAlg: TPM_ALG.SHA256 },
    keyBits: 2048,
    exponent: 0,
    unique: Buffer.from(publicKey.export({ format: 'jwk' }).n!, 'base64url'),
  };
  const padding =
    kind === 'rsassa'
      ? { padding: constants.RSA_PKCS1_PADDING }
      : { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  return {
    public: pub,
    publicBytes: encodeTpmtPublic(pub),
    privateKey,
    sign: (message) =>
      encodeTpmtSignature({
        sigAlg,
        hashAlg: TPM_ALG.SHA256,
        sig: sign('sha256', message, { key: privateKey, ...padding }),
      }),
  };
}

export function quoteAttest(nonce: Uint8Array, overrides: Partial<TpmsAttest> = {}): TpmsAttest {
  return {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST_ATTEST_QUOTE,
    qualifiedSigner: Uint8Array.of(0x00, 0x0b, ...new Uint8Array(32).fill(7)),
    extraData: nonce,
    clockInfo: { clock: 123456789n, resetCount: 2, restartCount: 0, safe: true },
    firmwareVersion: 0x2019_0708_0000_0000n,
    attested: {
      kind: 'quote',
      quote: {
        pcrSelect: [{ hash: TPM_ALG.SHA256, select: Uint8Array.of(0xff, 0x00, 0x00) }],
        pcrDigest: new Uint8Array(32).fill(9),
      },
    },
    ...overrides,
  };
}

export const quoteBytes = (nonce: Uint8Array, overrides: Partial<TpmsAttest> = {}): Uint8Array =>
  encodeTpmsAttest(quoteAttest(nonce, overrides));

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

/** An AK made by swtpm with `tpm2_createak -G ecc -g sha256 -s ecdsa -f tpmt`, and its Name per tpm2-tools. */
export const SWTPM_AK_PUBLIC = hex(
  '0023 000b 00050072 0000 0010 0018 000b 0003 0010' +
    '0020 1275c387dfd2af197e15aa0f6252d00540052492fff732014b350fda58b6a81e' +
    '0020 627b1ffe8c75a58976c8b6ae8409fa64cdb559b13d792cdf2d3eafa62a971f9f',
);
export const SWTPM_AK_NAME = hex('000b72e9839985606a97ade8f2d0efaa24fbe3fc27b809ce4751faa1e03ccf3fb495');

/** TCG EK template L-1 (RSA 2048), with a modulus of 0x5a bytes. */
export const EK_L1_PUBLIC = hex(
  '0001 000b 000300b2 0020 837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa' +
    '0006 0080 0043 0010 0800 00000000 0100' +
    '5a'.repeat(256),
);
