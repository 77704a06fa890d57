// The web UI's start of an SSO login (auth/sso/web-sign-in.ts decides): the page posts the connector's
// name, keyport-auth stores the request bound to this browser and answers with the IdP's URL, which the
// page then opens. The binding rides in a `__Host-` cookie that is Lax, not Strict: it must come back on
// the IdP's redirect to the callback, a navigation from another site. It is HttpOnly and never in a URL,
// and it is only a binding (it signs nobody in by itself).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { WEBAPI } from '../../proto/webapi';
import type { WebSsoStart } from '../../proto/webapi';
import { SSO_REQUEST_TTL_MS } from '../context';
import type { ServiceContext } from '../context';
import { FIELD_LIMITS } from '../request-bounds';
import { SSO_BINDING_COOKIE, startWebSso } from '../sso/web-sign-in';
import { checkOrigin, cookieValue, parsed, peerOf, readJsonBody, sendJson, sessionCookie } from './http';

type Route = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

const startBody = z
  .object({
    connector: z
      .string()
      .min(1)
      .max(FIELD_LIMITS.connector_name ?? 128),
  })
  .strict();

export function ssoStartRoutes(ctx: ServiceContext, origins: readonly string[]): Record<string, Route> {
  return {
    async [`POST ${WEBAPI.ssoStart}`](request, response) {
      checkOrigin(request, origins, true);
      const body = parsed(startBody, await readJsonBody(request));
      const started = await startWebSso(ctx, {
        connectorName: body.connector,
        browserBinding: cookieValue(request, SSO_BINDING_COOKIE),
        clientAddr: peerOf(request),
      });
      const answer: WebSsoStart = {
        authorizationUrl: started.authorizationUrl,
        expiresMs: started.expiresMs,
      };
      sendJson(response, 200, answer, {
        'Set-Cookie': sessionCookie(
          SSO_BINDING_COOKIE,
          started.browserBinding,
          SSO_REQUEST_TTL_MS / 1000,
          'Lax',
        ),
      });
    },
  };
}
