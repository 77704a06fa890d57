// TPM2_MakeCredential done by the server (TPM 2.0 Part 1 §24 "Credential Protection", Part 3 §12.6):
// the credential is sealed so that only the TPM holding the EK can recover it, and only if the object
// named akName is loaded in it (ActivateCredential recomputes the HMAC over the Name it holds).
//
//   seed        random, digest size of the EK's nameAlg
//   secret      RSA-OAEP(EK, seed), hash = EK nameAlg, label "IDENTITY\0"
//   symKey      KDFa(nameAlg, seed, "STORAGE", akName, "", EK symmetric keyBits)
//   encIdentity AES-CFB(symKey, IV = 0, TPM2B_DIGEST(credential))
//   hmacKey     KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits)
//   integrity   HMAC_nameAlg(hmacKey, encIdentity ‖ akName)
//   credential  TPM2B_DIGEST(integrity) ‖ encIdentity   (the contents of TPM2B_ID_OBJECT)
import { KeyObject, constants, createCipheriv, createHmac, publicEncrypt, randomBytes } from 'node:crypto';
import { TpmFormatError } from './errors';
import { TpmWriter } from './marshal';
import { HASHES, TPM_ALG, publicKeyOf } from './structures';
import type { TpmtPublic } from './structures';

/**
 * KDFa (Part 1 §11.4.10.2): SP800-108 counter mode with HMAC_hashAlg. Each block is
 * HMAC(key, [i]₄ ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]₄); the label gets one NUL terminator
 * (none added if it already ends in NUL). Output is ⌈bits/8⌉ bytes, the excess high bits of the first
 * byte cleared when bits is not a multiple of 8.
 */
export function kdfa(
  hashAlg: number,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  const hash = HASHES.get(hashAlg);
  if (!hash) throw new RangeError(`KDFa: hash algorithm 0x${hashAlg.toString(16)} is not supported`);
  if (!Number.isInteger(bits) || bits <= 0 || bits > 0xffff * 8) throw new RangeError(`KDFa: ${bits} bits`);
  const labelBytes = Buffer.from(label, 'latin1');
  const terminated = label.endsWith('\0') ? labelBytes : Buffer.concat([labelBytes, Buffer.of(0)]);
  const bytes = Math.ceil(bits / 8);
  const out = new Uint8Array(bytes);
  for (let i = 1, at = 0; at < bytes; i++) {
    const block = createHmac(hash.name, key)
      .update(new TpmWriter().u32(i).finish())
      .update(terminated)
      .update(contextU)
      .update(contextV)
      .update(new TpmWriter().u32(bits).finish())
      .digest();
    out.set(block.subarray(0, Math.min(block.length, bytes - at)), at);
    at += block.length;
  }
  if (bits % 8 !== 0) out[0]! &= (1 << (bits % 8)) - 1;
  return out;
}

export interface MakeCredentialInput {
  /** The EK: its RSA public key (from the EK certificate; TCG template L-1 assumed: SHA-256,
   *  AES-128-CFB) or its TPMT_PUBLIC (nameAlg and symmetric taken from it). */
  ekPublic: KeyObject | TpmtPublic;
  /** The Name of the AK, nameAlg ‖ digest (see tpmName). */
  akName: Uint8Array;
  /** The secret to hand over, at most the digest size of the EK's nameAlg. */
  credential: Uint8Array;
}

export interface MadeCredential {
  /** Contents of TPM2B_ID_OBJECT: TPM2B_DIGEST(integrityHMAC) ‖ encIdentity. */
  credential: Uint8Array;
  /** Contents of TPM2B_ENCRYPTED_SECRET: the RSA-OAEP encrypted seed. */
  secret: Uint8Array;
}

interface EkParams {
  key: KeyObject;
  nameAlg: number;
  aesBits: number;
}

function ekParams(ek: KeyObject | TpmtPublic): EkParams {
  if (ek instanceof KeyObject) {
    if (
      ek.type !== 'public' ||
      ek.asymmetricKeyType !== 'rsa' ||
      (ek.asymmetricKeyDetails?.modulusLength ?? 0) < 2048
    ) {
      throw new TpmFormatError('ek_public', 'the EK is not an RSA public key of 2048 bits or more');
    }
    return { key: ek, nameAlg: TPM_ALG.SHA256, aesBits: 128 };
  }
  const p = ek;
  if (p.type !== TPM_ALG.RSA) throw new TpmFormatError('ek_public', 'the EK is not an RSA key');
  const s = p.symmetric;
  if (!('keyBits' in s) || s.algorithm !== TPM_ALG.AES || s.mode !== TPM_ALG.CFB) {
    throw new TpmFormatError('ek_public', 'the EK symmetric algorithm is not AES-CFB');
  }
  if (![128, 192, 256].includes(s.keyBits)) {
    throw new TpmFormatError('ek_public', `AES key of ${s.keyBits} bits`);
  }
  if (!HASHES.has(p.nameAlg) || p.nameAlg === TPM_ALG.SHA1) {
    throw new TpmFormatError('ek_public', `EK nameAlg 0x${p.nameAlg.toString(16)} is not supported`);
  }
  return { key: publicKeyOf(p, 'ek_public'), nameAlg: p.nameAlg, aesBits: s.keyBits };
}

/** Seals `credential` to the TPM holding the EK, for the object named akName. */
export function makeCredential(input: MakeCredentialInput): MadeCredential {
  const { key, nameAlg, aesBits } = ekParams(input.ekPublic);
  const hash = HASHES.get(nameAlg)!;
  const akHash = HASHES.get((input.akName[0]! << 8) | input.akName[1]!);
  if (input.akName.length < 2 || !akHash || input.akName.length !== 2 + akHash.size) {
    throw new TpmFormatError('ak_name', 'not a Name (nameAlg ‖ digest)');
  }
  if (input.credential.length === 0 || input.credential.length > hash.size) {
    throw new TpmFormatError('credential', `must be 1 to ${hash.size} bytes`);
  }
  const seed = randomBytes(hash.size);
  const secret = publicEncrypt(
    {
      key,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: hash.name,
      oaepLabel: Buffer.from('IDENTITY\0'),
    },
    seed,
  );
  const symKey = kdfa(nameAlg, seed, 'STORAGE', input.akName, new Uint8Array(0), aesBits);
  const cipher = createCipheriv(`aes-${aesBits}-cfb`, symKey, Buffer.alloc(16));
  const plain = new TpmWriter().tpm2b(input.credential).finish();
  const encIdentity = Buffer.concat([cipher.update(plain), cipher.final()]);
  const hmacKey = kdfa(nameAlg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), hash.size * 8);
  const integrity = createHmac(hash.name, hmacKey).update(encIdentity).update(input.akName).digest();
  return {
    credential: new TpmWriter().tpm2b(integrity).bytes(encIdentity).finish(),
    secret: new Uint8Array(secret),
  };
}
