// YubiKey's own PIV instructions that clients rely on (developers.yubico.com "PIV: Yubico extensions"):
// GET VERSION (FD), GET SERIAL (F8), GET METADATA (F7) and RESET (FB). SET MANAGEMENT KEY lives with the
// management key, ATTEST with the slot keys.
import type { CardResponse, CommandApdu } from './apdu';
import { ok, status, SW } from './apdu';
import type { CardContext } from './context';
import { managementKeyMetadata } from './management-key';
import { referenceMetadata } from './pin';
import { isGeneratableSlot, MANAGEMENT_KEY_SLOT, PIN_REFERENCE, PUK_REFERENCE } from './policy';
import { slotKeyMetadata } from './slot-keys';
import {
  ATTESTATION_CERT_OBJECT,
  DEFAULT_MANAGEMENT_KEY_HEX,
  DEFAULT_PIN,
  DEFAULT_PUK,
  padReference,
} from './state';

function noArguments(cmd: CommandApdu): CardResponse | undefined {
  if (cmd.p1 !== 0x00 || cmd.p2 !== 0x00) return status(SW.INCORRECT_P1P2);
  if (cmd.data.length !== 0) return status(SW.WRONG_LENGTH);
  return undefined;
}

/** GET VERSION: major, minor, patch. */
export function getVersion(ctx: CardContext, cmd: CommandApdu): CardResponse {
  return noArguments(cmd) ?? ok(Uint8Array.from(ctx.state.firmware));
}

/** GET SERIAL: the serial, 4 bytes big-endian. */
export function getSerial(ctx: CardContext, cmd: CommandApdu): CardResponse {
  const refused = noArguments(cmd);
  if (refused) return refused;
  const serial = new Uint8Array(4);
  new DataView(serial.buffer).setUint32(0, ctx.state.serial);
  return ok(serial);
}

/** GET METADATA (P1 00, P2 80 / 81 / 9B / a key slot): TLVs, 6A88 for an empty slot. */
export function getMetadata(ctx: CardContext, cmd: CommandApdu): CardResponse {
  if (cmd.p1 !== 0x00) return status(SW.INCORRECT_P1P2);
  if (cmd.data.length !== 0) return status(SW.WRONG_LENGTH);
  if (cmd.p2 === PIN_REFERENCE) return ok(referenceMetadata(ctx, 'pin', padReference(DEFAULT_PIN)));
  if (cmd.p2 === PUK_REFERENCE) return ok(referenceMetadata(ctx, 'puk', padReference(DEFAULT_PUK)));
  if (cmd.p2 === MANAGEMENT_KEY_SLOT) return ok(managementKeyMetadata(ctx));
  if (!isGeneratableSlot(cmd.p2)) return status(SW.INCORRECT_P1P2);
  const metadata = slotKeyMetadata(ctx, cmd.p2);
  return metadata ? ok(metadata) : status(SW.REFERENCE_NOT_FOUND);
}

/**
 * RESET: only once both PIN and PUK are blocked (6985 otherwise). Back to the factory PIN, PUK and
 * management key; slot keys and data objects gone; the f9 attestation key and its certificate kept.
 */
export function resetApplication(ctx: CardContext, cmd: CommandApdu): CardResponse {
  const refused = noArguments(cmd);
  if (refused) return refused;
  if (ctx.state.pin.retries !== 0 || ctx.state.puk.retries !== 0) return status(SW.CONDITIONS_NOT_SATISFIED);
  const attestationKey = ATTESTATION_CERT_OBJECT.toString(16);
  const attestationCertificate = ctx.state.objects[attestationKey];
  ctx.state.pin = {
    ...ctx.state.pin,
    paddedHex: padReference(DEFAULT_PIN),
    retries: ctx.state.pin.maxRetries,
  };
  ctx.state.puk = {
    ...ctx.state.puk,
    paddedHex: padReference(DEFAULT_PUK),
    retries: ctx.state.puk.maxRetries,
  };
  ctx.state.managementKey = {
    algorithm: ctx.state.defaultManagementKeyAlgorithm,
    keyHex: DEFAULT_MANAGEMENT_KEY_HEX,
  };
  ctx.state.slots = {};
  ctx.state.objects =
    attestationCertificate === undefined ? {} : { [attestationKey]: attestationCertificate };
  ctx.save();
  return ok();
}
