// The kinds of audit events keyport-auth records: one list for the service (auth/audit.ts), the admin
// API (which refuses other kinds as a filter) and `keyport admin audit --type`.
export const AUDIT_EVENT_TYPES = [
  'user.login',
  'user.signup',
  'user.create',
  'user.delete',
  'user.update',
  'user.lock',
  'user.unlock',
  /** One client address reached the failed sign-in limit for one user name, and is locked out for it. */
  'user.lockout',
  /** A client address or a user name went over its rate limit (recorded once per window). */
  'rate.limited',
  'cert.issued',
  'resource.create',
  'resource.update',
  'resource.delete',
  'mfa.add',
  'mfa.delete',
  /** A security key's sign counter did not rise: possibly a cloned key. The assertion is refused. */
  'mfa.counter_regression',
  /** An admin write refused for want of a security key's answer bound to it (MFA for admin actions). */
  'mfa.admin_action',
  'auth.denied',
  /** Device trust: the inventory (add, delete, lock, unlock), enrollment tokens, enrollment, and device
   *  authentication at login (success, or why the device was not trusted). */
  'device.add',
  'device.delete',
  'device.lock',
  'device.unlock',
  'device.token',
  'device.enroll',
  'device.authenticate',
  /** Nodes: a registration (host certificate and identity issued), a per-session certificate issued after
   *  a touch, and every connection keyport-node asked about (allowed, or why it was refused). */
  'node.register',
  'session.certificate',
  'session.connect',
  /** The web UI: a browser session started (at its login, with `user.login`) or ended (sign-out, or its
   *  user locked or deleted). */
  'web.session',
  /** The web-session approval ceremony: a browser's request, Keyport Connect's read and its device's
   *  approval, the browser's confirmation (the session trusted), and each refusal. */
  'web.approval',
  /** SSO through an oidc connector (auth/sso/): a login started, the IdP's callback (the claims mapped and
   *  the roles granted, or why it was refused), and the one-time code redeemed; with connector and subject. */
  'sso.login',
] as const;

export type AuditType = (typeof AUDIT_EVENT_TYPES)[number];

export function isAuditType(value: string): value is AuditType {
  return (AUDIT_EVENT_TYPES as readonly string[]).includes(value);
}

/** The refusal of an unknown type, naming the valid ones. */
export function unknownAuditTypeMessage(value: string): string {
  return `"${value}" is not an audit event type; use one of: ${AUDIT_EVENT_TYPES.join(', ')}.`;
}
