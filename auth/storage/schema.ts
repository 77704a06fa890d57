// Table types for Kysely, for SQLite and PostgreSQL alike. Columns use types both hold the same way: text
// (JSON too), bigint milliseconds and 0/1 integers for flags; the rest of the difference is dialects.ts.
import type { Generated } from 'kysely';

export interface UsersTable {
  name: string;
  spec_json: string;
  password_hash: string | null;
  created_ms: number;
  updated_ms: number;
  locked_until_ms: number | null;
  lock_reason: string | null;
  /** base64url WebAuthn user handle (32 random bytes), made when the user registers a first key. */
  webauthn_user_handle: Generated<string | null>;
  /** An SSO user's connector (and the IdP's subject): null for a local user (migration 0011). */
  sso_connector: Generated<string | null>;
  sso_subject: Generated<string | null>;
}

export interface RolesTable {
  name: string;
  doc_json: string;
  created_ms: number;
  updated_ms: number;
}

export interface ClusterConfigTable {
  key: string;
  value_json: string;
  updated_ms: number;
}

export interface SignupTokensTable {
  token_hash: string;
  user: string;
  created_ms: number;
  expires_ms: number;
  used: number;
  /** The TOTP secret offered at StartSignup, confirmed by CompleteSignup. */
  pending_totp_secret: string | null;
}

export interface MfaDevicesTable {
  id: string;
  user: string;
  name: string;
  type: 'totp' | 'webauthn';
  added_ms: number;
  last_used_ms: number | null;
  totp_secret: string | null;
  /** Highest TOTP time step accepted, so a code is never accepted twice. */
  totp_last_step: number | null;
  webauthn_credential_id: string | null;
  webauthn_public_key: string | null;
  webauthn_sign_count: number | null;
  webauthn_aaguid: string | null;
  passkey: number;
}

export interface ChallengesTable {
  id: string;
  user: string | null;
  scope: string;
  payload_json: string;
  created_ms: number;
  expires_ms: number;
  used: number;
}

export interface LoginAttemptsTable {
  id: Generated<number>;
  /** The user name as typed (a name of no user is throttled the same way). */
  name: string;
  /** The caller's IP address, without its port. */
  client_addr: string;
  /** 'pending' while the password is checked (a reservation, until expires_ms), then 'failed'. */
  state: 'pending' | 'failed';
  time_ms: number;
  expires_ms: number;
}

export interface RateLimitsTable {
  key: string;
  window_start_ms: number;
  count: number;
}

export interface AuditEventsTable {
  id: Generated<number>;
  time_ms: number;
  type: string;
  actor: string;
  client_addr: string;
  success: number;
  message: string;
  fields_json: string;
}

export interface TrustedDevicesTable {
  id: string;
  os_type: string;
  asset_tag: string;
  /** 'manual' (an admin registered it) or 'self' (self-enrollment). */
  source: string;
  enroll_status: 'not_enrolled' | 'enrolled';
  owner: string | null;
  /** base64url(SHA-256(AK TPMT_PUBLIC)), unique among enrolled devices. */
  credential_id: string | null;
  /** base64 marshalled TPMT_PUBLIC of the attestation key. */
  ak_public: string | null;
  ek_fingerprint: string | null;
  /** PEM, when the TPM had an EK certificate. */
  ek_certificate: string | null;
  created_ms: number;
  updated_ms: number;
  enrolled_ms: number | null;
  locked: number;
  lock_reason: string | null;
}

export interface DeviceEnrollTokensTable {
  token_hash: string;
  device_id: string;
  created_ms: number;
  expires_ms: number;
  used: number;
}

export interface ClusterAuthoritiesTable {
  /** 'ssh_user', 'tls' or 'ssh_host'. */
  kind: string;
  /** PKCS#8 PEM sealed under the key-encryption key (`kp-sealed:v1:…`, bound to `ca-key:KIND`). */
  private_key: string;
  /** The TLS CA's certificate (PEM); null for the SSH user CA. */
  certificate: string | null;
  created_ms: number;
}

export interface BuiltinAdminsTable {
  /** The replica that issued it: `HOST:DATA_DIR`. */
  replica: string;
  /** Hex serial of the super-admin client certificate that replica wrote at its last start. */
  serial: string;
  issued_ms: number;
  expires_ms: number;
}

export interface PopNoncesTable {
  /** The proof's `n` claim, as sent (base64url of 16 random bytes). */
  nonce: string;
  /** Until when a proof carrying it could still be accepted (proto/pop.ts nonceExpiresMs). */
  expires_ms: number;
}

export interface NodesTable {
  name: string;
  /** The node resource document (kind node, sub_kind openssh). */
  doc_json: string;
  /** Hex serial of the node's current client identity (keyport-node); null until one is issued. */
  identity_serial: string | null;
  created_ms: number;
  updated_ms: number;
}

export interface SessionCertificatesTable {
  /** The SSH certificate's serial, in decimal. */
  serial: string;
  user: string;
  node: string;
  login: string;
  created_ms: number;
  expires_ms: number;
  /** The sshd connection that spent it ("PID:STARTTIME" of its per-connection process); null until then. */
  connection: string | null;
  spent_ms: number | null;
}

export interface NodeConnectionsTable {
  node: string;
  /** The sshd connection ("PID:STARTTIME" of its per-connection process), as keyport-node names it. */
  connection: string;
  /** When keyport-auth first allowed it (the one `session.connect` audit event). */
  first_ms: number;
}

export interface WebSessionsTable {
  /** The session's public id (base64url of 16 random bytes): names it in links and the audit log. */
  id: string;
  /** base64url SHA-256 of the cookie's token; the token itself is never stored. */
  token_hash: string;
  user: string;
  /** How the person signed in, for the audit log and the home screen. */
  login_method: string;
  mfa_verified: number;
  /** The browser's address and user agent as the server saw them at sign-in. */
  client_addr: string;
  user_agent: string;
  created_ms: number;
  expires_ms: number;
  /** The trusted device that approved this session; null while the session is untrusted. */
  device_id: string | null;
  device_asset_tag: string | null;
  device_trusted_ms: number | null;
}

/** A web session's request for a trusted device's approval (migration 0011). */
export interface WebSessionApprovalsTable {
  /** The request's public id (base64url of 16 random bytes): the link's and the confirm URL's `id`. */
  id: string;
  /** The web session that asked; the approval upgrades only that one. */
  web_session_id: string;
  user: string;
  /** base64url SHA-256 of the web token (the keyport:// link's `token`). */
  token_hash: string;
  created_ms: number;
  /** Until when the web token may be spent. */
  expires_ms: number;
  token_used: number;
  /** base64url SHA-256 of the confirmation token, set when a device approved the request. */
  confirm_hash: string | null;
  confirm_expires_ms: number | null;
  confirm_used: number;
  /** The device that approved, carried to the web session at confirmation. */
  device_id: string | null;
  device_asset_tag: string | null;
}

export interface OidcConnectorsTable {
  name: string;
  /** The oidc resource document, without its client secret. */
  doc_json: string;
  /** The client secret, sealed (`kp-sealed:…`, context `oidc-client-secret:NAME`). */
  client_secret: string;
  created_ms: number;
  updated_ms: number;
}

/** An SSO login in flight (auth/sso/): started, called back by the IdP, redeemed by the client. */
export interface SsoRequestsTable {
  id: string;
  /** SHA-256 (base64url) of the `state` sent to the IdP. */
  state_hash: string;
  connector: string;
  nonce: string;
  pkce_verifier: string;
  /** http://127.0.0.1:PORT/PATH: where the browser is sent with the one-time code. */
  client_redirect_url: string;
  /** The session's public keys (and a hardware key's attestation), as the client gave them. */
  keys_json: string;
  client_addr: string;
  created_ms: number;
  expires_ms: number;
  /** 'started' → 'called-back' (the state spent) → 'authorized' (a code issued) → 'redeemed'. */
  stage: string;
  /** SHA-256 (base64url) of the one-time code. */
  code_hash: string | null;
  code_expires_ms: number | null;
  user: string | null;
  /** What the callback established: roles, IdP subject, claims matched. */
  identity_json: string | null;
  /** The device challenge's payload (device-trust/payloads.ts) when the request offered a device. */
  device_json: string | null;
}

export interface Database {
  users: UsersTable;
  roles: RolesTable;
  cluster_config: ClusterConfigTable;
  signup_tokens: SignupTokensTable;
  mfa_devices: MfaDevicesTable;
  challenges: ChallengesTable;
  login_attempts: LoginAttemptsTable;
  rate_limits: RateLimitsTable;
  audit_events: AuditEventsTable;
  trusted_devices: TrustedDevicesTable;
  device_enroll_tokens: DeviceEnrollTokensTable;
  cluster_authorities: ClusterAuthoritiesTable;
  builtin_admins: BuiltinAdminsTable;
  pop_nonces: PopNoncesTable;
  nodes: NodesTable;
  session_certificates: SessionCertificatesTable;
  node_connections: NodeConnectionsTable;
  web_sessions: WebSessionsTable;
  oidc_connectors: OidcConnectorsTable;
  web_session_approvals: WebSessionApprovalsTable;
  sso_requests: SsoRequestsTable;
}
