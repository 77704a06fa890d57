import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { x509 } from '../ca/x509-library';
import { checkAttestationKey, spkiFingerprint, verifyEkCertificate, verifyQuote } from './attestation';
import { TpmFormatError, TpmRefusal } from './errors';
import { TPMA_OBJECT, TPM_ALG, encodeTpmsAttest, encodeTpmtPublic } from './structures';
import { AK_ATTRIBUTES, quoteAttest, quoteBytes, softwareAk } from './test-support';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof TpmRefusal) return error.reason;
    throw error;
  }
  return 'accepted';
}

describe('checkAttestationKey', () => {
  it('accepts ECC/ECDSA and RSA/RSASSA|RSAPSS restricted signing keys', () => {
    for (const kind of ['ecc', 'rsassa', 'rsapss'] as const) {
      const ak = softwareAk(kind);
      expect(checkAttestationKey(ak.publicBytes).name.length).toBe(34);
    }
  });

  it.each([
    ['not restricted', AK_ATTRIBUTES & ~TPMA_OBJECT.restricted],
    ['not sign', AK_ATTRIBUTES & ~TPMA_OBJECT.sign],
    ['decrypt too', AK_ATTRIBUTES | TPMA_OBJECT.decrypt],
    ['not fixedTPM', AK_ATTRIBUTES & ~TPMA_OBJECT.fixedTPM],
    ['not fixedParent', AK_ATTRIBUTES & ~TPMA_OBJECT.fixedParent],
    ['imported', AK_ATTRIBUTES & ~TPMA_OBJECT.sensitiveDataOrigin],
  ])('refuses a key that is %s', (_, attributes) => {
    const ak = softwareAk('ecc', attributes);
    let thrown: unknown;
    try {
      checkAttestationKey(ak.publicBytes);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TpmRefusal);
    expect(thrown).toMatchObject({ reason: 'not-restricted-signing-key', code: 'ACCESS_DENIED' });
    expect((thrown as TpmRefusal).fields.fieldPath).toBe('ak_public');
  });

  it('refuses unsupported algorithms: SHA-1, a NULL scheme, an unknown curve, a short RSA key', () => {
    const ecc = softwareAk('ecc').public;
    const rsa = softwareAk('rsassa').public;
    if (ecc.type !== TPM_ALG.ECC || rsa.type !== TPM_ALG.RSA) throw new Error('kinds');
    const variants = [
      { ...ecc, nameAlg: TPM_ALG.SHA1 },
      { ...ecc, scheme: { scheme: TPM_ALG.NULL } },
      { ...ecc, scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA1 } },
      { ...ecc, curveId: 0x0010 },
      { ...rsa, keyBits: 1024, unique: rsa.unique.subarray(0, 128) },
      { ...rsa, scheme: { scheme: TPM_ALG.RSAES } },
    ];
    for (const v of variants)
      expect(refusal(() => checkAttestationKey(encodeTpmtPublic(v)))).toBe('unsupported-algorithm');
  });

  it('refuses malformed bytes with INVALID_ARGUMENT at the given field path', () => {
    expect(() => checkAttestationKey(Uint8Array.of(0, 0x23), 'device.ak')).toThrow(TpmFormatError);
    expect(() => checkAttestationKey(Uint8Array.of(0, 0x23), 'device.ak')).toThrow(/device\.ak/);
  });
});

describe('verifyQuote', () => {
  const nonce = new Uint8Array(randomBytes(32));

  it.each(['ecc', 'rsassa', 'rsapss'] as const)('accepts a %s quote over the nonce', (kind) => {
    const ak = softwareAk(kind);
    const attest = quoteBytes(nonce);
    const parsed = verifyQuote({ akPublic: ak.publicBytes, attest, signature: ak.sign(attest), nonce });
    expect(parsed).toEqual(quoteAttest(nonce));
    // A checked AK is accepted as well.
    const checked = checkAttestationKey(ak.publicBytes);
    expect(verifyQuote({ akPublic: checked, attest, signature: ak.sign(attest), nonce }).extraData).toEqual(
      nonce,
    );
  });

  it('has a distinct refusal for each failure', () => {
    const ak = softwareAk('ecc');
    const attest = quoteBytes(nonce);
    const signature = ak.sign(attest);
    const input = { akPublic: ak.publicBytes, attest, signature, nonce };
    expect(refusal(() => verifyQuote({ ...input, nonce: randomBytes(32) }))).toBe('nonce-mismatch');
    expect(refusal(() => verifyQuote({ ...input, nonce: nonce.subarray(0, 16) }))).toBe('nonce-mismatch');
    expect(refusal(() => verifyQuote({ ...input, akPublic: softwareAk('ecc').publicBytes }))).toBe(
      'bad-signature',
    );
    const flipped = Uint8Array.from(attest);
    flipped[attest.length - 1]! ^= 1;
    expect(refusal(() => verifyQuote({ ...input, attest: flipped }))).toBe('bad-signature');
    const notTpm = Uint8Array.from(attest);
    notTpm[0] = 0x00;
    expect(refusal(() => verifyQuote({ ...input, attest: notTpm, signature: ak.sign(notTpm) }))).toBe(
      'bad-magic',
    );
    const certify = encodeTpmsAttest(
      quoteAttest(nonce, { type: 0x8017, attested: { kind: 'other', bytes: Uint8Array.of(0, 0, 0, 0) } }),
    );
    expect(refusal(() => verifyQuote({ ...input, attest: certify, signature: ak.sign(certify) }))).toBe(
      'not-a-quote',
    );
    // A signature in another scheme than the AK's (RSASSA by an ECC AK) does not verify.
    expect(refusal(() => verifyQuote({ ...input, signature: softwareAk('rsassa').sign(attest) }))).toBe(
      'bad-signature',
    );
  });
});

describe('verifyEkCertificate', () => {
  const now = new Date();
  const day = 86_400_000;

  async function webKeys(kind: 'rsa' | 'ec') {
    const pair =
      kind === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const alg =
      kind === 'rsa'
        ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
        : { name: 'ECDSA', namedCurve: 'P-256' };
    const der = (k: KeyObject, type: 'spki' | 'pkcs8') => k.export({ type, format: 'der' });
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der(pair.privateKey, 'pkcs8'), alg, false, [
      'sign',
    ]);
    const publicKey = await webcrypto.subtle.importKey('spki', der(pair.publicKey, 'spki'), alg, true, [
      'verify',
    ]);
    return { privateKey, publicKey, node: pair.publicKey };
  }

  async function ca(isCa = true, notAfter = new Date(now.getTime() + 365 * day)) {
    const keys = await webKeys('rsa');
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=TPM Manufacturer CA',
      keys,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      notBefore: new Date(now.getTime() - day),
      notAfter,
      extensions: [
        new x509.BasicConstraintsExtension(isCa, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    });
    return { keys, pem: cert.toString('pem'), name: cert.subject };
  }

  async function ekCert(issuer: Awaited<ReturnType<typeof ca>>, kind: 'rsa' | 'ec' = 'rsa', notAfter?: Date) {
    const keys = await webKeys(kind);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: '',
      issuer: issuer.name,
      publicKey: keys.publicKey,
      signingKey: issuer.keys.privateKey,
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      notBefore: new Date(now.getTime() - day),
      notAfter: notAfter ?? new Date('9999-12-31T23:59:59Z'),
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment, true)],
    });
    return { der: new Uint8Array(cert.rawData), key: keys.node };
  }

  it('returns the RSA key and its SPKI fingerprint for a certificate from an allowed CA', async () => {
    const manufacturer = await ca();
    const other = await ca();
    const ek = await ekCert(manufacturer);
    const verified = verifyEkCertificate(ek.der, [other.pem, manufacturer.pem], now);
    expect(verified.fingerprint).toBe(spkiFingerprint(ek.key));
    expect(verified.key.export({ format: 'jwk' }).n).toBe(ek.key.export({ format: 'jwk' }).n);
  });

  it('refuses another CA, a non-CA issuer, expiry at now, an expired CA, and an EC key', async () => {
    const manufacturer = await ca();
    const ek = await ekCert(manufacturer);
    const stranger = await ca();
    expect(refusal(() => verifyEkCertificate(ek.der, [stranger.pem], now))).toBe('ek-certificate-untrusted');
    expect(
      refusal(() => verifyEkCertificate(ek.der, [manufacturer.pem], new Date(now.getTime() - 2 * day))),
    ).toBe('ek-certificate-untrusted');
    const notCa = await ca(false);
    const underNotCa = await ekCert(notCa);
    expect(refusal(() => verifyEkCertificate(underNotCa.der, [notCa.pem], now))).toBe(
      'ek-certificate-untrusted',
    );
    const expiring = await ca(true, new Date(now.getTime() + day));
    const laterEk = await ekCert(expiring);
    expect(
      refusal(() => verifyEkCertificate(laterEk.der, [expiring.pem], new Date(now.getTime() + 2 * day))),
    ).toBe('ek-certificate-untrusted');
    const shortEk = await ekCert(manufacturer, 'rsa', new Date(now.getTime() + day));
    expect(
      refusal(() => verifyEkCertificate(shortEk.der, [manufacturer.pem], new Date(now.getTime() + 2 * day))),
    ).toBe('ek-certificate-untrusted');
    const ecEk = await ekCert(manufacturer, 'ec');
    expect(refusal(() => verifyEkCertificate(ecEk.der, [manufacturer.pem], now))).toBe(
      'ek-certificate-untrusted',
    );
  });

  it('refuses bytes that are not a certificate with INVALID_ARGUMENT', () => {
    expect(() => verifyEkCertificate(Uint8Array.of(0x30, 0x03, 1, 2, 3), [], now)).toThrow(TpmFormatError);
  });
});
