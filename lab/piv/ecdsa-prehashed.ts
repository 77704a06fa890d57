// ECDSA P-256 over a value the host already hashed, as a PIV card signs (SP 800-73-4 Part 2 §3.2.4:
// GENERAL AUTHENTICATE carries the digest, not the message).
//
// node:crypto only signs messages (it hashes them itself) and a JavaScript scalar multiplication would make
// every lab signature cost milliseconds. So OpenSSL makes one signature (r, s') over a fixed message with
// the slot key; its nonce k is recovered from it and reused for the digest we were given:
//   s' = k⁻¹(h + r·d)  ⇒  k⁻¹ = s'·(h + r·d)⁻¹,   s = k⁻¹(e + r·d)   (mod n)
// (r, s) is then an ordinary ECDSA signature over e with R = kG. The helper signature never leaves this
// function (two signatures with one k would give away d), and OpenSSL draws a fresh k for every call.
import { createHash, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** The order of the P-256 group (FIPS 186-4 D.1.2.3). */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HELPER_MESSAGE = new Uint8Array(0);
const HELPER_DIGEST = bigIntOf(createHash('sha256').update(HELPER_MESSAGE).digest());

export interface PrehashSigner {
  /** DER ECDSA-Sig-Value over `digest` (1 to 32 bytes, taken as the integer e of SEC 1 §4.1.3 step 5). */
  sign(digest: Uint8Array): Uint8Array;
}

export function prehashSigner(privateKey: KeyObject): PrehashSigner {
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new Error('a P-256 private key is needed');
  const d = bigIntOf(Buffer.from(jwk.d, 'base64url'));
  return {
    sign(digest) {
      if (digest.length < 1 || digest.length > 32) throw new RangeError('digest must be 1 to 32 bytes');
      const e = bigIntOf(digest) % N;
      for (;;) {
        const helper = sign('sha256', HELPER_MESSAGE, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const r = bigIntOf(helper.subarray(0, 32));
        const sHelper = bigIntOf(helper.subarray(32));
        const denominator = mod(HELPER_DIGEST + r * d);
        if (denominator === 0n) continue;
        const kInverse = mod(sHelper * invert(denominator));
        const s = mod(kInverse * (e + r * d));
        if (s !== 0n) return derSignature(r, s);
      }
    },
  };
}

function mod(a: bigint): bigint {
  const m = a % N;
  return m < 0n ? m + N : m;
}

/** a⁻¹ mod N by the extended Euclidean algorithm (N is prime and a ≠ 0). */
function invert(a: bigint): bigint {
  let [oldR, r] = [mod(a), N];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return mod(oldS);
}

function bigIntOf(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.of(0), bytes]);
  return Buffer.concat([Buffer.of(0x02, bytes.length), bytes]);
}

/** SEQUENCE { INTEGER r, INTEGER s }: at most 72 bytes for P-256, so short-form lengths only. */
export function derSignature(r: bigint, s: bigint): Uint8Array {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return new Uint8Array(Buffer.concat([Buffer.of(0x30, body.length), body]));
}
