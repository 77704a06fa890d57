// What every service handler shares: storage, the CAs, the cluster's identity and settings, the clock.
import type { AuditLog } from './audit';
import type { Authorities } from './ca/authority';
import type { RateLimitPolicy } from './lockout';
import type { Sealer } from './secrets';
import type { RelyingParty } from './sso/relying-party';
import type { Store } from './storage/store';

export interface LockoutPolicy {
  maxAttempts: number;
  windowMs: number;
  durationMs: number;
}

export interface ServiceContext {
  store: Store;
  audit: AuditLog;
  authorities: Authorities;
  clusterName: string;
  publicAddr: string;
  caPin: string;
  version: string;
  lockout: LockoutPolicy;
  rateLimit: RateLimitPolicy;
  /** Seals TOTP seeds (and the CA keys, at load) under the key-encryption key: auth/secrets.ts. */
  secrets: Sealer;
  now: () => number;
  /**
   * Serial of the super-admin certificate written to the data dir at this start. Replicas on one database
   * also accept each other's current one (table builtin_admins); no other passes as the super-admin.
   */
  builtinAdminSerial: string;
  /** The web UI's origin (https://host:port) when this replica serves one: the confirm URL's base. */
  webOrigin?: string;
  /** keyport-auth as the OIDC relying party of the SSO connectors (auth/sso/). */
  sso: RelyingParty;
}

/** How long an SSO request waits for the IdP's callback; and its one-time code for the client. */
export const SSO_REQUEST_TTL_MS = 5 * 60 * 1000;
export const SSO_CODE_TTL_MS = 60 * 1000;
/** With require_local_mfa the code also waits for a touch (or a first key's registration, with its PIN). */
export const SSO_LOCAL_MFA_CODE_TTL_MS = 3 * 60 * 1000;

export const SIGNUP_TOKEN_TTL_MS = 60 * 60 * 1000;
export const MFA_CHALLENGE_TTL_MS = 5 * 60 * 1000;
export const DEFAULT_SESSION_TTL_SECONDS = 12 * 60 * 60;
/** Client certificates start this long before their issue, for clients whose clocks lag. */
export const CLIENT_CERT_BACKDATE_MS = 60_000;
