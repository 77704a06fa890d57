// The renderer's files, as the browser host serves them: GET and HEAD only, the index with the bridge
// script injected, the bridge itself, and otherwise files under dist/renderer and nowhere else. A request
// path is refused (not normalised) when it tries to leave that folder in any spelling: "..", "%2e%2e",
// encoded slashes or backslashes, NUL, hidden files, empty segments.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileInside, mimeType } from '../renderer-files';

export { mimeType };
import { sendPlain, withSecurityHeaders } from './request-checks';

/** Where the page loads the bridge from; a classic script, so it runs before the renderer's module. */
export const BRIDGE_PATH = '/keyport-bridge.js';
const BRIDGE_TAG = `<script src="${BRIDGE_PATH}"></script>`;

export type StaticTarget =
  | { kind: 'index' }
  | { kind: 'bridge' }
  | { kind: 'file'; segments: string[] }
  | { kind: 'refused'; status: 400 | 404 };

/** Maps a raw request target (`request.url`) to what to serve, refusing anything that could escape. */
export function resolveRequestPath(rawUrl: string): StaticTarget {
  // Origin-form only: "/path?query". An absolute-form target ("http://x/") or "*" is refused.
  if (!rawUrl.startsWith('/') || rawUrl.startsWith('//')) return { kind: 'refused', status: 400 };
  const pathname = rawUrl.split(/[?#]/, 1)[0] ?? '';
  if (/[\\\0]|%(2f|5c|00)/i.test(pathname)) return { kind: 'refused', status: 400 };
  if (pathname === '/' || pathname === '/index.html') return { kind: 'index' };
  if (pathname === BRIDGE_PATH) return { kind: 'bridge' };
  const segments: string[] = [];
  for (const raw of pathname.slice(1).split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return { kind: 'refused', status: 400 };
    }
    // Decoding cannot yield a separator or NUL (refused encoded above), but check the result anyway.
    if (segment === '' || segment.startsWith('.') || /[/\\\0]/.test(segment)) {
      return { kind: 'refused', status: 404 };
    }
    segments.push(segment);
  }
  return { kind: 'file', segments };
}

/** The index with the bridge script before its first script (the renderer's module script). */
export function injectBridge(html: string): string {
  const firstScript = html.search(/<script\b/i);
  if (firstScript >= 0) return `${html.slice(0, firstScript)}${BRIDGE_TAG}\n    ${html.slice(firstScript)}`;
  const headEnd = html.search(/<\/head>/i);
  if (headEnd >= 0) return `${html.slice(0, headEnd)}  ${BRIDGE_TAG}\n  ${html.slice(headEnd)}`;
  return `${BRIDGE_TAG}\n${html}`;
}

export interface StaticFiles {
  rendererDir: string;
  bridgeFile: string;
}

export function staticFiles(distDir: string): StaticFiles {
  return {
    rendererDir: join(distDir, 'renderer'),
    bridgeFile: join(distDir, 'preload', 'keyport-bridge.js'),
  };
}

/** Reads the file for a target: undefined when there is none (or it resolves outside dist/renderer). */
async function load(
  files: StaticFiles,
  target: StaticTarget,
): Promise<{ body: Buffer; path: string } | undefined> {
  try {
    if (target.kind === 'index') {
      const path = join(files.rendererDir, 'index.html');
      return { body: Buffer.from(injectBridge(await readFile(path, 'utf8'))), path };
    }
    if (target.kind === 'bridge') return { body: await readFile(files.bridgeFile), path: files.bridgeFile };
    if (target.kind !== 'file') return undefined;
    const found = await fileInside(files.rendererDir, target.segments);
    if (!('path' in found)) return undefined;
    const path = found.path;
    return { body: await readFile(path), path };
  } catch {
    return undefined;
  }
}

/** Answers a GET or HEAD for a static file (the caller has checked the Host header). */
export async function serveStatic(
  files: StaticFiles,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    sendPlain(response, 405, 'Method not allowed.', { Allow: 'GET, HEAD' });
    return;
  }
  const target = resolveRequestPath(request.url ?? '');
  if (target.kind === 'refused') {
    sendPlain(response, target.status, target.status === 400 ? 'Bad request path.' : 'Not found.');
    return;
  }
  const found = await load(files, target);
  if (!found) {
    sendPlain(response, 404, 'Not found.');
    return;
  }
  const type = mimeType(found.path);
  response.writeHead(
    200,
    withSecurityHeaders({
      'Content-Type': type,
      'Content-Length': found.body.length,
      // The index and the bridge have fixed names, so a cached copy could outlive a rebuild; the hashed
      // assets are revalidated (cheap on loopback), never trusted blindly.
      'Cache-Control': type.startsWith('text/html') || target.kind === 'bridge' ? 'no-store' : 'no-cache',
    }),
  );
  response.end(request.method === 'HEAD' ? undefined : found.body);
}
