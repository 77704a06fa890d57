// The client's SPKI key: the fixed-header fast path reads exactly what OpenSSL's decoder reads, checks the
// point is on its curve, and every other input is refused as INVALID_ARGUMENT (CaError), never thrown raw.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CaError } from './errors';
import { sshPublicKeyFromKeyObject, sshPublicKeyOfClientKey } from './ssh';
import { parseClientPublicKey, spkiDerOfPem } from './spki';

const pemOf = (der: Buffer) =>
  `-----BEGIN PUBLIC KEY-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END PUBLIC KEY-----\n`;
const spkiOf = (kind: 'ec' | 'ed25519') =>
  (kind === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('ed25519')
  ).publicKey.export({ type: 'spki', format: 'der' });

const refused = (pem: string) => {
  try {
    parseClientPublicKey(pem);
  } catch (error) {
    return error instanceof CaError && error.code === 'INVALID_ARGUMENT';
  }
  return false;
};

describe('parseClientPublicKey', () => {
  it('reads P-256 and Ed25519 keys as OpenSSL does, keeping their DER', () => {
    for (const kind of ['ec', 'ed25519'] as const) {
      for (let i = 0; i < 20; i++) {
        const der = spkiOf(kind);
        const parsed = parseClientPublicKey(pemOf(der));
        expect(parsed.kind).toBe(kind === 'ec' ? 'ecdsa-p256' : 'ed25519');
        expect(parsed.spkiDer.equals(der)).toBe(true);
        expect(parsed.key.export({ type: 'spki', format: 'der' }).equals(der)).toBe(true);
      }
    }
    // As Node writes PEM (64-column lines), and with CRLF line ends.
    const der = spkiOf('ec');
    const nodePem = createPublicKey({ key: der, format: 'der', type: 'spki' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    expect(parseClientPublicKey(nodePem).spkiDer.equals(der)).toBe(true);
    expect(parseClientPublicKey(nodePem.replace(/\n/g, '\r\n')).spkiDer.equals(der)).toBe(true);
  });

  it('refuses a point off the curve, a short key, other curves and kinds, and private keys', () => {
    const der = Buffer.from(spkiOf('ec'));
    der[der.length - 1]! ^= 1; // y changed: not on P-256
    expect(refused(pemOf(der))).toBe(true);
    expect(refused(pemOf(spkiOf('ec').subarray(0, 90)))).toBe(true);
    expect(refused(pemOf(spkiOf('ed25519').subarray(0, 40)))).toBe(true);
    for (const other of [
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
      generateKeyPairSync('x25519').publicKey,
    ]) {
      expect(refused(other.export({ type: 'spki', format: 'pem' }).toString())).toBe(true);
    }
    const privatePem = generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(refused(privatePem)).toBe(true);
    expect(refused('')).toBe(true);
    expect(refused('-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n')).toBe(true);
  });

  it('takes a compressed P-256 point through the general decoder, as the same key', () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    const jwk = key.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x ?? '', 'base64url');
    const y = Buffer.from(jwk.y ?? '', 'base64url');
    const compressed = Buffer.concat([
      Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
      Buffer.from([(y[y.length - 1]! & 1) === 1 ? 0x03 : 0x02]),
      x,
    ]);
    const parsed = parseClientPublicKey(pemOf(compressed));
    expect(parsed.kind).toBe('ecdsa-p256');
    const reread = createPublicKey({ key: parsed.spkiDer, format: 'der', type: 'spki' }).export({
      format: 'jwk',
    });
    expect(reread).toEqual(jwk);
  });

  it('answers any bytes in a PUBLIC KEY block with a key or INVALID_ARGUMENT, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        const pem = pemOf(Buffer.from(bytes));
        try {
          const parsed = parseClientPublicKey(pem);
          return parsed.spkiDer.length > 0;
        } catch (error) {
          return error instanceof CaError && error.code === 'INVALID_ARGUMENT';
        }
      }),
      { numRuns: 500 },
    );
    // Bytes behind a valid header: on the curve or refused.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (xy) => {
        const der = Buffer.concat([
          Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
          Buffer.from([4]),
          Buffer.from(xy),
        ]);
        return refused(pemOf(der));
      }),
      { numRuns: 200 },
    );
  });

  it("names the key in SSH from its bytes as from its KeyObject, fast path and decoder's alike", () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    const jwk = key.export({ format: 'jwk' });
    const y = Buffer.from(jwk.y ?? '', 'base64url');
    const compressed = Buffer.concat([
      Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
      Buffer.from([(y[y.length - 1]! & 1) === 1 ? 0x03 : 0x02]),
      Buffer.from(jwk.x ?? '', 'base64url'),
    ]);
    for (const der of [spkiOf('ec'), spkiOf('ed25519'), compressed]) {
      const parsed = parseClientPublicKey(pemOf(der));
      const ssh = sshPublicKeyOfClientKey(parsed);
      const expected = sshPublicKeyFromKeyObject(createPublicKey({ key: der, format: 'der', type: 'spki' }));
      expect({ ...ssh, key: undefined }).toEqual({ ...expected, key: undefined });
      expect(ssh.key.export({ type: 'spki', format: 'der' })).toEqual(parsed.spkiDer);
    }
  });

  it('finds the DER of exactly one PUBLIC KEY block', () => {
    const der = spkiOf('ed25519');
    expect(spkiDerOfPem(pemOf(der))?.equals(der)).toBe(true);
    expect(spkiDerOfPem(pemOf(der) + pemOf(der))).toBeUndefined();
    expect(spkiDerOfPem(`junk\n${pemOf(der)}`)).toBeUndefined();
  });
});
