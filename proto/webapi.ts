// The web UI's JSON API (keyport-auth's web listener, auth/web/): its paths and the shapes it sends and
// takes. Shared by the server and, as types only, by the web app (web/). Errors are `{ error: WebApiError }`
// with the same stable codes as gRPC (proto/errors.ts).
import type { KeyportErrorCode } from './errors';

export const WEBAPI = {
  /** GET: what the sign-in screen needs to know about the cluster. */
  cluster: '/v1/webapi/cluster',
  /** POST: login step one (password, or passwordless), answered with the MFA challenge. */
  challenge: '/v1/webapi/login/challenge',
  /** POST: login step two, answered with a session cookie. */
  login: '/v1/webapi/login',
  /** GET: the signed-in person, for the home screen; DELETE: sign out. */
  session: '/v1/webapi/session',
  /** POST: this untrusted session asks to be verified by a trusted device (the keyport:// link). */
  deviceApproval: '/v1/webapi/device/approval',
  /** POST: start an SSO login through a connector; answered with the IdP's URL and a binding cookie. */
  ssoStart: '/v1/webapi/sso/start',
} as const;

/** The header that carries a session's CSRF token on every state-changing request. */
export const WEBAPI_CSRF_HEADER = 'X-Keyport-CSRF';

export interface WebApiError {
  code: KeyportErrorCode;
  message: string;
  fieldPath?: string;
  lockedUntilMs?: number;
  retryAfterMs?: number;
}

export interface WebClusterInfo {
  clusterName: string;
  /** The second factors the cluster allows ("otp", "webauthn"); none: a password alone. */
  secondFactors: string[];
  secondFactorRequired: boolean;
  passwordless: boolean;
  /** The SSO connectors to offer: "Sign in with DISPLAY". */
  connectors: WebConnector[];
}

export interface WebConnector {
  name: string;
  display: string;
}

export interface WebSsoStartRequest {
  connector: string;
}

/** POST sso/start's answer: where the browser goes next (the IdP), and until when the sign-in may take. */
export interface WebSsoStart {
  authorizationUrl: string;
  expiresMs: number;
}

export type WebChallengeRequest = { user: string; password: string } | { passwordless: true };

export interface WebChallenge {
  challengeId: string;
  expiresMs: number;
  mfaRequired: boolean;
  totpAllowed: boolean;
  /** PublicKeyCredentialRequestOptions in WebAuthn's JSON form, when a security key may answer. */
  webauthn: Record<string, unknown> | null;
}

export type WebLoginRequest =
  | { challengeId: string; totpCode: string }
  | { challengeId: string; webauthn: Record<string, unknown> }
  | { challengeId: string };

export type WebDeviceState = { trusted: false } | { trusted: true; deviceId: string; assetTag: string };

export interface WebMfaDevice {
  name: string;
  type: string;
  addedMs: number;
  lastUsedMs: number | null;
  passkey: boolean;
}

/** GET session: who is signed in here, and this session's CSRF token. */
export interface WebSessionView {
  user: string;
  roles: string[];
  logins: string[];
  loginMethod: string;
  mfaVerified: boolean;
  createdMs: number;
  expiresMs: number;
  /** This browser session's device state: untrusted until a trusted device approves it. */
  device: WebDeviceState;
  mfaDevices: WebMfaDevice[];
  /** Whether this user's web sessions need a trusted device (the cluster's device_trust, or a role). */
  deviceTrust: 'off' | 'optional' | 'required';
  csrfToken: string;
}

/** POST device/approval's answer: the link that opens Keyport Connect, and the code both screens show. */
export interface WebDeviceApprovalRequest {
  id: string;
  /** keyport://<cluster>/authorize-web-session?id=…&token=…&redirect=… */
  link: string;
  /** The short code ("123-456") Keyport Connect shows too. */
  code: string;
  expiresMs: number;
}
