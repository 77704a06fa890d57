// MFA for admin actions, the part client and keyport-auth share: how an admin write names itself (its
// method path and the digest of its request bytes, as a proof of possession does: proto/pop.ts) and how
// the verified answer rides with each call (binary metadata). Pure: no I/O, no clock.
import { digestOf } from './pop';
import type { AdminAction } from './gen/keyport/v1/user';

/** Binary metadata: the serialized MFAAuthenticateResponse answering an ADMIN_ACTION challenge. */
export const ADMIN_MFA_METADATA_KEY = 'keyport-admin-mfa-bin';
/** The largest such answer accepted (a security key's assertion is about 1 KiB). */
export const ADMIN_MFA_MAX_BYTES = 16 * 1024;
/** The most admin writes one challenge may name: one command's calls. */
export const MAX_ADMIN_ACTIONS = 32;

const METHOD = /^\/keyport\.v1\.[A-Za-z]+\/[A-Za-z]+$/;
const DIGEST = /^[A-Za-z0-9_-]{43}$/;

/** The action a call is: its method path and the digest of its request bytes as sent. */
export function adminActionOf(method: string, requestBytes: Uint8Array): AdminAction {
  return { method, requestDigest: digestOf(requestBytes) };
}

/** One string per action, for sets and for the grant ids derived from a challenge. */
export function actionKey(action: AdminAction): string {
  return `${action.method} ${action.requestDigest}`;
}

/** Why a list of actions is not one a challenge may name (with the field), or undefined when it is. */
export function invalidAdminActions(
  actions: readonly AdminAction[],
): { message: string; fieldPath: string } | undefined {
  const field = 'admin_actions';
  if (actions.length === 0) {
    return { message: 'Name the admin action(s) this answer is for.', fieldPath: field };
  }
  if (actions.length > MAX_ADMIN_ACTIONS) {
    return { message: `At most ${MAX_ADMIN_ACTIONS} admin actions per challenge.`, fieldPath: field };
  }
  const seen = new Set<string>();
  for (const [index, action] of actions.entries()) {
    const at = `${field}[${index}]`;
    if (!METHOD.test(action.method)) {
      return { message: `${at}.method is not a method path.`, fieldPath: `${at}.method` };
    }
    if (!DIGEST.test(action.requestDigest)) {
      return {
        message: `${at}.request_digest is not a base64url SHA-256.`,
        fieldPath: `${at}.request_digest`,
      };
    }
    const key = actionKey(action);
    if (seen.has(key)) return { message: `${at} names the same call twice.`, fieldPath: at };
    seen.add(key);
  }
  return undefined;
}
