// What the SSO ceremony's server steps share: random tokens and their stored hashes, the connector opened
// with its secret, the request's stored keys, and the `sso.login` audit rows (with connector and subject).
import { createHash, randomBytes, verify } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { HardwareKeyAttestation } from '../../proto/gen/keyport/v1/auth';
import type { OidcConnector } from '../../proto/resources/schema';
import { SSO_TOKEN } from '../../proto/sso';
import type { ClientPublicKey } from '../ca/spki';
import { openConnector } from '../connectors';
import type { ServiceContext } from '../context';
import type { UserRow } from '../storage/store';

/** 32 random bytes, base64url: a request id, state, nonce or one-time code. */
export const newToken = (): string => randomBytes(32).toString('base64url');

/** How a state or a one-time code is stored: only its SHA-256, so a copy of the database redeems nothing. */
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** The request id and one-time code a client sends back (its challenge, its redemption): both token-shaped. */
export function checkRequestCode(request: { requestId: string; ssoCode: string }): void {
  if (!SSO_TOKEN.test(request.requestId) || !SSO_TOKEN.test(request.ssoCode)) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      'The request id and the one-time code are 43 base64url characters.',
      { fieldPath: SSO_TOKEN.test(request.requestId) ? 'sso_code' : 'request_id' },
    );
  }
}

/** The session's keys as the client gave them, kept with the request until the code is redeemed. */
export interface StoredKeys {
  tls: string;
  ssh: string;
  ttlSeconds: number;
  attestation?: unknown;
}

export function storedKeysJson(keys: {
  tls: string;
  ssh: string;
  ttlSeconds: number;
  attestation: HardwareKeyAttestation | undefined;
}): string {
  const stored: StoredKeys = {
    tls: keys.tls,
    ssh: keys.ssh,
    ttlSeconds: keys.ttlSeconds,
    ...(keys.attestation ? { attestation: HardwareKeyAttestation.toJSON(keys.attestation) } : {}),
  };
  return JSON.stringify(stored);
}

export function parseStoredKeys(
  json: string,
): Omit<StoredKeys, 'attestation'> & { attestation?: HardwareKeyAttestation } {
  const { attestation, ...stored } = JSON.parse(json) as StoredKeys;
  return {
    ...stored,
    ...(attestation === undefined ? {} : { attestation: HardwareKeyAttestation.fromJSON(attestation) }),
  };
}

/**
 * Whether the request's session key (its TLS key, as the client gave it) signed `signed`: ECDSA P-256 with
 * SHA-256 (DER) or Ed25519. The proof that a call about a request comes from the client that started it.
 */
export function signedByRequestKey(tls: ClientPublicKey, signed: Buffer, signature: Uint8Array): boolean {
  try {
    return verify(tls.kind === 'ed25519' ? null : 'sha256', signed, tls.key, Buffer.from(signature));
  } catch {
    return false;
  }
}

/** What the callback established, kept with the request for the redemption. */
export interface SsoIdentity {
  connector: string;
  subject: string;
  roles: string[];
  /** The connector's require_local_mfa when the callback ran: the redemption needs the user's own key. */
  requireLocalMfa?: boolean;
}

/** The connector `name`, whole (its secret opened), or NOT_FOUND naming the ones there are. */
export async function loadConnector(ctx: ServiceContext, name: string): Promise<OidcConnector> {
  const row = name ? await ctx.store.connectors.get(name) : undefined;
  if (row === undefined) {
    const names = (await ctx.store.connectors.list()).map((connector) => connector.name);
    throw new KeyportError(
      'NOT_FOUND',
      `No SSO connector is named "${name}"; ${names.length > 0 ? `this cluster offers: ${names.join(', ')}` : 'this cluster has none'}.`,
      { fieldPath: 'connector_name' },
    );
  }
  return openConnector(row, ctx.secrets);
}

/**
 * A new request's secrets (state, nonce, PKCE verifier) and the IdP's authorization URL for them (discovery
 * first). An IdP that cannot be reached is audited (`sso.login` step `start`) and thrown: nothing is stored.
 */
export async function authorizeAtIdp(
  ctx: ServiceContext,
  connector: OidcConnector,
  call: { clientAddr: string; web?: boolean },
): Promise<{ state: string; nonce: string; pkceVerifier: string; authorizationUrl: URL }> {
  const state = newToken();
  const nonce = newToken();
  const pkceVerifier = newToken();
  try {
    const authorizationUrl = await ctx.sso.authorizationUrl(connector, { state, nonce, pkceVerifier });
    return { state, nonce, pkceVerifier, authorizationUrl };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    await auditSso(ctx, {
      actor: 'unknown',
      clientAddr: call.clientAddr,
      success: false,
      message: call.web ? `web: ${reason}` : reason,
      step: 'start',
      connector: connector.metadata.name,
      ...(call.web ? { fields: { kind: 'web' } } : {}),
    });
    throw error;
  }
}

export function auditSso(
  ctx: ServiceContext,
  entry: {
    actor: string;
    clientAddr: string;
    success: boolean;
    message: string;
    step: 'start' | 'callback' | 'mfa' | 'redeem';
    connector: string;
    subject?: string;
    fields?: Record<string, unknown>;
  },
): Promise<void> {
  return ctx.audit.record({
    type: 'sso.login',
    actor: entry.actor,
    clientAddr: entry.clientAddr,
    success: entry.success,
    message: entry.message,
    fields: {
      step: entry.step,
      connector: entry.connector,
      ...(entry.subject === undefined ? {} : { idp_subject: entry.subject }),
      ...entry.fields,
    },
  });
}

/** An SSO user's connector and IdP subject, for the audit rows of what they do (none for a local user). */
export function ssoUserFields(user: Pick<UserRow, 'sso_connector' | 'sso_subject'> | undefined): {
  connector?: string;
  idp_subject?: string;
} {
  if (!user?.sso_connector) return {};
  return { connector: user.sso_connector, ...(user.sso_subject ? { idp_subject: user.sso_subject } : {}) };
}
