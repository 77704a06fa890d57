// The renderer is served from app://keyport/, a privileged standard scheme, never from file:// (Electron
// security checklist §18): the page gets a real origin that the CSP's 'self', the IPC sender check and the
// navigation guard can name, and it can read nothing outside dist/renderer.

// fs.promises through the fs object, read at call time: Electron patches its members to read inside app.asar.
import { promises as fs } from 'node:fs';
import type { CustomScheme } from 'electron';
import { RENDERER_SECURITY_HEADERS } from '../csp';
import { fileInside, mimeType } from '../renderer-files';

/** The content type of a renderer file (kept under this name for the host's callers). */
export const mimeTypeOf = mimeType;

export const APP_SCHEME = 'app';
export const APP_HOST = 'keyport';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/** Registered before `ready`. Not bypassCSP: the page keeps the CSP the responses carry. */
export const appSchemePrivileges: CustomScheme = {
  scheme: APP_SCHEME,
  privileges: { standard: true, secure: true, supportFetchAPI: true },
};

/** True for a URL on the app's own origin: app://keyport, without user info or a port. */
export function isAppUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  // Node parses app: as a non-special scheme: URL.origin is "null" and the host keeps its case (Chromium,
  // which knows app: as standard, lowercases it). So compare the parts.
  return (
    url.protocol === `${APP_SCHEME}:` && url.host.toLowerCase() === APP_HOST && !url.username && !url.password
  );
}

export type AppResource =
  { status: 200; path: string; mimeType: string } | { status: 403 | 404; reason: string };

/**
 * Maps an app:// request URL to a file under `root` (dist/renderer). Refuses other origins, and any path
 * whose decoded segments could leave the root (`..`, encoded slashes or backslashes, drive letters, NUL),
 * or whose real path (after symlinks) is outside it. `/` is index.html; anything unknown is 404.
 */
export async function resolveAppRequest(rawUrl: string, root: string): Promise<AppResource> {
  if (!isAppUrl(rawUrl)) return { status: 403, reason: 'not the app origin' };
  const pathname = new URL(rawUrl).pathname || '/';
  const segments: string[] = [];
  for (const encoded of pathname.split('/').slice(1)) {
    let segment: string;
    try {
      segment = decodeURIComponent(encoded);
    } catch {
      return { status: 404, reason: 'malformed escape' };
    }
    if (segment === '.' || segment === '..' || /[/\\:\0]/.test(segment)) {
      return { status: 404, reason: 'path escapes the renderer root' };
    }
    segments.push(segment);
  }
  if (segments.length === 1 && segments[0] === '') segments[0] = 'index.html';
  if (segments.some((segment) => segment === '')) return { status: 404, reason: 'not a file' };

  const found = await fileInside(root, segments);
  if ('refused' in found) {
    const reasons = {
      outside: 'path escapes the renderer root',
      missing: 'no such file',
      'not a file': 'not a file',
      'links outside': 'links outside the renderer root',
    } as const;
    return { status: 404, reason: reasons[found.refused] };
  }
  const realFile = found.path;
  return { status: 200, path: realFile, mimeType: mimeType(realFile) };
}

function respond(status: number, body: Uint8Array | string | null, contentType: string): Response {
  return new Response(body, {
    status,
    headers: { ...RENDERER_SECURITY_HEADERS, 'Content-Type': contentType, 'Cache-Control': 'no-cache' },
  });
}

/** The `protocol.handle('app', ...)` handler: GET and HEAD only, every response with the security headers. */
export function createAppProtocolHandler(root: string): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return respond(405, 'Method not allowed.', 'text/plain; charset=utf-8');
    }
    const resource = await resolveAppRequest(request.url, root);
    if (resource.status !== 200) {
      const text = resource.status === 403 ? 'Forbidden.' : 'Not found.';
      return respond(resource.status, text, 'text/plain; charset=utf-8');
    }
    const body = request.method === 'HEAD' ? null : new Uint8Array(await fs.readFile(resource.path));
    return respond(200, body, resource.mimeType);
  };
}
