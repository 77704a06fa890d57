// Checks every request to the browser host makes before anything else: the Host header (DNS rebinding: a
// page on evil.example whose name resolves to 127.0.0.1 reaches this port, but its requests carry
// "Host: evil.example"), the Origin (a page on another origin, including another port of 127.0.0.1, may
// not post a token or open the WebSocket) and the session cookie.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { RENDERER_SECURITY_HEADERS } from '../csp';

export const SESSION_COOKIE = 'keyport_session';

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

/** The value of one cookie; undefined when absent or sent more than once (an ambiguous jar is refused). */
export function readCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  const values: string[] = [];
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values.length === 1 ? values[0] : undefined;
}

/**
 * The session cookie. HttpOnly: the page's scripts never see it (invariant 1). SameSite=Strict: no other
 * site's request carries it. Path=/: the WebSocket at /bridge gets it. No `Secure`, so no `__Host-`
 * prefix either: the host speaks plain http on loopback, where a Secure cookie would not be sent back.
 * Cookies are not scoped by port, so the value alone is not trusted: it must be one this host issued.
 */
export function sessionCookie(session: string): string {
  return `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`;
}

/** RENDERER_SECURITY_HEADERS on every response, whatever its status. */
export function withSecurityHeaders(
  headers: Record<string, string | number> = {},
): Record<string, string | number> {
  return { ...RENDERER_SECURITY_HEADERS, ...headers };
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
