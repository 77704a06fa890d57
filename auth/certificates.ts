// Session certificates from one typed identity: an OpenSSH user certificate and an X.509 client
// certificate for the client's keys, valid from now (back-dated for lagging client clocks) for the
// session's length. Everything a certificate says about its holder comes from SessionIdentity; later
// issues add fields here (private-key policy, device) rather than in the services.
import { randomUUID } from 'node:crypto';
import type { ClientPublicKey } from './ca/spki';
import { signSshUserCertificate } from './ca/ssh';
import type { SshPublicKey } from './ca/ssh';
import { issueClientCertificate } from './ca/x509';
import { CLIENT_CERT_BACKDATE_MS } from './context';
import type { ServiceContext } from './context';
import { loadRoles, loginsFor, sessionTtlSeconds } from './policy';
import type { UserRow } from './storage/store';
import type { SessionDevice } from './device-trust/policy';
import type { PerfSteps } from './perf';
import type { PrivateKeyPolicy } from '../proto/resources/private-key-policy';
import type { Role } from '../proto/resources/schema';

/** Who a session is for, as its certificates will say it. */
export interface SessionIdentity {
  user: string;
  roles: string[];
  /** SSH principals, from the roles' logins and the user's traits. */
  logins: string[];
  /** A second factor (or a passkey with user verification) was checked at this login. */
  mfaVerified: boolean;
  /** How long the session lasts: the requested TTL capped by the roles' max_session_ttl. */
  ttlSeconds: number;
  /** The trusted device this login authenticated (or enrolled), when there is one. */
  device?: SessionDevice;
  /** The private-key policy the session key was attested to meet; absent means a software key ("none"). */
  privateKeyPolicy?: PrivateKeyPolicy;
}

/**
 * The private-key policy met, by name, in the SSH certificate (`keyport-private-key-policy@keyport.dev`) and
 * the X.509 identity (`keyport-private-key-policy`); only on sessions whose key was attested.
 */
export const PRIVATE_KEY_POLICY_EXTENSION = 'keyport-private-key-policy';

function keyPolicyExtensions(policy: PrivateKeyPolicy | undefined): Record<string, string> {
  return policy === undefined || policy === 'none' ? {} : { [PRIVATE_KEY_POLICY_EXTENSION]: policy };
}

/** The device extensions, by name, in the SSH certificate (with @keyport.dev) and the X.509 identity. */
export const DEVICE_EXTENSIONS = {
  deviceId: 'keyport-device-id',
  assetTag: 'keyport-device-asset-tag',
  credentialId: 'keyport-device-credential-id',
} as const;

function deviceExtensions(device: SessionDevice | undefined): Record<string, string> {
  if (!device) return {};
  return Object.fromEntries(
    (Object.keys(DEVICE_EXTENSIONS) as (keyof SessionDevice)[]).map((field) => [
      DEVICE_EXTENSIONS[field],
      device[field],
    ]),
  );
}

/** The client's public keys: one for SSH, one for TLS (the same key in two encodings, usually). */
export interface SessionKeys {
  ssh: SshPublicKey;
  tls: ClientPublicKey;
}

export interface SessionCertificates {
  sshCertificate: string;
  tlsCertificatePem: string;
  notAfter: Date;
}

/** The identity a user's login earns now: their current roles and logins, the session capped by them. */
export async function sessionIdentityOf(
  ctx: ServiceContext,
  user: UserRow,
  options: {
    mfaVerified: boolean;
    requestedTtlSeconds?: number;
    device?: SessionDevice;
    privateKeyPolicy?: PrivateKeyPolicy;
    /** The user's roles, when the caller has just read them. */
    roles?: Role[];
  },
): Promise<SessionIdentity> {
  const spec = JSON.parse(user.spec_json) as { roles?: string[]; traits?: Record<string, string[]> };
  const roles = options.roles ?? (await loadRoles(ctx.store, spec.roles ?? []));
  return {
    user: user.name,
    roles: roles.map((role) => role.metadata.name),
    logins: loginsFor(roles, spec.traits ?? {}),
    mfaVerified: options.mfaVerified,
    ttlSeconds: sessionTtlSeconds(roles, options.requestedTtlSeconds || undefined),
    ...(options.device ? { device: options.device } : {}),
    ...(options.privateKeyPolicy && options.privateKeyPolicy !== 'none'
      ? { privateKeyPolicy: options.privateKeyPolicy }
      : {}),
  };
}

export async function issueSessionCertificates(
  ctx: ServiceContext,
  identity: SessionIdentity,
  keys: SessionKeys,
  perf?: PerfSteps,
): Promise<SessionCertificates> {
  const now = ctx.now();
  const notBefore = new Date(now - CLIENT_CERT_BACKDATE_MS);
  const notAfter = new Date(now + identity.ttlSeconds * 1000);
  // The two signatures run side by side on the thread pool.
  const sshSigned = signSshUserCertificate({
    ca: ctx.authorities.ssh,
    publicKey: keys.ssh,
    keyId: identity.user,
    // A certificate without principals would be valid for any login: a user without logins gets one
    // that matches no account.
    principals: identity.logins.length > 0 ? identity.logins : [`-keyport-nologin-${randomUUID()}`],
    validAfter: notBefore,
    validBefore: notAfter,
    extensions: {
      'keyport-roles@keyport.dev': JSON.stringify(identity.roles),
      ...(identity.mfaVerified ? { 'keyport-mfa-verified@keyport.dev': '' } : {}),
      ...Object.fromEntries(
        Object.entries({
          ...deviceExtensions(identity.device),
          ...keyPolicyExtensions(identity.privateKeyPolicy),
        }).map(([name, value]) => [`${name}@keyport.dev`, value]),
      ),
    },
  });
  const tlsIssued = issueClientCertificate({
    authorities: ctx.authorities,
    publicKeyPem: keys.tls,
    user: identity.user,
    roles: identity.roles,
    logins: identity.logins,
    mfaVerified: identity.mfaVerified,
    extra: { ...deviceExtensions(identity.device), ...keyPolicyExtensions(identity.privateKeyPolicy) },
    notBefore,
    notAfter,
  });
  const [sshCertificate, tls] = await Promise.all([sshSigned, tlsIssued]);
  perf?.step('certificates');
  return { sshCertificate, tlsCertificatePem: tls.certPem, notAfter };
}
