// Who is calling: the X.509 client certificate from login, checked on every call against the CA, its
// validity, and the user's current state (a deleted or locked user's certificate stops working at once).
// The certificate comes over mTLS, or, for a session key that cannot do a TLS handshake, in the call's
// metadata with a proof of possession by its key for that very call (pop.ts).
import type { KeyObject } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import { digestOf, PopRefused } from '../proto/pop';
import { CaError } from './ca/errors';
import { verifyClientCertificate } from './ca/x509';
import type { VerifiedClientCertificate } from './ca/x509';
import { CLIENT_CERT_BACKDATE_MS } from './context';
import type { ServiceContext } from './context';
import type { CallContext } from './rpc';
import { isLocked, lockedError } from './lockout';
import { DEVICE_EXTENSIONS } from './certificates';
import { proveCallPossession } from './pop';
import type { SessionDevice } from './device-trust/policy';
import { requiredKeyPolicy } from '../proto/resources/private-key-policy';
import type { Role } from '../proto/resources/schema';
import { checkCertificateKeyPolicy } from './hardware-key/login';
import { loadCap, loadRoles } from './policy';

export const BUILTIN_ADMIN = 'keyport-admin';
/** The claim that makes a client certificate a node's identity (keyport-node), naming the node. */
export const NODE_IDENTITY_CLAIM = 'keyport-node';

export interface Identity {
  user: string;
  roles: string[];
  logins: string[];
  mfaVerified: boolean;
  /** The auth host's own super-admin identity (`keyport admin --data-dir`): allowed every admin rule. */
  builtin: boolean;
  validAfterMs: number;
  expiresMs: number;
  /**
   * The trusted device the certificate carries, while that device stays enrolled with the same credential
   * and unlocked: deleting or locking a device takes its trust away from live sessions at once.
   */
  device?: SessionDevice;
  /**
   * The documents of `roles` as this call read them (for today's key policy): authorize and permissionsOf
   * use them rather than reading the roles again. Empty for the builtin admin, whose rules are not roles.
   */
  roleDocuments: readonly Role[];
  /** The session's public key, which the certificate names (per-session SSH certificates are for it). */
  publicKey: KeyObject;
  /** The certificate's extra claims (device, private-key policy), as issued. */
  claims: Readonly<Record<string, string>>;
  /** An SSO user's connector and IdP subject (from the user's row, read on every call): for the audit log. */
  sso?: { connector: string; subject: string };
}

const expired = () =>
  new KeyportError('CERTIFICATE_EXPIRED', 'Your session has expired: run `keyport login` again.', {
    resolvableByRelogin: true,
  });

/**
 * Certificates already verified (signature, extensions; their public key parsed), by the base64url SHA-256
 * of their DER, the digest a proof of possession names. Verifying costs about 1.7 ms and every
 * authenticated call needs it; the validity period and the user's state are still checked on every call.
 */
const verifiedCertificates = new Map<string, VerifiedClientCertificate>();
const VERIFIED_CACHE_SIZE = 1024;

interface CheckedCertificate {
  verified: VerifiedClientCertificate;
  /** digestOf(the DER). */
  digest: string;
}

function verifyCached(ctx: ServiceContext, der: Buffer): CheckedCertificate {
  const key = digestOf(der);
  const now = ctx.now();
  const cached = verifiedCertificates.get(key);
  if (cached) {
    if (now < cached.notBefore.getTime() || now > cached.notAfter.getTime()) throw expired();
    return { verified: cached, digest: key };
  }
  let verified: VerifiedClientCertificate;
  try {
    verified = verifyClientCertificate(ctx.authorities, der, new Date(now));
  } catch (error) {
    if (error instanceof CaError && error.code === 'CERTIFICATE_EXPIRED') throw expired();
    throw new KeyportError('UNAUTHENTICATED', 'The client certificate was not issued by this cluster.', {
      resolvableByRelogin: true,
    });
  }
  if (verifiedCertificates.size >= VERIFIED_CACHE_SIZE) {
    verifiedCertificates.delete(verifiedCertificates.keys().next().value as string);
  }
  verifiedCertificates.set(key, verified);
  return { verified, digest: key };
}

/**
 * The certificate that authenticates this call: the mTLS peer's (the TLS handshake proved its key), or
 * else the one in the call's metadata, with a proof of possession by its key for this very call. A
 * certificate alone, which anyone who saw it could send, never authenticates.
 */
async function callCertificate(ctx: ServiceContext, call: CallContext): Promise<VerifiedClientCertificate> {
  if (call.peerCertificateDer) return verifyCached(ctx, call.peerCertificateDer).verified;
  if (call.metadataCertificateDer) {
    if (call.proof === undefined) throw new PopRefused('missing');
    const { verified, digest } = verifyCached(ctx, call.metadataCertificateDer);
    await proveCallPossession(ctx, call, { digest, publicKey: verified.publicKey });
    return verified;
  }
  throw new KeyportError(
    'UNAUTHENTICATED',
    'This call needs a signed-in client: run `keyport login` first.',
    {
      resolvableByRelogin: true,
    },
  );
}

export async function authenticate(ctx: ServiceContext, call: CallContext): Promise<Identity> {
  const verified = await callCertificate(ctx, call);
  if (verified.extra[NODE_IDENTITY_CLAIM] !== undefined) {
    throw new KeyportError('UNAUTHENTICATED', "A node's identity may call only the node service.");
  }
  const identity: Identity = {
    user: verified.user,
    roles: [...verified.roles],
    logins: [...verified.logins],
    mfaVerified: verified.mfaVerified,
    builtin: verified.extra['builtin'] === 'true',
    validAfterMs: verified.notBefore.getTime(),
    expiresMs: verified.notAfter.getTime(),
    roleDocuments: [],
    publicKey: verified.publicKey,
    claims: verified.extra,
  };
  if (identity.builtin) {
    const serial = verified.serial.toString(16);
    if (
      identity.user !== BUILTIN_ADMIN ||
      (serial !== ctx.builtinAdminSerial && !(await ctx.store.isBuiltinAdmin(serial, ctx.now())))
    ) {
      throw new KeyportError(
        'UNAUTHENTICATED',
        'This admin identity was replaced when the auth service restarted.',
      );
    }
    return identity;
  }
  const user = await ctx.store.getUser(identity.user);
  if (!user) {
    throw new KeyportError('UNAUTHENTICATED', `User "${identity.user}" no longer exists on this cluster.`);
  }
  // A certificate from before this user existed belongs to a deleted user of the same name. X.509 times
  // have whole seconds, so the creation time is compared at that precision.
  const createdSecondMs = Math.floor(user.created_ms / 1000) * 1000;
  if (verified.notBefore.getTime() + CLIENT_CERT_BACKDATE_MS < createdSecondMs) {
    throw new KeyportError('UNAUTHENTICATED', `User "${identity.user}" no longer exists on this cluster.`);
  }
  if (isLocked(user, ctx.now())) throw lockedError(user);
  // Roles taken away since login stop counting at once; roles added count from the next login.
  const current = new Set<string>(JSON.parse(user.spec_json).roles ?? []);
  const roles = identity.roles.filter((role) => current.has(role));
  // The session key must meet today's private-key policy (the cap's and the roles' require_session_mfa):
  // one raised since the login is refused as PRIVATE_KEY_POLICY_NOT_MET, which a relogin with the card
  // resolves.
  const [cap, roleDocuments, device] = await Promise.all([
    loadCap(ctx.store),
    loadRoles(ctx.store, roles),
    currentDevice(ctx, verified.extra),
  ]);
  checkCertificateKeyPolicy(verified.extra, requiredKeyPolicy(cap, roleDocuments));
  return {
    ...identity,
    roles,
    roleDocuments,
    ...(device ? { device } : {}),
    ...(user.sso_connector
      ? { sso: { connector: user.sso_connector, subject: user.sso_subject ?? '' } }
      : {}),
  };
}

/** The certificate's device, when it is still enrolled with that credential and not locked. */
export async function currentDevice(
  ctx: ServiceContext,
  extra: Readonly<Record<string, string>>,
): Promise<SessionDevice | undefined> {
  const deviceId = extra[DEVICE_EXTENSIONS.deviceId];
  const credentialId = extra[DEVICE_EXTENSIONS.credentialId];
  if (!deviceId || !credentialId) return undefined;
  const row = await ctx.store.devices.get(deviceId);
  if (!row || row.locked || row.enroll_status !== 'enrolled' || row.credential_id !== credentialId) {
    return undefined;
  }
  return { deviceId, assetTag: row.asset_tag, credentialId };
}

/**
 * The node calling (keyport-node), from its client identity: a certificate of this cluster naming the node,
 * whose serial is the one the node's latest registration issued. A user's certificate is refused, and so
 * is a node's identity replaced by a later `nodes add` or left behind by a deleted node.
 */
export async function authenticateNode(ctx: ServiceContext, call: CallContext): Promise<string> {
  const verified = await callCertificate(ctx, call);
  const node = verified.extra[NODE_IDENTITY_CLAIM];
  if (node === undefined) {
    throw new KeyportError('ACCESS_DENIED', "Only a node's own identity may call the node service.");
  }
  const row = await ctx.store.nodes.get(node);
  if (!row || row.identity_serial !== verified.serial.toString(16)) {
    throw new KeyportError(
      'UNAUTHENTICATED',
      `This identity of node "${node}" is no longer valid: register the node again (keyport admin nodes add).`,
    );
  }
  return node;
}
