// Per-session MFA for SSH (seed "Per-session MFA"), the keyport-auth half. A connection to a node as a login:
//   1. IsMFARequired: the node resolved, the login checked against the caller's roles, and, where the cap or
//      a role matching the node requires it, a USER_SESSION challenge bound to (user, node, login), in the
//      same answer (one round trip);
//   2. GenerateSessionCertificate: the challenge spent and its security-key answer verified, access checked
//      again, and an SSH certificate for the caller's session key with one principal (the login), scoped to
//      the node by the keyport-session-node extension, valid for one minute on the service clock and
//      recorded as single use;
//   3. the node's keyport-node spends it for one sshd connection (connection.ts).
import { randomBytes } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateChallenge, MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import type { Node } from '../../proto/resources/schema';
import { signSshUserCertificate, sshPublicKeyFromKeyObject } from '../ca/ssh';
import { DEVICE_EXTENSIONS } from '../certificates';
import { deviceTrustDecision } from '../device-trust/policy';
import { challengeRefusal, createChallenge, newChallengeBytes, spendChallenge } from '../challenges';
import { CLIENT_CERT_BACKDATE_MS, MFA_CHALLENGE_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import type { Identity } from '../identity';
import { verifyWebauthnAnswer } from '../mfa';
import type { ClusterPolicy } from '../policy';
import { authenticationOptions, relyingParty, webauthnEnabled } from '../webauthn';
import { loginDecision, nodeTarget, sessionMfaRequired } from './access';
import type { Traits } from '../../proto/resources/presets';

/** How long a per-session certificate is valid, on the service clock. */
export const SESSION_CERTIFICATE_TTL_MS = 60_000;
/** The extension that scopes a per-session certificate to one node (its name). */
export const SESSION_NODE_EXTENSION = 'keyport-session-node@keyport.dev';

/** What the caller may do on a node, from their current roles and traits: refused with ACCESS_DENIED. */
export function checkLogin(identity: Identity, traits: Traits, node: Node, login: string): void {
  const decision = loginDecision(identity.roleDocuments, traits, nodeTarget(node), login);
  if (!decision.allowed) {
    throw new KeyportError(
      'ACCESS_DENIED',
      `Access denied: ${identity.user} may not log in to node "${node.metadata.name}" as "${login}" (${decision.reason}). \`keyport ls\` lists the nodes and logins you may use.`,
    );
  }
}

/** Device trust for this node (cap, or roles whose allow matches it): DEVICE_TRUST_REQUIRED, saying what to do. */
export function checkDeviceTrust(cap: ClusterPolicy, identity: Identity, node: Node): void {
  const target = nodeTarget(node);
  const decision = deviceTrustDecision(
    cap.device_trust.mode,
    { roles: identity.roleDocuments, ...(identity.device ? { device: identity.device } : {}) },
    { kind: 'node', name: target.name, labels: target.labels },
  );
  if (!decision.allowed) throw decision.error;
}

export function mfaRequiredFor(cap: ClusterPolicy, identity: Identity, node: Node): boolean {
  return sessionMfaRequired(cap.require_session_mfa, identity.roleDocuments, nodeTarget(node));
}

/** A USER_SESSION challenge for (user, node, login): the user's security keys only ("Tap any security key"). */
export async function createSessionChallenge(
  ctx: ServiceContext,
  cap: ClusterPolicy,
  user: string,
  node: string,
  login: string,
): Promise<MFAAuthenticateChallenge> {
  const keys = (await ctx.store.listDevices(user)).filter((device) => device.type === 'webauthn');
  if (!webauthnEnabled(cap) || keys.length === 0) {
    throw new KeyportError(
      'PRECONDITION_FAILED',
      `Node "${node}" requires per-session MFA, which needs a security key: add one with \`keyport mfa add\`.`,
    );
  }
  const options = await authenticationOptions({
    rp: relyingParty(cap, ctx.clusterName),
    challenge: newChallengeBytes(),
    devices: keys,
    userVerification: 'discouraged',
  });
  const { id, expiresMs } = await createChallenge(
    ctx,
    'CHALLENGE_SCOPE_USER_SESSION',
    user,
    { webauthnChallenge: options.challenge, node, login },
    { ttlMs: MFA_CHALLENGE_TTL_MS },
  );
  return {
    challengeId: id,
    scope: ChallengeScope.CHALLENGE_SCOPE_USER_SESSION,
    totpAllowed: false,
    webauthnRequestOptionsJson: JSON.stringify(options),
    expiresMs,
    mfaRequired: true,
  };
}

/** Spends the USER_SESSION challenge and verifies its answer for exactly this node and login. */
export async function verifySessionAnswer(
  ctx: ServiceContext,
  cap: ClusterPolicy,
  identity: Identity,
  node: string,
  login: string,
  response: MFAAuthenticateResponse | undefined,
  clientAddr: string,
): Promise<void> {
  if (!response?.challengeId || response.response?.$case !== 'webauthnJson') {
    throw new KeyportError(
      'MFA_REQUIRED',
      `Node "${node}" requires per-session MFA: answer its challenge with a security key.`,
      { fieldPath: 'mfa_response' },
    );
  }
  const spent = await spendChallenge(
    ctx,
    response.challengeId,
    ['CHALLENGE_SCOPE_USER_SESSION'],
    identity.user,
  );
  if (!spent.ok) throw challengeRefusal(spent.reason, 'run `keyport ssh` again');
  const { payload } = spent.challenge;
  if (payload.node !== node || payload.login !== login) {
    throw new KeyportError(
      'MFA_FAILED',
      `This MFA response was made for ${payload.login}@${payload.node}, not ${login}@${node}.`,
    );
  }
  await verifyWebauthnAnswer(ctx, {
    challengeUser: identity.user,
    webauthnChallenge: payload.webauthnChallenge,
    passwordless: false,
    json: response.response.value,
    cap,
    clientAddr,
  });
}

/** The single-use certificate for the caller's session key, recorded so that one connection can spend it. */
export async function issueSessionCertificate(
  ctx: ServiceContext,
  identity: Identity,
  node: string,
  login: string,
): Promise<{ sshCertificate: string; expiresMs: number; serial: bigint }> {
  const now = ctx.now();
  const expiresMs = now + SESSION_CERTIFICATE_TTL_MS;
  let serial = 0n;
  while (serial === 0n) serial = randomBytes(8).readBigUInt64BE();
  const device = identity.device;
  const sshCertificate = await signSshUserCertificate({
    ca: ctx.authorities.ssh,
    publicKey: sshPublicKeyFromKeyObject(identity.publicKey),
    keyId: identity.user,
    principals: [login],
    validAfter: new Date(now - CLIENT_CERT_BACKDATE_MS),
    validBefore: new Date(expiresMs),
    serial,
    extensions: {
      [SESSION_NODE_EXTENSION]: node,
      'keyport-roles@keyport.dev': JSON.stringify(identity.roles),
      'keyport-mfa-verified@keyport.dev': '',
      ...(device
        ? Object.fromEntries(
            (Object.keys(DEVICE_EXTENSIONS) as (keyof typeof DEVICE_EXTENSIONS)[]).map((field) => [
              `${DEVICE_EXTENSIONS[field]}@keyport.dev`,
              device[field],
            ]),
          )
        : {}),
    },
  });
  await ctx.store.nodes.insertSessionCertificate({
    serial: serial.toString(),
    user: identity.user,
    node,
    login,
    created_ms: now,
    expires_ms: expiresMs,
  });
  return { sshCertificate, expiresMs, serial };
}
