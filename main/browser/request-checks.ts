// Checks every request to the browser host makes before anything else: the Host header (DNS rebinding: a
// page on evil.example whose name resolves to 127.0.0.1 reaches this port, but its requests carry
// "Host: evil.example"), the Origin (a page on another origin, including another port of 127.0.0.1, may
// not post a token or open the WebSocket) and the session the WebSocket upgrade presents.
//
// There is no cookie, on purpose. Cookies are not isolated by port: a cookie set by 127.0.0.1:PORT goes
// with every request to every other http://127.0.0.1:* server the same browser profile visits, and
// SameSite does not help (every port of one host is the same site). Any local process serving a page the
// browser opens would receive it, and could then replay it from a non-browser client with a forged
// Origin. So the session is handed to the bridge in a response body, kept in the tab's sessionStorage
// (isolated per origin, port included, and per tab) and sent as a WebSocket subprotocol, which a browser
// only sends when the page's own script asks for it. Cookie headers are never read. The price: unlike an
// HttpOnly cookie, the page's own scripts can read the session. They can already call everything through
// window.keyport, and the CSP admits only the app's own scripts; one session opens one socket at a time
// and expires (secrets.ts).
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { RENDERER_SECURITY_HEADERS } from '../csp';
import { looksLikeSecret } from './secrets';

/** The subprotocol the bridge speaks; the server selects it, so the session is never echoed back. */
export const BRIDGE_PROTOCOL = 'keyport.v1';
/** The second subprotocol entry the bridge offers: this prefix, then its session (base64url: token chars). */
export const SESSION_PROTOCOL_PREFIX = 'keyport-session.';

/** The one origin the app is served from; also the one accepted Host header, without the scheme. */
export function appOrigin(port: number): string {
  return `http://127.0.0.1:${port}`;
}

export function hostIsApp(headers: IncomingHttpHeaders, port: number): boolean {
  return headers.host === `127.0.0.1:${port}`;
}

export function originIsApp(headers: IncomingHttpHeaders, port: number): boolean {
  return headers.origin === appOrigin(port);
}

/**
 * Fetch metadata, where the browser sends it: a request the page did not make itself (another site, a
 * typed URL for a POST) is refused. Absent headers pass; Origin is what is required.
 */
export function fetchSiteIsSameOrigin(headers: IncomingHttpHeaders): boolean {
  const site = headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin';
}

/**
 * The session an upgrade presents in Sec-WebSocket-Protocol: exactly two entries, `keyport.v1` then
 * `keyport-session.SESSION`, with SESSION shaped like a secret. Anything else (no header, another
 * protocol, a third entry, the entries swapped) gives undefined. Whether the session is one this host
 * issued, and still live, is for Sessions to say.
 */
export function sessionFromProtocols(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return undefined;
  const entries = header.split(',').map((entry) => entry.trim());
  if (entries.length !== 2 || entries[0] !== BRIDGE_PROTOCOL) return undefined;
  const offered = entries[1] ?? '';
  if (!offered.startsWith(SESSION_PROTOCOL_PREFIX)) return undefined;
  const session = offered.slice(SESSION_PROTOCOL_PREFIX.length);
  return looksLikeSecret(session) ? session : undefined;
}

/** RENDERER_SECURITY_HEADERS on every response, whatever its status. */
export function withSecurityHeaders(
  headers: Record<string, string | number> = {},
): Record<string, string | number> {
  return { ...RENDERER_SECURITY_HEADERS, ...headers };
}

/** A small JSON answer, with the security headers and no caching (it may carry a secret). */
export function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(
    status,
    withSecurityHeaders({
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
    }),
  );
  response.end(body);
}

/** A short plain-text answer (errors, 204s), with the security headers and no caching. */
export function sendPlain(
  response: ServerResponse,
  status: number,
  text = '',
  extra: Record<string, string | number> = {},
): void {
  if (status === 204) {
    response.writeHead(status, withSecurityHeaders({ 'Cache-Control': 'no-store', ...extra }));
    response.end();
    return;
  }
  const body = text ? `${text}\n` : '';
  response.writeHead(
    status,
    withSecurityHeaders({
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      ...extra,
    }),
  );
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
