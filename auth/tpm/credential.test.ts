import {
  constants,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { kdfa, makeCredential } from './credential';
import { TpmFormatError } from './errors';
import { TpmReader } from './marshal';
import { TPMA_OBJECT, TPM_ALG, parseTpmtPublic, tpmName } from './structures';
import type { TpmtPublic } from './structures';
import { softwareAk } from './test-support';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const h = (s: string) => Buffer.from(s, 'hex');

/** An independent ActivateCredential (Part 1 §24.4) with the EK private key. */
function activate(ekPrivate: KeyObject, akName: Uint8Array, credential: Uint8Array, secret: Uint8Array) {
  const seed = privateDecrypt(
    {
      key: ekPrivate,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
      oaepLabel: Buffer.from('IDENTITY\0'),
    },
    secret,
  );
  const r = new TpmReader(credential, 'credential');
  const integrity = r.tpm2b(64, 'integrity');
  const encIdentity = r.bytes(r.remaining, 'encIdentity');
  const hmacKey = kdfa(TPM_ALG.SHA256, seed, 'INTEGRITY', new Uint8Array(), new Uint8Array(), 256);
  const expected = createHmac('sha256', hmacKey).update(encIdentity).update(akName).digest();
  if (!timingSafeEqual(expected, integrity)) throw new Error('integrity check failed');
  const symKey = kdfa(TPM_ALG.SHA256, seed, 'STORAGE', akName, new Uint8Array(), 128);
  const d = createDecipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  const plain = Buffer.concat([d.update(encIdentity), d.final()]);
  const p = new TpmReader(plain, 'plain');
  const out = p.tpm2b(64, 'credential');
  p.end('credential');
  return out;
}

describe('KDFa', () => {
  // Expected values from OpenSSL's independent SP800-108 KBKDF (counter mode, HMAC-SHA256, separator
  // and L on), which builds [i]₄ ‖ label ‖ 0x00 ‖ context ‖ [L]₄ as TPM KDFa does:
  //   openssl kdf -keylen 16 -kdfopt digest:SHA256 -kdfopt mac:HMAC -kdfopt hexkey:<key>
  //     -kdfopt salt:STORAGE -kdfopt hexinfo:<contextU‖contextV> KBKDF
  const key = h('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const name = h('000b0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20');

  it('matches OpenSSL KBKDF (STORAGE 128 bits, INTEGRITY 256 bits, multi-block 640 bits)', () => {
    expect(hex(kdfa(TPM_ALG.SHA256, key, 'STORAGE', name, new Uint8Array(), 128))).toBe(
      '183572815254b6d9b4854251cf94ccf5',
    );
    expect(hex(kdfa(TPM_ALG.SHA256, key, 'INTEGRITY', new Uint8Array(), new Uint8Array(), 256))).toBe(
      'bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e',
    );
    // contextU and contextV concatenate; a label already NUL-terminated gets no second NUL.
    expect(hex(kdfa(TPM_ALG.SHA256, h('deadbeef'), 'ATH\0', h('aabb'), h('ccdd'), 640))).toBe(
      'd619b02f894b587565a8de56dd7a2151b455b05ff8f5d0cd1d57167ab785b36bc5e90e48a345faacdebd27d80e290d14' +
        '8a8e44da221ed7c5f2c2527178d6e6404288a448319d225a0f9a47921d7ca77f',
    );
  });

  it('clears the excess high bits when bits is not a multiple of 8', () => {
    const full = kdfa(TPM_ALG.SHA256, key, 'X', new Uint8Array(), new Uint8Array(), 12);
    expect(full.length).toBe(2);
    expect(full[0]! & 0xf0).toBe(0);
  });
});

describe('makeCredential', () => {
  const ek = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ak = softwareAk('ecc');
  const akName = tpmName(ak.publicBytes);

  it('is recovered by an independent ActivateCredential with the EK and the same AK name', () => {
    const secretValue = randomBytes(32);
    const made = makeCredential({ ekPublic: ek.publicKey, akName, credential: secretValue });
    expect(made.secret.length).toBe(256);
    expect(made.credential.length).toBe(2 + 32 + 2 + 32);
    expect(hex(activate(ek.privateKey, akName, made.credential, made.secret))).toBe(hex(secretValue));
  });

  it('fails the integrity check for another AK name', () => {
    const made = makeCredential({ ekPublic: ek.publicKey, akName, credential: randomBytes(16) });
    const other = tpmName(softwareAk('ecc').publicBytes);
    expect(() => activate(ek.privateKey, other, made.credential, made.secret)).toThrow(/integrity/);
  });

  it('takes the EK as TPMT_PUBLIC (template L-1)', () => {
    const n = Buffer.from(ek.publicKey.export({ format: 'jwk' }).n!, 'base64url');
    const ekPublic: TpmtPublic = {
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt,
      authPolicy: new Uint8Array(32),
      symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB },
      scheme: { scheme: TPM_ALG.NULL },
      keyBits: 2048,
      exponent: 0,
      unique: n,
    };
    const made = makeCredential({ ekPublic, akName, credential: Uint8Array.of(1, 2, 3) });
    expect([...activate(ek.privateKey, akName, made.credential, made.secret)]).toEqual([1, 2, 3]);
  });

  it('refuses an oversize or empty credential, a malformed name and a non-RSA EK', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const cases = [
      { ekPublic: ek.publicKey, akName, credential: new Uint8Array(33) },
      { ekPublic: ek.publicKey, akName, credential: new Uint8Array(0) },
      { ekPublic: ek.publicKey, akName: akName.subarray(0, 20), credential: new Uint8Array(8) },
      { ekPublic: ek.publicKey, akName: new Uint8Array(0), credential: new Uint8Array(8) },
      { ekPublic: ec, akName, credential: new Uint8Array(8) },
      { ekPublic: parseTpmtPublic(ak.publicBytes, 'x'), akName, credential: new Uint8Array(8) },
    ];
    for (const input of cases) expect(() => makeCredential(input)).toThrow(TpmFormatError);
  });
});
