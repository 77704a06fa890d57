// The web UI's JSON API: thin handlers over the same services as gRPC (one policy, two transports). Login
// runs login-service's two steps (rate limits, lockout, audit and all); the session is auth/web-sessions.ts.
// Each handler checks where the request comes from, then its body (zod, bounded as gRPC's fields are),
// before anything runs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { KeyportError } from '../../proto/errors';
import { ChallengeScope } from '../../proto/gen/keyport/v1/mfa';
import type { MFAAuthenticateResponse } from '../../proto/gen/keyport/v1/mfa';
import { WEBAPI } from '../../proto/webapi';
import type { WebChallenge, WebClusterInfo, WebSessionView } from '../../proto/webapi';
import { listConnectorViews } from '../connectors';
import type { ServiceContext } from '../context';
import { loadCap, loadRoles, loginsFor } from '../policy';
import { checkRequestBounds, FIELD_LIMITS } from '../request-bounds';
import type { CallContext } from '../rpc';
import { loginHandlers } from '../services/login-service';
import { webLoginHandlers } from '../services/web-login-service';
import {
  authenticateWebSession,
  CSRF_HEADER,
  csrfTokenMatches,
  csrfTokenOf,
  endWebSession,
  WEB_SESSION_COOKIE,
} from '../web-sessions';
import { webDeviceTrustFor } from '../web-approval';
import { deviceRoutes } from './device-routes';
import { checkOrigin, cookieValue, parsed, peerOf, readJsonBody, sendJson, sessionCookie } from './http';
import { ssoStartRoutes } from './sso-start';

export interface WebApiOptions {
  /** The web UI's origins (https://host:port), exactly: Origin checks and WebAuthn's expected origin. */
  origins: readonly string[];
}

const bounded = (field: string) => z.string().max(FIELD_LIMITS[field] ?? 4096);

const challengeBody = z.union([
  z.object({ user: bounded('user').min(1), password: bounded('password') }).strict(),
  z.object({ passwordless: z.literal(true) }).strict(),
]);

const loginBody = z
  .object({
    challengeId: bounded('challenge_id').min(1),
    totpCode: bounded('code').optional(),
    // AuthenticationResponseJSON as the browser's toJSON() gives it; sent on to the relying party as text.
    webauthn: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .refine((body) => !(body.totpCode !== undefined && body.webauthn !== undefined), {
    message: 'Answer with an OTP code or a security key, not both.',
  });

function callContextOf(request: IncomingMessage, method: string): CallContext {
  return {
    clientAddr: peerOf(request),
    peerCertificateDer: undefined,
    method,
    requestDigest: () => undefined,
    metadataCertificateDer: undefined,
    proof: undefined,
    adminMfaResponse: undefined,
  };
}

export function webApi(ctx: ServiceContext, options: WebApiOptions) {
  const login = loginHandlers(ctx);
  const webLogin = webLoginHandlers(ctx);
  const { origins } = options;

  /** The cookie's session, checked now (expiry, user deleted or locked); `csrf` for state changes. */
  async function signedIn(request: IncomingMessage, csrf: boolean) {
    const call = callContextOf(request, request.url ?? '');
    const { session, token } = await authenticateWebSession(
      ctx,
      cookieValue(request, WEB_SESSION_COOKIE),
      call.clientAddr,
    );
    if (csrf) {
      const sent = request.headers[CSRF_HEADER];
      if (!csrfTokenMatches(token, typeof sent === 'string' ? sent : undefined)) {
        throw new KeyportError(
          'ACCESS_DENIED',
          "This request lacks the page's CSRF token; reload the web UI and try again.",
        );
      }
    }
    return { session, token, call };
  }

  const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => Promise<void>> = {
    async [`GET ${WEBAPI.cluster}`](request, response) {
      checkOrigin(request, origins, false);
      const cap = await loadCap(ctx.store);
      const info: WebClusterInfo = {
        clusterName: ctx.clusterName,
        secondFactors: cap.secondFactors,
        secondFactorRequired: cap.secondFactorRequired,
        passwordless: cap.allowPasswordless && cap.secondFactors.includes('webauthn'),
        connectors: (await listConnectorViews(ctx.store)).map(({ name, display }) => ({ name, display })),
      };
      sendJson(response, 200, info);
    },

    async [`POST ${WEBAPI.challenge}`](request, response) {
      checkOrigin(request, origins, true);
      const body = parsed(challengeBody, await readJsonBody(request));
      const call = callContextOf(request, WEBAPI.challenge);
      const grpcRequest =
        'passwordless' in body
          ? {
              user: '',
              password: '',
              scope: ChallengeScope.CHALLENGE_SCOPE_PASSWORDLESS_LOGIN,
              device: undefined,
            }
          : { ...body, scope: ChallengeScope.CHALLENGE_SCOPE_LOGIN, device: undefined };
      checkRequestBounds(grpcRequest);
      const challenge = await login.createAuthenticateChallenge(grpcRequest, call);
      const answer: WebChallenge = {
        challengeId: challenge.challengeId,
        expiresMs: Number(challenge.expiresMs),
        mfaRequired: challenge.mfaRequired,
        totpAllowed: challenge.totpAllowed,
        webauthn: challenge.webauthnRequestOptionsJson
          ? (JSON.parse(challenge.webauthnRequestOptionsJson) as Record<string, unknown>)
          : null,
      };
      sendJson(response, 200, answer);
    },

    async [`POST ${WEBAPI.login}`](request, response) {
      checkOrigin(request, origins, true);
      const body = parsed(loginBody, await readJsonBody(request));
      const answer: MFAAuthenticateResponse['response'] =
        body.totpCode !== undefined
          ? { $case: 'totp', value: { code: body.totpCode } }
          : body.webauthn !== undefined
            ? { $case: 'webauthnJson', value: JSON.stringify(body.webauthn) }
            : undefined;
      checkRequestBounds({ challengeId: body.challengeId, mfaResponse: { response: answer } });
      const userAgent = (request.headers['user-agent'] ?? '').slice(0, 512);
      const call = callContextOf(request, WEBAPI.login);
      const { token, session } = await webLogin.webLogin(
        { challengeId: body.challengeId, answer, userAgent },
        call,
        origins,
      );
      sendJson(
        response,
        200,
        { user: session.user, expiresMs: session.expiresMs, csrfToken: csrfTokenOf(token) },
        { 'Set-Cookie': sessionCookie(WEB_SESSION_COOKIE, token, (session.expiresMs - ctx.now()) / 1000) },
      );
    },

    async [`GET ${WEBAPI.session}`](request, response) {
      checkOrigin(request, origins, false);
      const { session, token } = await signedIn(request, false);
      const user = await ctx.store.getUser(session.user);
      const spec = JSON.parse(user?.spec_json ?? '{}') as {
        roles?: string[];
        traits?: Record<string, string[]>;
      };
      const roles = await loadRoles(ctx.store, spec.roles ?? []);
      const devices = await ctx.store.listDevices(session.user);
      const view: WebSessionView = {
        user: session.user,
        roles: roles.map((role) => role.metadata.name),
        logins: loginsFor(roles, spec.traits ?? {}),
        loginMethod: session.loginMethod,
        mfaVerified: session.mfaVerified,
        createdMs: session.createdMs,
        expiresMs: session.expiresMs,
        device: session.device,
        mfaDevices: devices.map((device) => ({
          name: device.name,
          type: device.type,
          addedMs: device.added_ms,
          lastUsedMs: device.last_used_ms,
          passkey: device.passkey === 1,
        })),
        deviceTrust: await webDeviceTrustFor(ctx, session.user),
        csrfToken: csrfTokenOf(token),
      };
      sendJson(response, 200, view);
    },

    async [`DELETE ${WEBAPI.session}`](request, response) {
      checkOrigin(request, origins, true);
      const { session, call } = await signedIn(request, true);
      await endWebSession(ctx, session.id, session.user, call.clientAddr, 'signed out');
      sendJson(response, 200, {}, { 'Set-Cookie': sessionCookie(WEB_SESSION_COOKIE, '', 0) });
    },

    ...deviceRoutes(ctx, origins, signedIn),
    ...ssoStartRoutes(ctx, origins),
  };

  /** The handler for a request, or undefined when no route matches (a 404, said as NOT_FOUND). */
  return function route(request: IncomingMessage) {
    const path = (request.url ?? '').split('?')[0];
    return routes[`${request.method ?? ''} ${path}`];
  };
}
