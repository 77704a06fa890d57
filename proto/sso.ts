// The SSO ceremony's shapes shared by the client and keyport-auth: pure, no I/O.
//   - The client's loopback redirect address: http://127.0.0.1:PORT/PATH (or [::1]), a port and a path of
//     its own, no query, fragment or user info (RFC 8252 §7.3: loopback IP, not "localhost").
//   - The redemption proof: the session key's signature over the ASCII bytes
//     "keyport-sso-redeem-v1." + request_id + "." + code (ECDSA P-256 with SHA-256, DER; or Ed25519), so a
//     one-time code is worth nothing to a client that does not hold the request's key.
import { KeyportError } from './errors';

const DOMAIN = 'keyport-sso-redeem-v1.';
/** Loopback hosts a client may listen on for the redirect (RFC 8252 §7.3 and §8.3). */
export const SSO_LOOPBACK_HOSTS = ['127.0.0.1', '[::1]'] as const;
export const SSO_REDIRECT_MAX_LENGTH = 512;
/** Request ids and one-time codes: 32 random bytes, base64url. */
export const SSO_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The bytes a session key signs to redeem `code` of request `requestId`. */
export function ssoRedeemSignedBytes(requestId: string, code: string): Buffer {
  return Buffer.from(`${DOMAIN}${requestId}.${code}`, 'ascii');
}

/**
 * The bytes a session key signs to ask for the security-key check of request `requestId` (require_local_mfa):
 * a domain of its own, so neither signature stands for the other.
 */
export function ssoMfaSignedBytes(requestId: string, code: string): Buffer {
  return Buffer.from(`keyport-sso-mfa-v1.${requestId}.${code}`, 'ascii');
}

/** Checks the client's redirect address; throws INVALID_ARGUMENT on `client_redirect_url`. */
export function parseLoopbackRedirect(text: string): URL {
  const refuse = (why: string): never => {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The client's redirect address ${why}; it must be http://127.0.0.1:PORT/PATH, on this machine.`,
      { fieldPath: 'client_redirect_url' },
    );
  };
  if (text.length > SSO_REDIRECT_MAX_LENGTH) refuse(`is longer than ${SSO_REDIRECT_MAX_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return refuse('is not a URL');
  }
  if (url.protocol !== 'http:') refuse(`is ${url.protocol}, not http: (a loopback listener)`);
  if (!(SSO_LOOPBACK_HOSTS as readonly string[]).includes(url.hostname)) {
    refuse(`names ${url.hostname}, not a loopback address`);
  }
  if (url.port === '') refuse('has no port');
  if (url.username !== '' || url.password !== '') refuse('carries user info');
  if (url.search !== '' || url.hash !== '') refuse('carries a query or fragment');
  if (url.pathname.length < 2) refuse('has no path');
  return url;
}
