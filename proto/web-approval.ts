// The web-session approval ceremony's shared pieces (keyport-auth and Keyport Connect's client core): what
// the device's TPM quotes, so the device's answer is bound to one web token, and the confirm URL's path.
// Pure: no I/O, no clock.
import { createHash } from 'node:crypto';

/** The web UI's path that a browser opens to finish the ceremony (GET, with `id`, `token`, `redirect`). */
export const WEB_DEVICE_CONFIRM_PATH = '/web/device/confirm';

const QUOTE_LABEL = Buffer.from('keyport-web-approval-v1\0', 'ascii');

/** SHA-256 of a web token as sent (its base64url text): what the server stores and the quote covers. */
export function webTokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The TPM quote's qualifying data for an approval: SHA-256("keyport-web-approval-v1" 0x00 ‖ the server's
 * nonce ‖ SHA-256(web token)). A quote made for one web token (or one nonce) never verifies for another.
 */
export function webApprovalQuoteData(nonce: Uint8Array, tokenDigest: Uint8Array): Buffer {
  return createHash('sha256').update(QUOTE_LABEL).update(nonce).update(tokenDigest).digest();
}
