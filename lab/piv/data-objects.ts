// GET DATA and PUT DATA (SP 800-73-4 Part 2 §3.1.2, §3.3.2): data objects named by a tag in 5C, their
// content in 53. Every object is stored as written, so certificates (5FC105 9a, 5FC10A 9c, 5FC10B 9d,
// 5FC101 9e), CHUID (5FC102), CCC (5FC107), YubiKey's admin data and f9 certificate (5FFF00, 5FFF01) and
// any other object round-trip. The discovery object (7E) is the card's own and read-only.
import type { CardResponse, CommandApdu } from './apdu';
import { ok, status, SW } from './apdu';
import type { CardContext } from './context';
import { encodeTag, encodeTlv, TlvError, tlvMap } from './tlv';

export const OBJECT = {
  discovery: 0x7e,
  cardCapabilityContainer: 0x5fc107,
  chuid: 0x5fc102,
  certificate9a: 0x5fc105,
  certificate9c: 0x5fc10a,
  certificate9d: 0x5fc10b,
  certificate9e: 0x5fc101,
  printedInformation: 0x5fc109,
} as const;

/** SP 800-73-4 Part 1 §3.3.2: the PIV AID, PIN usage policy 40 00 (PIV PIN only, no global PIN). */
const DISCOVERY = Uint8Array.from([
  0x4f, 0x0b, 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5f, 0x2f, 0x02, 0x40, 0x00,
]);

/** Objects a YubiKey reads out only after the PIN (SP 800-73-4 Part 1 Table 2: access rule "PIN"). */
const PIN_PROTECTED = new Set([0x5fc103, 0x5fc108, OBJECT.printedInformation, 0x5fc121]);

/** About what a YubiKey 5 holds in one object. */
export const MAX_OBJECT_BYTES = 3063;

function objectTag(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined || bytes.length < 1 || bytes.length > 3) return undefined;
  return bytes.reduce((tag, b) => tag * 256 + b, 0);
}

function objectKey(tag: number): string {
  return Buffer.from(encodeTag(tag)).toString('hex');
}

/** GET DATA (INS CB, P1P2 3FFF): 5C { tag } → 53 { content }, 6A82 when there is none. */
export function getData(ctx: CardContext, cmd: CommandApdu): CardResponse {
  if (cmd.p1 !== 0x3f || cmd.p2 !== 0xff) return status(SW.INCORRECT_P1P2);
  let tag: number | undefined;
  try {
    const fields = tlvMap(cmd.data);
    tag = fields.size === 1 ? objectTag(fields.get(0x5c)) : undefined;
  } catch (error) {
    if (!(error instanceof TlvError)) throw error;
  }
  if (tag === undefined) return status(SW.INCORRECT_DATA);
  if (tag === OBJECT.discovery) return ok(encodeTlv(0x7e, DISCOVERY));
  if (PIN_PROTECTED.has(tag) && !ctx.session.pinVerified) return status(SW.SECURITY_STATUS_NOT_SATISFIED);
  const stored = ctx.state.objects[objectKey(tag)];
  if (stored === undefined) return status(SW.FILE_NOT_FOUND);
  return ok(encodeTlv(0x53, Buffer.from(stored, 'hex')));
}

/** PUT DATA (INS DB, P1P2 3FFF): 5C { tag } 53 { content }; an empty 53 deletes. Needs the management key. */
export function putData(ctx: CardContext, cmd: CommandApdu): CardResponse {
  if (cmd.p1 !== 0x3f || cmd.p2 !== 0xff) return status(SW.INCORRECT_P1P2);
  if (!ctx.session.managementAuthenticated) return status(SW.SECURITY_STATUS_NOT_SATISFIED);
  let tag: number | undefined;
  let content: Uint8Array | undefined;
  try {
    const fields = tlvMap(cmd.data);
    if (fields.size === 2) {
      tag = objectTag(fields.get(0x5c));
      content = fields.get(0x53);
    }
  } catch (error) {
    if (!(error instanceof TlvError)) throw error;
  }
  if (tag === undefined || content === undefined || tag === OBJECT.discovery)
    return status(SW.INCORRECT_DATA);
  if (content.length > MAX_OBJECT_BYTES) return status(SW.NOT_ENOUGH_MEMORY);
  const key = objectKey(tag);
  if (content.length === 0) delete ctx.state.objects[key];
  else ctx.state.objects[key] = Buffer.from(content).toString('hex');
  ctx.save();
  return ok();
}
