// The card management key in slot 9B (SP 800-73-4 Part 2 Appendix A.1/A.2, and YubiKey's SET MANAGEMENT
// KEY): GENERAL AUTHENTICATE with a block cipher, 3DES (8-byte blocks) or AES (16-byte blocks), ECB on one
// block. Two ways in, both used by real clients:
//   mutual:  7C{80 ∅} → 7C{80 E(K,w)};  7C{80 w, 81 c} → 7C{82 E(K,c)}   (yubico-piv-tool, ykman)
//   witness: 7C{80 ∅} → 7C{80 E(K,w)};  7C{80 w} → 9000
//   challenge: 7C{81 ∅} → 7C{81 c};      7C{82 E(K,c)} → 9000
// A wrong answer is 6982 and the exchange starts over; nothing is counted (a YubiKey does not count either).
import { createCipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CardResponse, CommandApdu } from './apdu';
import { ok, status, SW } from './apdu';
import type { CardContext } from './context';
import { ALGORITHM } from './policy';
import type { ManagementKeyAlgorithm } from './state';
import { DEFAULT_MANAGEMENT_KEY_HEX } from './state';
import { encodeTlv, TlvError, tlvMap } from './tlv';

const CIPHERS: Record<ManagementKeyAlgorithm, { name: string; keyLength: number; block: number }> = {
  [ALGORITHM.TDES]: { name: 'des-ede3', keyLength: 24, block: 8 },
  [ALGORITHM.AES128]: { name: 'aes-128-ecb', keyLength: 16, block: 16 },
  [ALGORITHM.AES192]: { name: 'aes-192-ecb', keyLength: 24, block: 16 },
  [ALGORITHM.AES256]: { name: 'aes-256-ecb', keyLength: 32, block: 16 },
};

export function isManagementAlgorithm(algorithm: number): algorithm is ManagementKeyAlgorithm {
  return Object.hasOwn(CIPHERS, algorithm);
}

/** One block under the card's management key (3DES: des-ede3 with K1 ‖ K2 ‖ K3; AES: the key as is). */
export function encryptBlock(
  algorithm: ManagementKeyAlgorithm,
  key: Uint8Array,
  block: Uint8Array,
): Uint8Array {
  const cipher = createCipheriv(CIPHERS[algorithm].name, key, null);
  cipher.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([cipher.update(block), cipher.final()]));
}

/** GENERAL AUTHENTICATE (INS 87) with P2 = 9B; `template` is the inside of the 7C dynamic template. */
export function authenticateManagementKey(
  ctx: CardContext,
  cmd: CommandApdu,
  template: Uint8Array,
): CardResponse {
  const { algorithm, keyHex } = ctx.state.managementKey;
  const pending = ctx.session.managementExchange;
  ctx.session.managementExchange = undefined;
  if (cmd.p1 !== algorithm) return status(SW.INCORRECT_P1P2);
  const { block } = CIPHERS[algorithm];
  const key = Buffer.from(keyHex, 'hex');
  let fields: Map<number, Uint8Array>;
  try {
    fields = tlvMap(template);
  } catch (error) {
    if (error instanceof TlvError) return status(SW.INCORRECT_DATA);
    throw error;
  }
  const witness = fields.get(0x80);
  const challenge = fields.get(0x81);
  const response = fields.get(0x82);

  if (witness?.length === 0 && challenge === undefined && response === undefined) {
    const plain = randomBytes(block);
    ctx.session.managementAuthenticated = false;
    ctx.session.managementExchange = { kind: 'witness', algorithm, expected: plain };
    return ok(encodeTlv(0x7c, encodeTlv(0x80, encryptBlock(algorithm, key, plain))));
  }
  if (challenge?.length === 0 && witness === undefined && response === undefined) {
    const plain = randomBytes(block);
    ctx.session.managementAuthenticated = false;
    ctx.session.managementExchange = {
      kind: 'challenge',
      algorithm,
      expected: encryptBlock(algorithm, key, plain),
    };
    return ok(encodeTlv(0x7c, encodeTlv(0x81, plain)));
  }
  if (witness !== undefined && witness.length > 0) {
    // The host's decryption of our witness, and optionally its own challenge for us to encrypt.
    if (response !== undefined && response.length !== 0) return status(SW.INCORRECT_DATA);
    if (witness.length !== block || (challenge !== undefined && challenge.length !== block)) {
      return status(SW.INCORRECT_DATA);
    }
    if (pending?.kind !== 'witness' || !timingSafeEqual(pending.expected, witness)) {
      ctx.session.managementAuthenticated = false;
      return status(SW.SECURITY_STATUS_NOT_SATISFIED);
    }
    ctx.session.managementAuthenticated = true;
    if (challenge === undefined) return ok();
    return ok(encodeTlv(0x7c, encodeTlv(0x82, encryptBlock(algorithm, key, challenge))));
  }
  if (response !== undefined && response.length > 0 && witness === undefined && challenge === undefined) {
    if (response.length !== block) return status(SW.INCORRECT_DATA);
    if (pending?.kind !== 'challenge' || !timingSafeEqual(pending.expected, response)) {
      ctx.session.managementAuthenticated = false;
      return status(SW.SECURITY_STATUS_NOT_SATISFIED);
    }
    ctx.session.managementAuthenticated = true;
    return ok();
  }
  return status(SW.INCORRECT_DATA);
}

/** SET MANAGEMENT KEY (YubiKey INS FF, P1 FF, P2 FF): data 03/08/0A/0C ‖ 9B ‖ length ‖ key. */
export function setManagementKey(ctx: CardContext, cmd: CommandApdu): CardResponse {
  // P2 FE asks for touch on every use of the management key; this card does not offer that.
  if (cmd.p1 !== 0xff || cmd.p2 !== 0xff) return status(SW.INCORRECT_P1P2);
  if (!ctx.session.managementAuthenticated) return status(SW.SECURITY_STATUS_NOT_SATISFIED);
  const [algorithm, slot, length] = cmd.data;
  if (cmd.data.length < 3 || algorithm === undefined || !isManagementAlgorithm(algorithm) || slot !== 0x9b) {
    return status(SW.INCORRECT_DATA);
  }
  const key = cmd.data.subarray(3);
  if (length !== key.length || key.length !== CIPHERS[algorithm].keyLength) return status(SW.INCORRECT_DATA);
  ctx.state.managementKey = { algorithm, keyHex: Buffer.from(key).toString('hex') };
  ctx.save();
  return ok();
}

/** GET METADATA (INS F7) for 9B: algorithm, policy (PIN never, touch never) and whether it is the default. */
export function managementKeyMetadata(ctx: CardContext): Uint8Array {
  const { algorithm, keyHex } = ctx.state.managementKey;
  return Uint8Array.from([
    0x01,
    0x01,
    algorithm,
    0x02,
    0x02,
    0x01,
    0x01, // PIN never, touch never
    0x05,
    0x01,
    keyHex === DEFAULT_MANAGEMENT_KEY_HEX ? 0x01 : 0x00,
  ]);
}
