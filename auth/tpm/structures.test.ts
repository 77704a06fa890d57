import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TpmFormatError } from './errors';
import {
  TPMA_OBJECT,
  TPM_ALG,
  TPM_ECC,
  encodeTpmsAttest,
  encodeTpmtPublic,
  encodeTpmtSignature,
  parseTpmsAttest,
  parseTpmtPublic,
  parseTpmtSignature,
  publicKeyOf,
  tpmName,
} from './structures';
import {
  EK_L1_PUBLIC,
  SWTPM_AK_NAME,
  SWTPM_AK_PUBLIC,
  hex as h,
  quoteAttest,
  softwareAk,
} from './test-support';

describe('TPMT_PUBLIC', () => {
  it('parses an AK made by swtpm, re-encodes it byte for byte, and names it as the TPM does', () => {
    const p = parseTpmtPublic(SWTPM_AK_PUBLIC, 'ak_public');
    expect(p).toMatchObject({
      type: TPM_ALG.ECC,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes:
        TPMA_OBJECT.fixedTPM |
        TPMA_OBJECT.fixedParent |
        TPMA_OBJECT.sensitiveDataOrigin |
        TPMA_OBJECT.userWithAuth |
        TPMA_OBJECT.restricted |
        TPMA_OBJECT.sign,
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
      curveId: TPM_ECC.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    });
    expect(encodeTpmtPublic(p)).toEqual(SWTPM_AK_PUBLIC);
    expect(tpmName(SWTPM_AK_PUBLIC)).toEqual(SWTPM_AK_NAME);
    expect(publicKeyOf(p).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('parses the TCG EK template L-1', () => {
    const p = parseTpmtPublic(EK_L1_PUBLIC, 'ek_public');
    expect(p).toMatchObject({
      type: TPM_ALG.RSA,
      objectAttributes:
        TPMA_OBJECT.fixedTPM |
        TPMA_OBJECT.fixedParent |
        TPMA_OBJECT.sensitiveDataOrigin |
        TPMA_OBJECT.adminWithPolicy |
        TPMA_OBJECT.restricted |
        TPMA_OBJECT.decrypt,
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
      scheme: { scheme: TPM_ALG.NULL },
      keyBits: 2048,
      exponent: 0,
    });
    expect(encodeTpmtPublic(p)).toEqual(EK_L1_PUBLIC);
    const name = tpmName(EK_L1_PUBLIC);
    expect(Buffer.from(name.subarray(2))).toEqual(createHash('sha256').update(EK_L1_PUBLIC).digest());
  });

  it('publicKeyOf gives back the same keys (ECC x/y, RSA n with exponent 0 meaning 65537)', () => {
    for (const kind of ['ecc', 'rsassa'] as const) {
      const ak = softwareAk(kind);
      const spki = ak.privateKey.export({ format: 'jwk' });
      const jwk = publicKeyOf(parseTpmtPublic(ak.publicBytes, 'ak_public')).export({ format: 'jwk' });
      if (kind === 'ecc') expect([jwk.x, jwk.y]).toEqual([spki.x, spki.y]);
      else expect([jwk.n, jwk.e]).toEqual([spki.n, 'AQAB']);
    }
  });

  it('left-pads short ECC coordinates and refuses points off the curve', () => {
    const p = parseTpmtPublic(SWTPM_AK_PUBLIC, 'ak_public');
    if (p.type !== TPM_ALG.ECC) throw new Error('not ECC');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => publicKeyOf({ ...p, unique: { x: p.unique.x, y: p.unique.x } })).toThrow(TpmFormatError);
    expect(() => publicKeyOf({ ...p, unique: { x: new Uint8Array(33).fill(1), y: p.unique.y } })).toThrow(
      TpmFormatError,
    );
    expect(publicKey.type).toBe('public');
  });

  it('refuses a truncated, over-long or unknown-type public area', () => {
    expect(() => parseTpmtPublic(SWTPM_AK_PUBLIC.subarray(0, 60), 'ak_public')).toThrow(TpmFormatError);
    expect(() => parseTpmtPublic(Uint8Array.of(...SWTPM_AK_PUBLIC, 0), 'ak_public')).toThrow(/trailing/);
    expect(() => parseTpmtPublic(h('0008 000b 00000000 0000'), 'ak_public')).toThrow(/unsupported key type/);
  });
});

describe('TPMS_ATTEST and TPMT_SIGNATURE', () => {
  it('round-trip a quote, checking magic, safe and trailing bytes', () => {
    const a = quoteAttest(Uint8Array.of(1, 2, 3));
    const bytes = encodeTpmsAttest(a);
    expect(parseTpmsAttest(bytes, 'attest')).toEqual(a);
    expect(() => parseTpmsAttest(Uint8Array.of(...bytes, 0), 'attest')).toThrow(/trailing/);
    const badMagic = Uint8Array.from(bytes);
    badMagic[3] = 0;
    expect(() => parseTpmsAttest(badMagic, 'attest')).toThrow(/magic/);
    const safeAt = 4 + 2 + 2 + 34 + 2 + 3 + 8 + 4 + 4;
    expect(bytes[safeAt]).toBe(1);
    const badSafe = Uint8Array.from(bytes);
    badSafe[safeAt] = 2;
    expect(() => parseTpmsAttest(badSafe, 'attest')).toThrow(/safe/);
  });

  it('keeps the attested union of another type as bytes', () => {
    const a = quoteAttest(new Uint8Array(0), { type: 0x8017, attested: { kind: 'other', bytes: h('0000') } });
    expect(parseTpmsAttest(encodeTpmsAttest(a), 'attest')).toEqual(a);
  });

  it('round-trips ECDSA, RSASSA and RSAPSS signatures and refuses others', () => {
    for (const kind of ['ecc', 'rsassa', 'rsapss'] as const) {
      const sig = softwareAk(kind).sign(Uint8Array.of(1));
      expect(encodeTpmtSignature(parseTpmtSignature(sig, 'signature'))).toEqual(sig);
    }
    expect(() => parseTpmtSignature(h('0005 000b'), 'signature')).toThrow(/unsupported signature/);
  });
});
