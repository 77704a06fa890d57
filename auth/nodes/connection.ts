// The node's question, answered by keyport-auth: may this certificate log in to the calling node as this
// login, over this sshd connection? keyport-node asks it from sshd's AuthorizedPrincipalsCommand, and
// gets the principals to allow or a typed refusal. Every check runs before the single-use spend, so a
// connection refused for another reason leaves the certificate unspent.
//   1. The certificate: signed by the cluster's user CA, a user certificate, inside its validity on the
//      service clock, naming the login.
//   2. Its user: exists, not locked; the roles it carries that the user still holds.
//   3. RBAC: those roles allow the login on this node (deny wins).
//   4. Device trust, where the cap or a role matching the node requires it: the certificate's device,
//      still enrolled and unlocked.
//   5. A per-session certificate (keyport-session-node): scoped to this node, and spent for this connection
//      (sshd asks twice per connection; both calls pass, any other connection is refused). A normal session
//      certificate: only where the node needs no per-session MFA.
import { KeyportError } from '../../proto/errors';
import type { AuthorizeConnectionRequest } from '../../proto/gen/keyport/v1/node';
import { CaError } from '../ca/errors';
import { parseSshCertificate } from '../ca/ssh';
import type { SshCertificate } from '../ca/ssh';
import type { ServiceContext } from '../context';
import { deviceTrustDecision } from '../device-trust/policy';
import { currentDevice } from '../identity';
import { isLocked } from '../lockout';
import { loadCap, loadRoles } from '../policy';
import { loginDecision, nodeTarget, sessionMfaRequired } from './access';
import { getNode } from './registry';
import { SESSION_NODE_EXTENSION } from './session-certificate';

const CONNECTION = /^[0-9]{1,10}:[0-9]{1,20}$/;
const KEYPORT_EXTENSION = /^(.*)@keyport\.dev$/;

function denied(message: string): KeyportError {
  return new KeyportError('ACCESS_DENIED', message);
}

function parseOffered(request: AuthorizeConnectionRequest, ctx: ServiceContext): SshCertificate {
  try {
    return parseSshCertificate(`${request.certificateType} ${request.certificate}`, {
      trustedCa: ctx.authorities.ssh.publicKey,
    });
  } catch (error) {
    if (error instanceof CaError) {
      throw denied(`The offered key is not a certificate of this cluster's user CA (${error.message}).`);
    }
    throw error;
  }
}

/** The certificate's keyport claims without their @keyport.dev suffix (as the X.509 identity names them). */
function keyportClaims(certificate: SshCertificate): Record<string, string> {
  return Object.fromEntries(
    Object.entries(certificate.extensions).flatMap(([name, value]) => {
      const match = KEYPORT_EXTENSION.exec(name);
      return match?.[1] ? [[match[1], value]] : [];
    }),
  );
}

export interface ConnectionVerdict {
  principals: string[];
  user: string;
  singleUse: boolean;
}

/** Whose certificate it is, filled in as the checks learn it (for the audit of a refusal). */
export interface OfferedBy {
  user?: string;
  sso?: { connector: string; subject: string };
}

export async function authorizeConnection(
  ctx: ServiceContext,
  nodeName: string,
  request: AuthorizeConnectionRequest,
  offered: OfferedBy = {},
): Promise<ConnectionVerdict> {
  if (!CONNECTION.test(request.connection)) {
    throw new KeyportError('INVALID_ARGUMENT', 'connection must be "PID:STARTTIME".', {
      fieldPath: 'connection',
    });
  }
  // 1. The certificate.
  const certificate = parseOffered(request, ctx);
  offered.user = certificate.keyId;
  if (certificate.certificateType !== 'user')
    throw denied('The offered certificate is not a user certificate.');
  const now = ctx.now();
  if (now < certificate.validAfter.getTime() || now >= certificate.validBefore.getTime()) {
    throw new KeyportError('EXPIRED', `The certificate of ${certificate.keyId} is not valid now.`);
  }
  if (!certificate.principals.includes(request.login)) {
    throw denied(`The certificate of ${certificate.keyId} does not name the login "${request.login}".`);
  }
  // 2. Its user and their current roles.
  const user = await ctx.store.getUser(certificate.keyId);
  if (!user) throw denied(`User "${certificate.keyId}" no longer exists.`);
  if (user.sso_connector) offered.sso = { connector: user.sso_connector, subject: user.sso_subject ?? '' };
  if (isLocked(user, now)) throw denied(`User "${certificate.keyId}" is locked.`);
  const spec = JSON.parse(user.spec_json) as { roles?: string[]; traits?: Record<string, string[]> };
  const claims = keyportClaims(certificate);
  let carried: unknown;
  try {
    carried = JSON.parse(claims['keyport-roles'] ?? '[]');
  } catch {
    carried = undefined;
  }
  if (!Array.isArray(carried) || !carried.every((role) => typeof role === 'string')) {
    throw denied('The certificate carries no readable roles.');
  }
  const current = new Set(spec.roles ?? []);
  const [cap, roles, node] = await Promise.all([
    loadCap(ctx.store),
    loadRoles(
      ctx.store,
      carried.filter((role) => current.has(role)),
    ),
    getNode(ctx.store, nodeName),
  ]);
  // 3. RBAC.
  const target = nodeTarget(node);
  const decision = loginDecision(roles, spec.traits ?? {}, target, request.login);
  if (!decision.allowed) throw denied(`Access denied: ${decision.reason}.`);
  // 4. Device trust.
  const device = await currentDevice(ctx, claims);
  const trust = deviceTrustDecision(
    cap.device_trust.mode,
    { roles, ...(device ? { device } : {}) },
    { kind: 'node', name: nodeName, labels: target.labels },
  );
  if (!trust.allowed) throw trust.error;
  // 5. Per-session MFA: a certificate scoped to this node, spent for this connection.
  const scopedTo = certificate.extensions[SESSION_NODE_EXTENSION];
  if (scopedTo === undefined) {
    if (sessionMfaRequired(cap.require_session_mfa, roles, target)) {
      throw new KeyportError(
        'MFA_REQUIRED',
        `Node "${nodeName}" requires per-session MFA: connect with \`keyport ssh\`, which asks for a touch.`,
      );
    }
    return { principals: [request.login], user: user.name, singleUse: false };
  }
  if (scopedTo !== nodeName) throw denied(`This certificate is for node "${scopedTo}", not "${nodeName}".`);
  const spent = await ctx.store.nodes.spendSessionCertificate(
    certificate.serial.toString(),
    nodeName,
    request.connection,
    now,
  );
  if (!spent || spent.login !== request.login || spent.user !== user.name) {
    throw denied('This single-use certificate was already used for another connection.');
  }
  return { principals: [request.login], user: user.name, singleUse: true };
}
