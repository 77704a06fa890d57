// The IdP's callback as HTTP (auth/sso/callback.ts decides): a 303 to the client's loopback address, or a
// small page of keyport-auth's own when the request is unknown. The callback carries no cookie and needs
// none: the state is its credential.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceContext } from '../context';
import { oidcCallback } from '../sso/callback';
import { peerOf, WEB_SECURITY_HEADERS } from './http';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function ssoCallback(
  ctx: ServiceContext,
  request: IncomingMessage,
  response: ServerResponse,
  origin: string,
): Promise<void> {
  const outcome = await oidcCallback(ctx, new URL(request.url ?? '/', origin), peerOf(request));
  if ('redirect' in outcome) {
    response.writeHead(303, {
      ...WEB_SECURITY_HEADERS,
      Location: outcome.redirect,
      'Cache-Control': 'no-store',
    });
    response.end();
    return;
  }
  const { status, title, message } = outcome.page;
  response.writeHead(status, {
    ...WEB_SECURITY_HEADERS,
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  response.end(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
      `<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></main></body></html>`,
  );
}
