// The one IPC contract of Keyport Connect (docs/architecture.md "The IPC contract"): every method, event,
// prompt and error that crosses between the renderer and main. Main validates every argument with the
// schemas below; the renderer imports only the types. Only view models cross: no private key, certificate
// or token ever does (invariant 1), so none of the types below has a field that could hold one.
import { z } from 'zod';
import { eventNames, methodNames } from './contract-names';
import type { EventName, MethodName } from './contract-names';

export { eventNames, methodNames };
export type { EventName, MethodName };

// ---------------------------------------------------------------------------------------------------
// Errors and results

/** The stable codes of proto/errors.ts, repeated here because preload/ may not import proto/. */
export const errorCodes = [
  'INTERNAL',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'ACCESS_DENIED',
  'UNAUTHENTICATED',
  'MFA_REQUIRED',
  'MFA_FAILED',
  'LOCKED',
  'EXPIRED',
  'PRIVATE_KEY_POLICY_NOT_MET',
  'DEVICE_TRUST_REQUIRED',
  'PASSWORDLESS_DISABLED',
  'PRECONDITION_FAILED',
  'CERTIFICATE_EXPIRED',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'CA_PIN_MISMATCH',
  'CANCELLED',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export interface ErrorDetails {
  /** The argument at fault, as a dotted path ("user", "value.pin"). */
  fieldPath?: string;
  lockedUntilMs?: number;
  /** Signing in again fixes it (an expired session); the UI offers a login and retries. */
  resolvableByRelogin?: boolean;
  /** The keystore's own code (KEYCHAIN_LOCKED, ...), for a message that says how to unlock it. */
  keystoreCode?: string;
  /** The security key's CTAP2 / CTAPHID code (PIN_INVALID, PIN_BLOCKED, ...). */
  securityKeyCode?: string;
  /** PIN attempts the security key (or the PIV card, with `pivCode`) has left. */
  retriesLeft?: number;
  /**
   * The PIV card's reason (client/hardware/piv/errors.ts: PIN_INCORRECT, PIN_BLOCKED, PUK_BLOCKED,
   * SECURITY_STATUS_NOT_SATISFIED for a touch refused or not given, NO_CARD, SLOT_IN_USE, ...).
   */
  pivCode?: string;
  /** The private-key policy a PRIVATE_KEY_POLICY_NOT_MET refusal names ("hardware_key_touch", ...). */
  privateKeyPolicy?: string;
  /**
   * Set by the browser bridge when the window itself has no app behind it: NOT_CONNECTED when it never
   * connected (a spent or expired launch link), LOST when the app went away. Not about any cluster.
   */
  appConnection?: 'NOT_CONNECTED' | 'LOST';
  /** Why a keyport:// link was refused (main/backend/deep-link.ts). */
  deepLink?: 'malformed' | 'unknown-cluster' | 'unsupported-path';
}

export interface ContractError {
  code: ErrorCode;
  message: string;
  details: ErrorDetails;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ContractError };

// ---------------------------------------------------------------------------------------------------
// View models

export interface ClusterView {
  address: string;
  name: string;
  publicAddr?: string;
  /** sha256 of the CA's SubjectPublicKeyInfo; public, shown so the person can compare it. */
  caPin: string;
  passwordlessDefault: boolean;
  /** What the cluster accepts as a second factor; both → the login form offers a choice. */
  secondFactors: SecondFactorKind[];
  allowPasswordless: boolean;
  trustedAtMs: number;
  /** The user who signed in to this cluster last, to pre-fill the login form. */
  lastUser?: string;
}

export interface ProfileView {
  address: string;
  cluster: string;
  user: string;
  roles: string[];
  logins: string[];
  mfaVerified: boolean;
  validAfterMs: number;
  expiresMs: number;
  keystore: KeystoreKind;
  /** Where the session key lives, and for a hardware key its slot and the policy it meets. */
  sessionKey: SessionKeyView;
}

/**
 * The session key as the Account screen shows it: the OS keychain, the `file` opt-in, or a PIV card (a
 * YubiKey) with its slot, the private-key policy it meets and the card's own PIN and touch policies.
 */
export type SessionKeyView =
  | { kind: KeystoreKind }
  | {
      kind: 'piv';
      slot: string;
      policy: string;
      pinPolicy: 'default' | 'never' | 'once' | 'always';
      touchPolicy: 'default' | 'never' | 'always' | 'cached';
      serial?: number;
    };

/**
 * An SSO connector the cluster offers ("Sign in with DISPLAY"), as GetClusterInfo lists it: its name and
 * display only, never an issuer, client id or secret.
 */
export interface ConnectorView {
  name: string;
  /** The connector's display, or its name when it has none. */
  display: string;
}

export interface MfaDeviceView {
  id: string;
  name: string;
  type: 'webauthn' | 'totp' | 'unknown';
  passkey: boolean;
  addedMs: number;
  lastUsedMs: number;
}

/**
 * This device as device trust sees it on the signed-in cluster. No TPM material and no credential id: the
 * asset tag and OS are what an admin registers, and the owner is the user who enrolled it.
 */
export interface DeviceTrustView {
  /** Whether the cluster knows this device, and whether its TPM is enrolled. */
  /** `other_tpm`: the device is enrolled, but with another TPM's key than this machine's. */
  state: 'not_registered' | 'registered' | 'enrolled' | 'other_tpm' | 'locked';
  /** This machine's asset tag (what an admin registers); empty when it has none. */
  assetTag: string;
  osType: string;
  /** The cluster's device_trust.mode. */
  mode: 'off' | 'optional' | 'required';
  /** The session's certificates carry this device. */
  trustedInSession: boolean;
  /** The person's roles let them enroll this device without a token. */
  selfEnrollmentAllowed: boolean;
  /** Why this machine's TPM cannot be used, when it cannot. */
  tpmProblem?: string;
  /** The registered device, when the person may see it. */
  registered?: EnrolledDeviceView;
}

export interface EnrolledDeviceView {
  assetTag: string;
  osType: string;
  /** Who enrolled it; empty until enrolled. */
  owner: string;
  enrolled: boolean;
  enrolledMs: number;
}

/**
 * A node (a stock OpenSSH server) the person may reach on a cluster, as the Servers view lists it: its
 * name, address and labels, and the logins the person's roles allow there. No host key or certificate.
 */
export interface NodeView {
  name: string;
  /** HOST:PORT of its sshd. */
  addr: string;
  /** The node's labels, sorted by key. */
  labels: { key: string; value: string }[];
  /** The logins allowed on this node, sorted. */
  logins: string[];
}

/**
 * A keyport:// link the app received, as its screen shows it. The link only fills in that screen: the
 * backend keeps the link's token (single use, for the ceremony the screen will run, dropped after
 * `expiresMs` or when another link arrives) and the renderer never sees it.
 */
export interface DeepLinkRequest {
  kind: 'authorizeWebSession';
  /** The trusted cluster the link names. */
  cluster: { address: string; name: string };
  /** The web session's request id, as the link gave it (not secret). */
  id: string;
  receivedMs: number;
  expiresMs: number;
}

/**
 * What the authorize screen shows of a held request, as the cluster answered (deepLinks.inspect): the web
 * session's user, the browser's address and user agent as the server saw them, and the short code the web
 * page shows too. Or: sign in to that cluster first (signed out, or the session expired), then ask again.
 */
export type WebApprovalView =
  | { kind: 'signInRequired'; cluster: { address: string; name: string }; reason: string }
  | {
      kind: 'ready';
      cluster: { address: string; name: string };
      user: string;
      browserAddr: string;
      userAgent: string;
      code: string;
      expiresMs: number;
    };

/** deepLinks.authorize's answer: the browser was sent to its confirm URL; the device that approved. */
export interface WebApprovalDone {
  assetTag: string;
}

/** What onDeepLink carries: a request for a screen, or why a link was refused (nothing kept). */
export type DeepLinkEvent = DeepLinkRequest | { kind: 'refused'; error: ContractError };
/** A terminal tab's session (terminals.open): which server, as whom. Terminal bytes travel as events. */
export interface TerminalView {
  id: string;
  cluster: string;
  node: string;
  login: string;
}

/** Bytes from the session's terminal (UTF-8 text, as the pty gives it). */
export interface TerminalData {
  id: string;
  data: string;
}

/**
 * A session ended, and why: `exited` (the remote shell's exit code), `closed` by the person, `signedOut`,
 * `appQuit`, or ssh's failure read from its exit and log: `connectionClosed`, `serverDown`,
 * `hostNotTrusted` (the host certificate is not from the cluster's host CA), `accessDenied`, `failed`.
 * `message` says what happened and what to do next.
 */
export interface TerminalEnded {
  id: string;
  reason:
    | 'exited'
    | 'closed'
    | 'signedOut'
    | 'appQuit'
    | 'connectionClosed'
    | 'serverDown'
    | 'hostNotTrusted'
    | 'accessDenied'
    | 'failed';
  exitCode?: number;
  message: string;
}

export interface AppInfo {
  name: string;
  version: string;
  platform: string;
  keystore: KeystoreKind;
  keyportHome: string;
  /** A lab security key is configured (KEYPORT_LAB_SECURITY_KEY): the demo, not real hardware. */
  labSecurityKey: boolean;
}

export type KeystoreKind = 'keychain' | 'file';
export type SecondFactorKind = 'otp' | 'webauthn';

// ---------------------------------------------------------------------------------------------------
// Prompts: the backend asking the person for something in the middle of a ceremony

export type PromptBody =
  /** A key waits for presence. Nothing to answer; cancel aborts the ceremony (CTAPHID CANCEL). */
  | { kind: 'tapKey'; message: string }
  /** Several accounts on the key (passwordless): answer with the index of one. */
  | { kind: 'chooseKey'; accounts: { name?: string; displayName?: string }[] }
  | { kind: 'keyPin'; retriesLeft?: number }
  /** The key has no PIN and user verification is required: a new one is set on the key. */
  | { kind: 'newKeyPin' }
  | { kind: 'otpCode' }
  /** Trust on first use: show the pin and ask. */
  | { kind: 'trustCaPin'; address: string; caPin: string }
  /** A new security key was registered by the key; the person names it before it is added. */
  | { kind: 'deviceName' }
  /** Hardware is working (this device's TPM): nothing to answer, closed when the step ends. */
  | { kind: 'progress'; message: string }
  /**
   * Something the person should know that asks nothing ("retrying on another auth server"): shown until
   * the ceremony's next prompt replaces it, or the ceremony ends.
   */
  | { kind: 'notice'; message: string }
  /**
   * A call was refused for a reason a relogin resolves (main/backend/relogin.ts: the session ended, the
   * cluster now requires a hardware-backed key, the CLI asked): `reason` says why ("Your session ended at
   * 14:02.", the seed's two lines). The person signs in again, with the password for a password cluster
   * (answered once, like a key PIN, and never kept), or just goes on (passwordless).
   */
  | {
      kind: 'relogin';
      cluster: string;
      user: string;
      reason: string[];
      /** Why, for the dialog's words around `reason` (the banner's early "Sign in again" is `endsSoon`). */
      cause: ReloginCause;
      /** Passwordless is the cluster's way to sign in: nothing to type, the key asked next. */
      passwordless: boolean;
      /** The same factors as the login screen: a choice of second factor, and passwordless when allowed. */
      secondFactors: SecondFactorKind[];
      allowPasswordless: boolean;
      /**
       * The session signed in through this oidc connector (`display` as its login button says it): its only
       * factor is "Sign in with DISPLAY", the SSO login again (then a browserSignIn prompt); no password.
       */
      sso?: { connector: string; display: string };
    }
  /**
   * An SSO login waits for the person in the system browser (the IdP's sign-in page, opened by the backend):
   * nothing to answer; Cancel ends the login and its loopback listener. Closed when the browser comes back.
   * `cluster` is the cluster's name, `connector` the connector's display. Never the URL: it carries the
   * request's state.
   */
  | { kind: 'browserSignIn'; cluster: string; connector: string }
  /** The PIV card waits for a touch ("Tap your YubiKey"). Nothing to answer; closed when the step ends. */
  | { kind: 'pivTouch'; message: string }
  /** The PIV card's PIN; `retriesLeft` after a wrong one. */
  | { kind: 'pivPin'; retriesLeft?: number }
  /** The card still has its factory PIN (or PUK): the person chooses a new one, 6 to 8 characters. */
  | { kind: 'newPivPin'; secret: 'pin' | 'puk' };

/**
 * Why a relogin is asked: the session `expired`, a raised private-key policy (`keyPolicy`: the cluster now
 * requires a hardware key), a trusted device newly required, the CLI asked (`cli`), the person chose to
 * before the end (`endsSoon`), or another refusal a relogin resolves (`other`).
 */
export type ReloginCause = 'expired' | 'keyPolicy' | 'deviceTrust' | 'cli' | 'endsSoon' | 'other';

export type PromptKind = PromptBody['kind'];
export type Prompt = PromptBody & { id: string };

export interface PromptClosed {
  id: string;
  reason: 'answered' | 'cancelled' | 'finished';
}

const deviceNameText = z.string().trim().min(1, 'Give the new key a name.').max(64);
const pin = z.string().min(4, 'A PIN has at least 4 characters.').max(63, 'A PIN has at most 63 bytes.');
// A PIV PIN or PUK is 6 to 8 characters (SP 800-73-4 §2.4.3: padded to 8 bytes).
const pivPinText = 'A PIV PIN or PUK has 6 to 8 characters.';
const pivPin = z.string().min(6, pivPinText).max(8, pivPinText);

export const promptAnswerSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('chooseKey'), index: z.int().min(0).max(255) }),
  z.strictObject({ kind: z.literal('keyPin'), pin }),
  z.strictObject({ kind: z.literal('newKeyPin'), pin }),
  z.strictObject({
    kind: z.literal('otpCode'),
    code: z.string().regex(/^\s*\d{6,8}\s*$/, 'An OTP code is 6 to 8 digits.'),
  }),
  z.strictObject({ kind: z.literal('trustCaPin'), trust: z.boolean() }),
  z.strictObject({ kind: z.literal('deviceName'), name: deviceNameText }),
  // With a password: password + second factor (`secondFactor` as the login form's choice); without one:
  // passwordless, where the cluster allows it; `sso` for a prompt with an SSO factor (the broker checks
  // against the prompt).
  z.strictObject({
    kind: z.literal('relogin'),
    password: z.string().min(1, 'Give the password.').max(1024).optional(),
    secondFactor: z.enum(['auto', 'otp', 'key']).optional(),
    sso: z.literal(true).optional(),
  }),
  z.strictObject({ kind: z.literal('pivPin'), pin: pivPin }),
  z.strictObject({ kind: z.literal('newPivPin'), value: pivPin }),
]);
export type PromptAnswer = z.infer<typeof promptAnswerSchema>;

// ---------------------------------------------------------------------------------------------------
// Methods: one argument (an object, or nothing), validated by these schemas in main

const clusterAddress = z
  .string()
  .trim()
  .min(1, 'Give the cluster address (HOST:PORT).')
  .max(260)
  // The same refusal as client/cluster-trust.ts parseClusterAddress, which the backend then applies.
  .refine((text) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(text), {
    error: 'This is a URL, not a cluster address: give HOST:PORT without the scheme (such as "https://").',
  })
  .regex(/^[^\s/]+$/, 'A cluster address is HOST:PORT, without spaces or slashes.');
const userName = z.string().min(1, 'Give a user name.').max(255);
const caPinText = z
  .string()
  .regex(/^(sha256:)?[0-9a-fA-F]{64}$/, 'A CA pin is sha256: followed by 64 hex digits.');
const secondFactor = z.enum(['auto', 'otp', 'key']);
// auth/tokens.ts newToken: 32 random bytes, base64url (43 characters); the bound is the API edge's.
const enrollToken = z
  .string()
  .trim()
  .min(1, 'Paste the enrollment token.')
  .max(256, 'An enrollment token has at most 256 characters.')
  .regex(/^[A-Za-z0-9_-]+$/, 'An enrollment token is base64url: letters, digits, "-" and "_", no spaces.');
const noArgument = z.strictObject({}).optional();
// An oidc connector's metadata.name (proto/resources/fields.ts RESOURCE_NAME, repeated: preload/ may not
// import proto/; the API edge's bound, 253).
const connectorName = z
  .string()
  .min(1, 'Choose a connector.')
  .max(253)
  .regex(/^[A-Za-z0-9][A-Za-z0-9@._+:-]*$/, 'Not a connector name.');
// A node's metadata.name (proto/resources/schema.ts RESOURCE_NAME) and a login: no whitespace, no "@", and
// never a leading "-" (it reaches ssh's argument list, after -l, but an option is never what is meant).
const nodeName = z
  .string()
  .min(1, 'Choose a server.')
  .max(253)
  .regex(/^[A-Za-z0-9][A-Za-z0-9@._+:-]*$/, 'Not a server name.');
const loginName = z
  .string()
  .min(1, 'Choose a login.')
  .max(255)
  .regex(/^[^\s@-][^\s@]*$/, 'A login has no spaces or "@" and does not start with "-".');
// Terminal sizes: what a screen can show, and what `stty` accepts.
const terminalSize = {
  cols: z.int().min(2).max(1000),
  rows: z.int().min(1).max(500),
};
const terminalId = z.string().min(1).max(64);
/** Keystrokes per message, in UTF-16 units: 8 Ki, so that even JSON-escaped (6 bytes each) a message fits the browser host's 64 KiB frame; the renderer splits larger pastes. */
export const TERMINAL_INPUT_MAX = 8 * 1024;
const deepLinkId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+$/, 'A request id is base64url.');

export const methodSchemas = {
  'clusters.add': z.strictObject({ address: clusterAddress, caPin: caPinText.optional() }),
  'clusters.list': noArgument,
  'clusters.remove': z.strictObject({ address: clusterAddress }),
  'auth.login': z.strictObject({
    address: clusterAddress,
    user: userName,
    password: z.string().min(1, 'Give the password.').max(1024),
    secondFactor: secondFactor.optional(),
    ttlSeconds: z
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .optional(),
  }),
  'auth.loginPasswordless': z.strictObject({
    address: clusterAddress,
    user: userName.optional(),
    ttlSeconds: z
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .optional(),
  }),
  'auth.logout': z.strictObject({ address: clusterAddress.optional() }).optional(),
  // The SSO connectors the cluster lists now (GetClusterInfo on the trusted cluster): name and display.
  'auth.connectors': z.strictObject({ address: clusterAddress }),
  // An SSO login through `connector`: the IdP's page in the system browser, a browserSignIn prompt meanwhile.
  'auth.loginSso': z.strictObject({
    address: clusterAddress,
    connector: connectorName,
    ttlSeconds: z
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .optional(),
  }),
  'auth.status': z.strictObject({ address: clusterAddress.optional() }).optional(),
  // "Sign in again" before (or after) the session ends: the relogin prompt for that cluster, joined with
  // one already running; resolves to the renewed profile (CANCELLED when the person cancels).
  'auth.signInAgain': z.strictObject({ address: clusterAddress }),
  // The session notices said so far (the latest per session): a window that opens later shows its banner.
  'auth.sessionNotices': noArgument,
  'mfa.list': noArgument,
  // Security keys only: an OTP enrollment would put the OTP secret in the renderer (invariant 1).
  // Without a name, the person is asked for one (a deviceName prompt) after the new key has answered.
  'mfa.add': z.strictObject({
    name: deviceNameText.optional(),
    passwordless: z.boolean().optional(),
    existing: secondFactor.optional(),
  }),
  'mfa.remove': z.strictObject({
    name: z.string().min(1, 'Give the name of the device to remove.').max(64),
    existing: secondFactor.optional(),
  }),
  // For the signed-in profile of `cluster` (the current one when omitted).
  'device.status': z.strictObject({ cluster: clusterAddress.optional() }).optional(),
  // Without a token: self-enrollment, which the person's roles must allow.
  'device.enroll': z.strictObject({ cluster: clusterAddress, token: enrollToken.optional() }),
  // The nodes the signed-in profile of `cluster` (the current one when omitted) may reach.
  'nodes.list': z.strictObject({ cluster: clusterAddress.optional() }).optional(),
  // The keyport:// request on hold, for a window that opens after it arrived (the app started by a link).
  'deepLinks.current': noArgument,
  // Cancel: the request's token is dropped at once.
  'deepLinks.dismiss': z.strictObject({ id: deepLinkId }),
  // The held request as the cluster describes it (the token stays in the backend).
  'deepLinks.inspect': z.strictObject({ id: deepLinkId }),
  // Authorize: this device approves the held request and the browser is sent to the confirm URL.
  'deepLinks.authorize': z.strictObject({ id: deepLinkId }),
  // A terminal tab: the ceremony (per-session MFA where it applies), then ssh in a pseudo-terminal.
  'terminals.open': z.strictObject({
    cluster: clusterAddress.optional(),
    node: nodeName,
    login: loginName,
    ...terminalSize,
  }),
  'terminals.input': z.strictObject({ id: terminalId, data: z.string().min(1).max(TERMINAL_INPUT_MAX) }),
  'terminals.resize': z.strictObject({ id: terminalId, ...terminalSize }),
  'terminals.close': z.strictObject({ id: terminalId }),
  'prompts.answer': z.strictObject({ id: z.string().min(1).max(64), value: promptAnswerSchema }),
  'prompts.cancel': z.strictObject({ id: z.string().min(1).max(64) }),
  // The prompt on screen now: a window that (re)loads mid-ceremony shows it instead of hanging behind it.
  'prompts.current': noArgument,
  'app.info': noArgument,
  'app.ready': noArgument,
} as const satisfies { [M in MethodName]: z.ZodType };

export type MethodArgs = { [M in MethodName]: z.input<(typeof methodSchemas)[M]> };

export interface MethodResults {
  'clusters.add': ClusterView;
  'clusters.list': ClusterView[];
  'clusters.remove': null;
  'auth.login': ProfileView;
  'auth.loginPasswordless': ProfileView;
  'auth.logout': ProfileView | null;
  'auth.status': ProfileView | null;
  'auth.signInAgain': ProfileView;
  'auth.sessionNotices': SessionNotice[];
  'auth.connectors': ConnectorView[];
  'auth.loginSso': ProfileView;
  'mfa.list': MfaDeviceView[];
  'mfa.add': MfaDeviceView;
  'mfa.remove': null;
  'device.status': DeviceTrustView;
  'device.enroll': EnrolledDeviceView;
  'nodes.list': NodeView[];
  'deepLinks.current': DeepLinkRequest | null;
  'deepLinks.dismiss': null;
  'terminals.open': TerminalView;
  'terminals.input': null;
  'terminals.resize': null;
  'terminals.close': null;
  'deepLinks.inspect': WebApprovalView;
  'deepLinks.authorize': WebApprovalDone;
  'prompts.answer': null;
  'prompts.cancel': null;
  'prompts.current': Prompt | null;
  'app.info': AppInfo;
  /** The renderer says its first screen is on show and takes input; hosts may act on it (once). */
  'app.ready': null;
}

// Every name has a schema (the `satisfies` above) and every schema a name:
const schemaNamesAreMethodNames: keyof typeof methodSchemas extends MethodName ? true : never = true;
void schemaNamesAreMethodNames;

/** What main binds: one handler per method, taking the raw (unvalidated) argument. */
export type HandlerTable = { [M in MethodName]: (argument?: unknown) => Promise<Result<MethodResults[M]>> };

// ---------------------------------------------------------------------------------------------------
// Events

/**
 * What the session watcher says of a profile's session: "ends soon" (before `expiresMs`, by the app's
 * setting) or "ended". A view model: the cluster, the user and the time, nothing of the certificates.
 */
export const sessionNoticeSchema = z.strictObject({
  kind: z.enum(['endsSoon', 'ended']),
  address: z.string().min(1).max(260),
  user: z.string().min(1).max(255),
  expiresMs: z.int().min(0),
  /** The service clock when it was said: the renderer counts the minutes left on that clock. */
  nowMs: z.int().min(0).optional(),
});
export type SessionNotice = z.infer<typeof sessionNoticeSchema>;

export interface EventPayloads extends Record<EventName, unknown> {
  onPrompt: Prompt;
  onPromptClosed: PromptClosed;
  /** After a login or logout; `profile` is null when signed out of `address`. */
  onProfileChanged: { address: string; profile: ProfileView | null };
  /** A keyport:// link arrived (Electron's open-url or argv, the browser host's socket). */
  onDeepLink: DeepLinkEvent;
  onTerminalData: TerminalData;
  onTerminalEnded: TerminalEnded;
  /** A session ends soon, or has ended (main/backend/session-watcher.ts): once per session and kind. */
  onSessionNotice: SessionNotice;
}
const payloadsCoverEvents: [keyof EventPayloads, EventName] extends [EventName, keyof EventPayloads]
  ? true
  : never = true;
void payloadsCoverEvents;

export type Unsubscribe = () => void;

// ---------------------------------------------------------------------------------------------------
// window.keyport, as the preload exposes it

type Namespace<P extends string> = {
  [M in MethodName as M extends `${P}.${infer Name}` ? Name : never]: undefined extends MethodArgs[M]
    ? (argument?: MethodArgs[M]) => Promise<Result<MethodResults[M]>>
    : (argument: MethodArgs[M]) => Promise<Result<MethodResults[M]>>;
};

export type KeyportApi = {
  clusters: Namespace<'clusters'>;
  auth: Namespace<'auth'>;
  mfa: Namespace<'mfa'>;
  device: Namespace<'device'>;
  nodes: Namespace<'nodes'>;
  deepLinks: Namespace<'deepLinks'>;
  terminals: Namespace<'terminals'>;
  prompts: Namespace<'prompts'>;
  app: Namespace<'app'>;
} & { [E in EventName]: (listener: (payload: EventPayloads[E]) => void) => Unsubscribe };
