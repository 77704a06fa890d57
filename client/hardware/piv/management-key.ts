// The card management key (slot 9B): mutual authentication by GENERAL AUTHENTICATE (SP 800-73-4 Part 2
// Appendix A.2, as yubico-piv-tool and ykman run it), one block of 3DES or AES in ECB:
//   1. 7C{80 ∅}               → 7C{80 witness}         the card's witness, encrypted under the key
//   2. 7C{80 decrypted, 81 c} → 7C{82 E(K, c)}         our proof, and our own challenge for the card
//   3. we check E(K, c): a card that does not hold the key is refused even when it answers 9000.
// Pure: builders, parsers and the block cipher; the session sends the commands.
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CommandApdu } from './apdu';
import { PivError, invalidArgument, malformed } from './errors';
import { concatBytes, decodeSingleTlv, decodeTlvMap, encodeTlv, requireTag } from './tlv';

export const MANAGEMENT_KEY_SLOT = 0x9b;

export type ManagementKeyAlgorithm = 'tdes' | 'aes128' | 'aes192' | 'aes256';

/** SP 800-78-4 Table 6-2 algorithm identifiers (P1 of GENERAL AUTHENTICATE). */
export const MANAGEMENT_ALGORITHM_ID: Record<ManagementKeyAlgorithm, number> = {
  tdes: 0x03,
  aes128: 0x08,
  aes192: 0x0a,
  aes256: 0x0c,
};

const CIPHER: Record<ManagementKeyAlgorithm, { name: string; keyLength: number; block: number }> = {
  tdes: { name: 'des-ede3', keyLength: 24, block: 8 },
  aes128: { name: 'aes-128-ecb', keyLength: 16, block: 16 },
  aes192: { name: 'aes-192-ecb', keyLength: 24, block: 16 },
  aes256: { name: 'aes-256-ecb', keyLength: 32, block: 16 },
};

export interface ManagementKey {
  algorithm: ManagementKeyAlgorithm;
  key: Uint8Array;
}

/**
 * A YubiKey's factory management key: 3DES before firmware 5.7, AES-192 from 5.7 on, the same bytes.
 * Yubico tells owners to change it; a card that still has it can be administered by anyone holding it.
 */
export const DEFAULT_MANAGEMENT_KEY_BYTES = Uint8Array.from(
  Buffer.from('010203040506070801020304050607080102030405060708', 'hex'),
);

export function managementKey(algorithm: ManagementKeyAlgorithm, key: Uint8Array): ManagementKey {
  const { keyLength } = CIPHER[algorithm];
  if (key.length !== keyLength)
    throw invalidArgument(`A ${algorithm} management key is ${keyLength} bytes, not ${key.length}`);
  return { algorithm, key: Uint8Array.from(key) };
}

export function blockSize(algorithm: ManagementKeyAlgorithm): number {
  return CIPHER[algorithm].block;
}

function ecb(decrypt: boolean, key: ManagementKey, block: Uint8Array): Uint8Array {
  const { name, block: size } = CIPHER[key.algorithm];
  if (block.length !== size) throw invalidArgument(`A ${key.algorithm} block is ${size} bytes`);
  const cipher = decrypt ? createDecipheriv(name, key.key, null) : createCipheriv(name, key.key, null);
  cipher.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([cipher.update(block), cipher.final()]));
}

export const encryptBlock = (key: ManagementKey, block: Uint8Array) => ecb(false, key, block);
export const decryptBlock = (key: ManagementKey, block: Uint8Array) => ecb(true, key, block);

function generalAuthenticate(algorithm: ManagementKeyAlgorithm, template: Uint8Array): CommandApdu {
  return {
    cla: 0x00,
    ins: 0x87,
    p1: MANAGEMENT_ALGORITHM_ID[algorithm],
    p2: MANAGEMENT_KEY_SLOT,
    data: encodeTlv(0x7c, template),
    le: 256,
  };
}

/** Step 1: ask the card for its witness. */
export function requestWitnessCommand(algorithm: ManagementKeyAlgorithm): CommandApdu {
  return generalAuthenticate(algorithm, encodeTlv(0x80));
}

/** The encrypted witness out of step 1's answer, 7C{80 block}. */
export function parseWitness(algorithm: ManagementKeyAlgorithm, data: Uint8Array): Uint8Array {
  const fields = decodeTlvMap(decodeSingleTlv(data, 0x7c), [0x80]);
  const witness = requireTag(fields, 0x80, 'the witness');
  if (witness.length !== blockSize(algorithm))
    throw malformed(`a witness of ${witness.length} bytes for ${algorithm}`);
  return witness;
}

export interface WitnessAnswer {
  command: CommandApdu;
  /** What the card must answer in 82 to prove it holds the key. */
  expected: Uint8Array;
}

/** Step 2: the decrypted witness and a fresh challenge of ours (or the one given, for known answers). */
export function answerWitness(
  key: ManagementKey,
  encryptedWitness: Uint8Array,
  challenge: Uint8Array = randomBytes(blockSize(key.algorithm)),
): WitnessAnswer {
  const size = blockSize(key.algorithm);
  if (challenge.length !== size) throw invalidArgument(`A ${key.algorithm} challenge is ${size} bytes`);
  const template = concatBytes(
    encodeTlv(0x80, decryptBlock(key, encryptedWitness)),
    encodeTlv(0x81, challenge),
  );
  return { command: generalAuthenticate(key.algorithm, template), expected: encryptBlock(key, challenge) };
}

/** Step 3: the card's 7C{82 E(K, c)} must be what we expect, compared in constant time. */
export function checkCardProof(expected: Uint8Array, data: Uint8Array): void {
  const fields = decodeTlvMap(decodeSingleTlv(data, 0x7c), [0x82]);
  const proof = requireTag(fields, 0x82, "the card's proof");
  if (proof.length !== expected.length || !timingSafeEqual(proof, expected)) {
    throw new PivError(
      'CARD_AUTHENTICATION_FAILED',
      'The PIV card did not prove that it holds the management key. It may not be the card it claims ' +
        'to be; use another card.',
    );
  }
}

/**
 * 6982 to step 2: the card holds another management key. Worded as the seed's troubleshooting entry, with
 * its two fixes.
 */
export function managementKeyRejected(sw: number): PivError {
  return new PivError(
    'MANAGEMENT_KEY_REJECTED',
    'authenticating with management key: auth challenge: smart card error 6982: security status not ' +
      'satisfied. Keyport expects a PIV card with the default management key: reset the PIV application ' +
      'with `ykman piv reset` (this erases its PIV keys and certificates), or generate the key yourself ' +
      'with `ykman piv keys generate -a ECCP256 <slot> --touch-policy=<never|cached|always> ' +
      '--pin-policy=<never|once|always> -`.',
    { sw },
  );
}
