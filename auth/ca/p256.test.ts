// isP256Point against OpenSSL: every point OpenSSL makes is accepted, and every change that OpenSSL refuses
// (a coordinate off the curve, a coordinate at or above p, a wrong prefix or length) is refused.
import { ECDH, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isP256Point } from './p256';

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const hex32 = (n: bigint) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

function randomPoint(): Buffer {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'jwk' });
  return Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

function openSslAccepts(point: Uint8Array): boolean {
  try {
    ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'uncompressed');
    return true;
  } catch {
    return false;
  }
}

describe('isP256Point', () => {
  it('accepts the points OpenSSL generates, and the base point', () => {
    for (let i = 0; i < 50; i++) expect(isP256Point(randomPoint())).toBe(true);
    const g = Buffer.from(
      '046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5',
      'hex',
    );
    expect(isP256Point(g)).toBe(true);
  });

  it('refuses what OpenSSL refuses: a changed coordinate, x or y at or above p, a bad prefix or length', () => {
    const point = randomPoint();
    const yChanged = Buffer.from(point);
    yChanged[64]! ^= 1;
    const xChanged = Buffer.from(point);
    xChanged[1]! ^= 0x80;
    // y + p and x + p do not fit 32 bytes for most points; p itself and p − 1 + 1 are the edges.
    const yIsP = Buffer.concat([point.subarray(0, 33), hex32(P)]);
    const xIsP = Buffer.concat([Buffer.of(4), hex32(P), point.subarray(33)]);
    const zero = Buffer.alloc(65);
    zero[0] = 4;
    for (const bad of [yChanged, xChanged, yIsP, xIsP, zero]) {
      expect(openSslAccepts(bad)).toBe(false);
      expect(isP256Point(bad)).toBe(false);
    }
    const compressed = Buffer.concat([Buffer.of(2 + (point[64]! & 1)), point.subarray(1, 33)]);
    expect(isP256Point(compressed)).toBe(false);
    expect(isP256Point(point.subarray(0, 64))).toBe(false);
    expect(isP256Point(Buffer.concat([point, Buffer.of(0)]))).toBe(false);
    const prefix = Buffer.from(point);
    prefix[0] = 6; // hybrid form: refused here, as the SPKI header takes only 04
    expect(isP256Point(prefix)).toBe(false);
  });

  it('agrees with OpenSSL on any 64 bytes behind 04, and on points with one byte changed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (xy) => {
        const point = Buffer.concat([Buffer.of(4), Buffer.from(xy)]);
        return isP256Point(point) === openSslAccepts(point);
      }),
      { numRuns: 300 },
    );
    const point = randomPoint();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const changed = Buffer.from(point);
        changed[at]! ^= flip;
        return isP256Point(changed) === openSslAccepts(changed) && !isP256Point(changed);
      }),
      { numRuns: 200 },
    );
  });
});
