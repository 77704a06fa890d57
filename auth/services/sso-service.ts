// SSO through an oidc connector, the client's two calls (the IdP's callback in between is
// auth/sso/callback.ts, on the web listener):
//   StartSSOLogin: the connector, the session's public keys and the client's loopback address → the request
//     stored (state, nonce, PKCE verifier; single use; 5 minutes on the service clock) and the IdP's
//     authorization URL;
//   RedeemSSOLogin: the one-time code the callback sent to that loopback address, with the session key's
//     signature over it → the code spent once, the certificates issued for the request's keys.
import { verify } from 'node:crypto';
import { KeyportError } from '../../proto/errors';
import type {
  LoginResponse,
  RedeemSSOLoginRequest,
  StartSSOLoginRequest,
  StartSSOLoginResponse,
} from '../../proto/gen/keyport/v1/auth';
import { requiredKeyPolicy } from '../../proto/resources/private-key-policy';
import { parseLoopbackRedirect, SSO_TOKEN, ssoRedeemSignedBytes } from '../../proto/sso';
import { issueSessionCertificates, sessionIdentityOf } from '../certificates';
import { SSO_REQUEST_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import { checkSessionKey } from '../hardware-key/login';
import { isLocked, limitAddress, lockedError } from '../lockout';
import { loadCap, loadRoles } from '../policy';
import type { CallContext } from '../rpc';
import {
  auditSso,
  loadConnector,
  newToken,
  parseStoredKeys,
  storedKeysJson,
  tokenHash,
} from '../sso/requests';
import type { SsoIdentity } from '../sso/requests';
import { parseSessionKeys, parseTtlSeconds } from './login-service';

export function ssoHandlers(ctx: ServiceContext) {
  return {
    async startSsoLogin(request: StartSSOLoginRequest, call: CallContext): Promise<StartSSOLoginResponse> {
      // 1. This address's calls are limited (each stores a request).
      await limitAddress(ctx, call.clientAddr);
      // 2. The request's own shape: the keys to certify, a sane TTL, a loopback redirect address.
      parseSessionKeys(request.tlsPublicKey, request.sshPublicKey);
      const ttlSeconds = parseTtlSeconds(request.ttlSeconds);
      const clientRedirect = parseLoopbackRedirect(request.clientRedirectUrl);
      const connector = await loadConnector(ctx, request.connectorName);
      const name = connector.metadata.name;
      // 3. The IdP's authorization URL (discovery first: an IdP that is down is said here, nothing stored).
      const id = newToken();
      const state = newToken();
      const nonce = newToken();
      const pkceVerifier = newToken();
      let authorizationUrl: URL;
      try {
        authorizationUrl = await ctx.sso.authorizationUrl(connector, { state, nonce, pkceVerifier });
      } catch (error) {
        await auditSso(ctx, {
          actor: 'unknown',
          clientAddr: call.clientAddr,
          success: false,
          message: error instanceof Error ? error.message : String(error),
          step: 'start',
          connector: name,
        });
        throw error;
      }
      // 4. The request, stored: single use, for 5 minutes.
      const nowMs = ctx.now();
      const expiresMs = nowMs + SSO_REQUEST_TTL_MS;
      await ctx.store.sso.insert({
        id,
        state_hash: tokenHash(state),
        connector: name,
        nonce,
        pkce_verifier: pkceVerifier,
        client_redirect_url: clientRedirect.href,
        keys_json: storedKeysJson({
          tls: request.tlsPublicKey,
          ssh: request.sshPublicKey,
          ttlSeconds,
          attestation: request.hardwareKeyAttestation,
        }),
        client_addr: call.clientAddr,
        created_ms: nowMs,
        expires_ms: expiresMs,
      });
      await auditSso(ctx, {
        actor: 'unknown',
        clientAddr: call.clientAddr,
        success: true,
        message: `SSO login started through ${name}`,
        step: 'start',
        connector: name,
      });
      return { authorizationUrl: authorizationUrl.href, requestId: id, expiresMs };
    },

    async redeemSsoLogin(request: RedeemSSOLoginRequest, call: CallContext): Promise<LoginResponse> {
      await limitAddress(ctx, call.clientAddr);
      if (!SSO_TOKEN.test(request.requestId) || !SSO_TOKEN.test(request.ssoCode)) {
        throw new KeyportError(
          'INVALID_ARGUMENT',
          'The request id and the one-time code are 43 base64url characters.',
          {
            fieldPath: SSO_TOKEN.test(request.requestId) ? 'sso_code' : 'request_id',
          },
        );
      }
      const codeHash = tokenHash(request.ssoCode);
      const nowMs = ctx.now();
      // 1. The authorized request the code names, read (not spent) so a proof by another key spends nothing.
      const found = await ctx.store.sso.findAuthorized(request.requestId, codeHash, nowMs);
      const refuse = async (reason: string, error: KeyportError, row = found): Promise<never> => {
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
      if (found === undefined) {
        const row = await ctx.store.sso.get(request.requestId);
        const expired = row?.code_expires_ms != null && row.code_expires_ms <= nowMs;
        return refuse(
          row === undefined
            ? 'unknown request'
            : `code ${expired ? 'expired' : row.stage === 'redeemed' ? 'already used' : 'wrong'}`,
          expired
            ? new KeyportError('EXPIRED', 'The sign-in code expired before it was redeemed; sign in again.')
            : new KeyportError(
                'ACCESS_DENIED',
                'This sign-in code is unknown or was already used; sign in again.',
              ),
          row,
        );
      }
      // 2. The proof: the request's session key signed this code.
      const stored = parseStoredKeys(found.keys_json);
      const keys = parseSessionKeys(stored.tls, stored.ssh);
      const signed = ssoRedeemSignedBytes(request.requestId, request.ssoCode);
      const algorithm = keys.tls.kind === 'ed25519' ? null : 'sha256';
      let proven: boolean;
      try {
        proven = verify(algorithm, signed, keys.tls.key, Buffer.from(request.keySignature));
      } catch {
        proven = false;
      }
      if (!proven) {
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
        return refuse(
          'code already used',
          new KeyportError(
            'ACCESS_DENIED',
            'This sign-in code is unknown or was already used; sign in again.',
          ),
        );
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
      // 6. Certificates for the identity the IdP's login earned: no Keyport MFA, no device.
      const sessionIdentity = await sessionIdentityOf(ctx, user, {
        mfaVerified: false,
        requestedTtlSeconds: stored.ttlSeconds,
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
            mfa_verified: false,
            ...sso,
            ...(sessionIdentity.privateKeyPolicy
              ? { private_key_policy: sessionIdentity.privateKeyPolicy }
              : {}),
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
        mfaVerified: false,
        clusterName: ctx.clusterName,
        device: undefined,
        deviceTrustMode: cap.device_trust.mode,
        deviceAutoEnroll: cap.device_trust.auto_enroll,
        privateKeyPolicy: sessionIdentity.privateKeyPolicy ?? 'none',
      };
    },
  };
}
