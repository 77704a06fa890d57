// SSO through an oidc connector, the client's two calls (the IdP's callback in between is
// auth/sso/callback.ts, on the web listener):
//   StartSSOLogin: the connector, the session's public keys, the client's loopback address and its device →
//     the request stored (state, nonce, PKCE verifier, the device challenge; single use; 5 minutes on the
//     service clock) and the IdP's authorization URL;
//   CreateSSOChallenge (auth/sso/local-mfa.ts), with require_local_mfa: the user's own security-key check;
//   RedeemSSOLogin (auth/sso/redeem.ts): the one-time code the callback sent to that loopback address, with
//     the session key's signature over it and the device's quote → the certificates for the request's keys.
import type {
  CreateSSOChallengeRequest,
  LoginResponse,
  RedeemSSOLoginRequest,
  StartSSOLoginRequest,
  SSOMFAChallenge,
  StartSSOLoginResponse,
} from '../../proto/gen/keyport/v1/auth';
import { parseLoopbackRedirect } from '../../proto/sso';
import { SSO_REQUEST_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import { startDeviceLogin } from '../device-trust/login';
import { limitAddress } from '../lockout';
import { loadCap } from '../policy';
import type { CallContext } from '../rpc';
import { createSsoChallenge } from '../sso/local-mfa';
import { redeemSsoLogin } from '../sso/redeem';
import {
  auditSso,
  authorizeAtIdp,
  loadConnector,
  newToken,
  storedKeysJson,
  tokenHash,
} from '../sso/requests';
import { parseSessionKeys, parseTtlSeconds } from '../session-keys';

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
      const { state, nonce, pkceVerifier, authorizationUrl } = await authorizeAtIdp(ctx, connector, {
        clientAddr: call.clientAddr,
      });
      // 4. The device part, as a local login's step 1: a nonce for an enrolled credential, or
      //    auto-enrollment (device-trust/login.ts); its payload waits with the request for the redemption.
      const device = await startDeviceLogin(ctx, await loadCap(ctx.store), request.device, call.clientAddr);
      // 5. The request, stored: single use, for 5 minutes.
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
        device_json: device.payload ? JSON.stringify(device.payload) : null,
      });
      await auditSso(ctx, {
        actor: 'unknown',
        clientAddr: call.clientAddr,
        success: true,
        message: `SSO login started through ${name}`,
        step: 'start',
        connector: name,
      });
      return {
        authorizationUrl: authorizationUrl.href,
        requestId: id,
        expiresMs,
        deviceChallenge: device.challenge,
        localMfaRequired: connector.spec.require_local_mfa === true,
      };
    },

    createSsoChallenge: (request: CreateSSOChallengeRequest, call: CallContext): Promise<SSOMFAChallenge> =>
      createSsoChallenge(ctx, request, call),

    redeemSsoLogin: (request: RedeemSSOLoginRequest, call: CallContext): Promise<LoginResponse> =>
      redeemSsoLogin(ctx, request, call),
  };
}
