// RedeemSSOLogin, step by step: the one-time code the IdP's callback sent to the client's loopback address,
// redeemed by the client that holds the request's session key, into certificates.
//   1. the authorized request the code names, read (not spent), so a proof by another key burns nothing;
//   2. the proof: the request's session key signed this request and code;
//   3. the code, spent once;
//   4. the user as the callback left it, still this connector's and not locked;
//   5. the session key against the private-key policy of the roles granted and the cap;
//   6. with require_local_mfa, Keyport's own security-key check (local-mfa.ts): the answer to this request's
//      challenge by one of the user's keys, or their first key's registration;
//   7. the device: its quote over the nonce StartSSOLogin gave (device-trust/login.ts, as a local login's
//      step 2), so the certificates carry it; one more signature, not one more ceremony; a first key is
//      stored only now, where device trust is required only from a trusted device;
//   8. certificates for the identity the IdP's login earned (MFA-verified when the user's key answered),
//      audited with the connector and IdP subject.
// Every refusal is audited (`sso.login` step `redeem`) with the connector and, once known, the IdP subject.
import { KeyportError } from '../../proto/errors';
import type { LoginResponse, RedeemSSOLoginRequest } from '../../proto/gen/keyport/v1/auth';
import { requiredKeyPolicy } from '../../proto/resources/private-key-policy';
import { ssoRedeemSignedBytes } from '../../proto/sso';
import { issueSessionCertificates, sessionIdentityOf } from '../certificates';
import type { ServiceContext } from '../context';
import { finishDeviceLogin } from '../device-trust/login';
import { devicePayloadSchema } from '../device-trust/payloads';
import type { DevicePayload } from '../device-trust/payloads';
import { checkSessionKey } from '../hardware-key/login';
import { isLocked, limitAddress, lockedError } from '../lockout';
import { loadCap, loadRoles } from '../policy';
import type { CallContext } from '../rpc';
import { parseSessionKeys } from '../session-keys';
import type { SsoRequestRow } from '../storage/sso-requests';
import { registerFirstKey, verifyLocalMfa } from './local-mfa';
import type { LocalMfaOutcome } from './local-mfa';
import { auditSso, checkRequestCode, parseStoredKeys, signedByRequestKey, tokenHash } from './requests';
import type { SsoIdentity } from './requests';

const codeRefusal = () =>
  new KeyportError('ACCESS_DENIED', 'This sign-in code is unknown or was already used; sign in again.');

export async function redeemSsoLogin(
  ctx: ServiceContext,
  request: RedeemSSOLoginRequest,
  call: CallContext,
): Promise<LoginResponse> {
  await limitAddress(ctx, call.clientAddr);
  checkRequestCode(request);
  const codeHash = tokenHash(request.ssoCode);
  const nowMs = ctx.now();
  // 1. The authorized request the code names, read (not spent) so a proof by another key spends nothing.
  const found = await ctx.store.sso.findAuthorized(request.requestId, codeHash, nowMs);
  const refuse = refusal(ctx, call, found);
  if (found === undefined) {
    const row = await ctx.store.sso.get(request.requestId);
    const expired = row?.code_expires_ms != null && row.code_expires_ms <= nowMs;
    return refusal(
      ctx,
      call,
      row,
    )(
      row === undefined
        ? 'unknown request'
        : `code ${expired ? 'expired' : row.stage === 'redeemed' ? 'already used' : 'wrong'}`,
      expired
        ? new KeyportError('EXPIRED', 'The sign-in code expired before it was redeemed; sign in again.')
        : codeRefusal(),
    );
  }
  // 2. The proof: the request's session key signed this code.
  const stored = parseStoredKeys(found.keys_json);
  const keys = parseSessionKeys(stored.tls, stored.ssh);
  if (
    !signedByRequestKey(
      keys.tls,
      ssoRedeemSignedBytes(request.requestId, request.ssoCode),
      request.keySignature,
    )
  ) {
    return refuse(
      'code redeemed without the request key',
      new KeyportError(
        'ACCESS_DENIED',
        'The sign-in code must be redeemed by the client that started the sign-in (a signature by its session key).',
      ),
    );
  }
  // 3. The code, spent once.
  if (!(await ctx.store.sso.redeem(request.requestId, codeHash, nowMs))) {
    return refuse('code already used', codeRefusal());
  }
  // 4. The user as the callback left it, still this connector's and not locked.
  const identity = JSON.parse(found.identity_json ?? '{}') as SsoIdentity;
  const user = await ctx.store.getUser(found.user ?? '');
  if (user === undefined || user.sso_connector !== identity.connector) {
    return refuse(
      'user deleted during login',
      new KeyportError('ACCESS_DENIED', 'This user no longer exists; sign in again.'),
    );
  }
  if (isLocked(user, ctx.now())) return refuse('user is locked', lockedError(user));
  // 5. The session key against the private-key policy of the roles granted and the cap.
  const cap = await loadCap(ctx.store);
  const roles = await loadRoles(ctx.store, identity.roles);
  const required = requiredKeyPolicy(cap, roles);
  let keyPolicy: ReturnType<typeof checkSessionKey>;
  try {
    keyPolicy = checkSessionKey({
      required,
      attestation: stored.attestation,
      sessionKey: keys.tls.key,
      sshKey: keys.ssh.key,
      extraRoots: cap.hardware_key.attestation_roots,
      now: new Date(ctx.now()),
    });
  } catch (error) {
    if (!(error instanceof KeyportError)) throw error;
    return refuse(`private key policy "${required}": ${error.message}`, error);
  }
  // 6. Keyport's own security-key check, where the connector requires it.
  let localMfa: LocalMfaOutcome | undefined;
  if (identity.requireLocalMfa) {
    try {
      localMfa = await verifyLocalMfa(ctx, {
        row: found,
        user,
        cap,
        mfaResponse: request.mfaResponse,
        newDevice: request.newDevice,
        clientAddr: call.clientAddr,
      });
    } catch (error) {
      if (!(error instanceof KeyportError)) throw error;
      return refuse(`security key: ${error.message}`, error);
    }
  }
  // 7. The device: its quote over this request's nonce (auto-enrolling: the activated secret too). No
  //    answer leaves the session untrusted; a wrong one (another request's nonce, a replay) is refused.
  let device: Awaited<ReturnType<typeof finishDeviceLogin>>;
  try {
    device = await finishDeviceLogin(
      ctx,
      storedDevicePayload(found),
      request.deviceResponse,
      user.name,
      call.clientAddr,
    );
  } catch (error) {
    if (!(error instanceof KeyportError)) throw error;
    return refuse(`device: ${error.message}`, error);
  }
  //    A first key, registered in this redemption: stored once the device is known.
  if (localMfa?.kind === 'first-key') {
    try {
      await registerFirstKey(ctx, { user, cap, row: localMfa.row, device });
    } catch (error) {
      if (!(error instanceof KeyportError)) throw error;
      await auditFirstKey(ctx, call, user.name, localMfa.row.name, identity, error);
      return refuse(`first security key: ${error.message}`, error);
    }
    await auditFirstKey(ctx, call, user.name, localMfa.row.name, identity);
  }
  // 8. Certificates for the identity the IdP's login earned; MFA-verified when the user's own key answered
  //    (a key registered just now proves only itself).
  const mfaVerified = localMfa?.kind === 'asserted';
  const sessionIdentity = await sessionIdentityOf(ctx, user, {
    mfaVerified,
    requestedTtlSeconds: stored.ttlSeconds,
    device,
    privateKeyPolicy: keyPolicy.policy,
    roles,
  });
  const issued = await issueSessionCertificates(ctx, sessionIdentity, keys);
  const sso = { connector: identity.connector, idp_subject: identity.subject };
  await ctx.audit.recordAll([
    {
      type: 'user.login',
      actor: sessionIdentity.user,
      clientAddr: call.clientAddr,
      success: true,
      message: `sso (${identity.connector})`,
      fields: sso,
    },
    {
      type: 'cert.issued',
      actor: sessionIdentity.user,
      clientAddr: call.clientAddr,
      success: true,
      message: `SSH and X.509 certificates valid until ${issued.notAfter.toISOString()}`,
      fields: {
        roles: sessionIdentity.roles,
        logins: sessionIdentity.logins,
        ttl_seconds: sessionIdentity.ttlSeconds,
        mfa_verified: mfaVerified,
        ...sso,
        ...(sessionIdentity.device ? { device_id: sessionIdentity.device.deviceId } : {}),
        ...(sessionIdentity.privateKeyPolicy ? { private_key_policy: sessionIdentity.privateKeyPolicy } : {}),
      },
    },
  ]);
  return {
    user: sessionIdentity.user,
    roles: sessionIdentity.roles,
    logins: sessionIdentity.logins,
    sshCertificate: issued.sshCertificate,
    tlsCertificate: issued.tlsCertificatePem,
    expiresMs: issued.notAfter.getTime(),
    mfaVerified,
    clusterName: ctx.clusterName,
    // SessionDevice has DeviceIdentity's fields, by design.
    device: sessionIdentity.device ? { ...sessionIdentity.device } : undefined,
    deviceTrustMode: cap.device_trust.mode,
    deviceAutoEnroll: cap.device_trust.auto_enroll,
    privateKeyPolicy: sessionIdentity.privateKeyPolicy ?? 'none',
  };
}

/** The device challenge StartSSOLogin made for this request, if it offered a device. */
function storedDevicePayload(row: SsoRequestRow): DevicePayload | undefined {
  return row.device_json ? devicePayloadSchema.parse(JSON.parse(row.device_json)) : undefined;
}

/** Audits a refused redemption (`sso.login` step `redeem`, with connector and IdP subject) and throws. */
function refusal(ctx: ServiceContext, call: CallContext, row: SsoRequestRow | undefined) {
  return async (reason: string, error: KeyportError): Promise<never> => {
    const identity = row?.identity_json ? (JSON.parse(row.identity_json) as SsoIdentity) : undefined;
    await auditSso(ctx, {
      actor: row?.user ?? 'unknown',
      clientAddr: call.clientAddr,
      success: false,
      message: reason,
      step: 'redeem',
      connector: row?.connector ?? 'unknown',
      ...(identity ? { subject: identity.subject } : {}),
    });
    throw error;
  };
}

/** A first key registered in an SSO redemption (or refused): `mfa.add`, with the connector and IdP subject. */
function auditFirstKey(
  ctx: ServiceContext,
  call: CallContext,
  user: string,
  name: string,
  identity: SsoIdentity,
  error?: KeyportError,
): Promise<void> {
  return ctx.audit.record({
    type: 'mfa.add',
    actor: user,
    clientAddr: call.clientAddr,
    success: error === undefined,
    message: error ? error.message : `MFA device "${name}" added at an SSO login`,
    fields: {
      device: name,
      type: 'webauthn',
      first_device: true,
      connector: identity.connector,
      idp_subject: identity.subject,
    },
  });
}
