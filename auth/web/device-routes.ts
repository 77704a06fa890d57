// The web UI's two ends of the web-session approval ceremony (auth/web-approval.ts holds the steps): the
// signed-in page asks for a keyport:// link (POST, CSRF), and the browser opens the confirm URL that
// Keyport Connect got for it (GET, a top-level navigation: the cookie's session must be the one that
// asked). Each step and refusal is audited as `web.approval`, never with a token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeyportError } from '../../proto/errors';
import { WEB_DEVICE_CONFIRM_PATH } from '../../proto/web-approval';
import { WEBAPI } from '../../proto/webapi';
import type { WebDeviceApprovalRequest } from '../../proto/webapi';
import type { ServiceContext } from '../context';
import { ApprovalRefusal, checkRedirect, confirm, requestApproval } from '../web-approval';
import type { WebSession } from '../web-sessions';
import { checkOrigin, peerOf, sendJson, WEB_SECURITY_HEADERS } from './http';

type Route = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/** The confirm URL's query: `id`, `token` and `redirect`, each at most once, nothing else. */
function confirmQuery(url: string): { id: string; token: string; redirect: string | undefined } {
  const params = new URL(url, 'https://web.invalid').searchParams;
  const one = (name: string) => {
    const values = params.getAll(name);
    if (values.length > 1) {
      throw new KeyportError('INVALID_ARGUMENT', `The parameter ${name} is given more than once.`, {
        fieldPath: name,
      });
    }
    return values[0];
  };
  for (const name of params.keys()) {
    if (!['id', 'token', 'redirect'].includes(name)) {
      throw new KeyportError('INVALID_ARGUMENT', `Unknown parameter ${name}.`, { fieldPath: name });
    }
  }
  return { id: one('id') ?? '', token: one('token') ?? '', redirect: one('redirect') };
}

export function deviceRoutes(
  ctx: ServiceContext,
  origins: readonly string[],
  signedIn: (request: IncomingMessage, csrf: boolean) => Promise<{ session: WebSession }>,
): Record<string, Route> {
  async function audited<T>(
    request: IncomingMessage,
    session: WebSession,
    what: string,
    run: () => Promise<T>,
    success: (result: T) => { message: string; fields: Record<string, unknown> },
  ): Promise<T> {
    const clientAddr = peerOf(request);
    try {
      const result = await run();
      const { message, fields } = success(result);
      await ctx.audit.record({
        type: 'web.approval',
        actor: session.user,
        clientAddr,
        success: true,
        message,
        fields: { web_session_id: session.id, ...fields },
      });
      return result;
    } catch (error) {
      if (error instanceof KeyportError) {
        await ctx.audit.record({
          type: 'web.approval',
          actor: session.user,
          clientAddr,
          success: false,
          message: `web session approval refused (${what}): ${error instanceof ApprovalRefusal ? error.reason : error.message}`,
          fields: { web_session_id: session.id, step: what },
        });
      }
      throw error;
    }
  }

  return {
    async [`POST ${WEBAPI.deviceApproval}`](request, response) {
      checkOrigin(request, origins, true);
      const { session } = await signedIn(request, true);
      const made = await audited(
        request,
        session,
        'request',
        () => requestApproval(ctx, session),
        (result) => ({
          message: 'web session asked to be verified by a trusted device',
          fields: { request_id: result.id },
        }),
      );
      const answer: WebDeviceApprovalRequest = {
        id: made.id,
        link: made.link,
        code: made.code,
        expiresMs: made.expiresMs,
      };
      sendJson(response, 200, answer);
    },

    async [`GET ${WEB_DEVICE_CONFIRM_PATH}`](request, response) {
      // A top-level navigation opened by Keyport Connect: no Origin; Sec-Fetch-Site `none` (typed or opened
      // by the OS) or same-origin. Another site's link is refused, and SameSite=Strict keeps the cookie from it.
      checkOrigin(request, origins, false);
      const query = confirmQuery(request.url ?? '');
      const { session } = await signedIn(request, false).catch(async (error: unknown) => {
        // Opened without the asking session's cookie (another browser, or signed out): refused, audited.
        if (error instanceof KeyportError) {
          await ctx.audit.record({
            type: 'web.approval',
            actor: '',
            clientAddr: peerOf(request),
            success: false,
            message: `web session approval refused (confirm): no signed-in session (${error.code})`,
            fields: { request_id: query.id.slice(0, 64), step: 'confirm' },
          });
        }
        throw error;
      });
      const result = await audited(
        request,
        session,
        'confirm',
        async () => {
          const redirect = checkRedirect(query.redirect, origins[0] ?? '');
          return { ...(await confirm(ctx, session, query.id, query.token)), redirect };
        },
        (confirmed) => ({
          message: `web session trusted: device ${confirmed.assetTag}`,
          fields: { request_id: query.id.slice(0, 64), device_id: confirmed.deviceId },
        }),
      );
      response.writeHead(303, {
        ...WEB_SECURITY_HEADERS,
        Location: result.redirect,
        'Cache-Control': 'no-store',
      });
      response.end();
    },
  };
}
