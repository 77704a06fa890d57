// The IdP's callback as HTTP (auth/sso/callback.ts decides): a 303 to the client's loopback address, or,
// for a web UI's sign-in, to the web UI's home with the new session's cookie; or a small page of
// keyport-auth's own when the request is unknown or refused. A CLI's callback needs no cookie (the state is
// its credential); a web UI's needs the binding cookie of the browser that started it (web-sign-in.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceContext } from '../context';
import { oidcCallback } from '../sso/callback';
import { SSO_BINDING_COOKIE } from '../sso/web-sign-in';
import { WEB_SESSION_COOKIE } from '../web-sessions';
import { cookieValue, peerOf, sessionCookie, WEB_SECURITY_HEADERS } from './http';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function ssoCallback(
  ctx: ServiceContext,
  request: IncomingMessage,
  response: ServerResponse,
  origin: string,
): Promise<void> {
  const userAgent = request.headers['user-agent'];
  const outcome = await oidcCallback(ctx, new URL(request.url ?? '/', origin), peerOf(request), {
    binding: cookieValue(request, SSO_BINDING_COOKIE),
    userAgent: typeof userAgent === 'string' ? userAgent : undefined,
  });
  if ('redirect' in outcome) {
    const { webSession } = outcome;
    response.writeHead(303, {
      ...WEB_SECURITY_HEADERS,
      // A web sign-in lands on the web UI's home, on this origin; a CLI's on its loopback address.
      Location: new URL(outcome.redirect, origin).href,
      'Cache-Control': 'no-store',
      ...(webSession === undefined
        ? {}
        : {
            'Set-Cookie': [
              sessionCookie(WEB_SESSION_COOKIE, webSession.token, (webSession.expiresMs - ctx.now()) / 1000),
              sessionCookie(SSO_BINDING_COOKIE, '', 0, 'Lax'),
            ],
          }),
    });
    response.end();
    return;
  }
  const { status, title, message, link } = outcome.page;
  response.writeHead(status, {
    ...WEB_SECURITY_HEADERS,
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  response.end(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>` +
      (link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : '') +
      `</main></body></html>`,
  );
}
