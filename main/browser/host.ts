// The browser host (docs/architecture.md "Two desktop hosts, one backend"): the backend's handler table served
// to a Chromium app window over loopback.
//   GET  /, /index.html      the renderer's index, with the bridge script injected (static-files.ts)
//   GET  /keyport-bridge.js  window.keyport over the WebSocket (preload/browser-bridge.ts, built)
//   GET  /assets/...         the renderer's other files
//   POST /session            {token}: spends a one-time launch token, answers {session}
//   GET  /bridge (upgrade)   the contract over a WebSocket, for a session offered as a subprotocol
//                            (bridge-server.ts)
// Only 127.0.0.1 is bound, on a random port; every request must name exactly that host and port.
// The window is opened at `url`, whose fragment holds the launch token: a fragment never leaves the
// browser in a request, and the bridge removes it from the address at once. No cookie is ever set:
// every port of 127.0.0.1 shares one cookie jar (request-checks.ts), so the session lives in the tab's
// sessionStorage, which is per origin (port included) and per tab.
import { access } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Backend } from '../backend/backend';
import { createBridgeServer } from './bridge-server';
import {
  appOrigin,
  fetchSiteIsSameOrigin,
  hostIsApp,
  originIsApp,
  sendJson,
  sendPlain,
} from './request-checks';
import { LaunchTokens, Sessions } from './secrets';
import { serveStatic, staticFiles } from './static-files';

export const SESSION_PATH = '/session';
/** How long a launch token stays valid: the time it takes a window to open, with room to spare. */
export const DEFAULT_TOKEN_TTL_MS = 2 * 60_000;
/** How long a session lasts from its issue, however much it is used: a working day and then some. */
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60_000;
const MAX_SESSION_BODY_BYTES = 1024;

export interface BrowserHostOptions {
  backend: Backend;
  /** The built app: dist/renderer/ and dist/preload/keyport-bridge.js (node build-app.mjs). */
  distDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  tokenTtlMs?: number;
  /** The clock for token and session expiry (default Date.now); tests move their own. */
  now?: () => number;
  /** A session's whole lifetime; DEFAULT_SESSION_TTL_MS unless given. */
  sessionTtlMs?: number;
  /** Connection notes (never a token or a session); silent by default. */
  log?: (line: string) => void;
}

export interface BrowserHost {
  /** The launch URL to open once: the app's address with a one-time token in its fragment. */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  port: number;
  /** Another launch URL with a fresh token, for another window (the first token may be spent). */
  newLaunchUrl(): string;
  /** Open bridge sockets. */
  readonly connections: number;
  /** Open bridge sockets whose page is shown: 0 when every window is closed or hidden. */
  readonly shownWindows: number;
  /**
   * Ends every session issued so far and closes their sockets; a window needs a new launch URL to
   * connect again. Unspent launch tokens stay valid (they expire within minutes anyway).
   */
  revokeSessions(): void;
  /** Revokes every session, closes every socket and stops listening. */
  close(): Promise<void>;
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > limit) {
      resolve('too-large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit the rest is drained unread; the answer (413, Connection: close) goes at once.
      if (size > limit) resolve('too-large');
      else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function isJsonContentType(value: string | undefined): boolean {
  return (value ?? '').split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
}

export async function startBrowserHost(options: BrowserHostOptions): Promise<BrowserHost> {
  const log = options.log ?? (() => {});
  const files = staticFiles(options.distDir);
  for (const [path, what] of [
    [`${files.rendererDir}/index.html`, 'the renderer'],
    [files.bridgeFile, 'the browser bridge'],
  ] as const) {
    try {
      await access(path);
    } catch {
      throw new Error(`Keyport Connect is not built (${what} is missing: ${path}). Run: npm run build:app`);
    }
  }

  const tokens = new LaunchTokens({ ttlMs: options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS, now: options.now });
  const sessions = new Sessions({ ttlMs: options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS, now: options.now });
  let port = 0;
  const bridge = createBridgeServer({ backend: options.backend, sessions, port: () => port, log });

  /**
   * POST /session {token}: a valid, unspent, unexpired launch token becomes a session, answered in the
   * body (never a cookie) for the bridge to keep in sessionStorage. no-store: no cache keeps a copy.
   */
  async function exchangeToken(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== 'POST') {
      sendPlain(response, 405, 'Method not allowed.', { Allow: 'POST' });
      return;
    }
    if (!originIsApp(request.headers, port) || !fetchSiteIsSameOrigin(request.headers)) {
      log('session refused: not from the app origin');
      sendPlain(response, 403, 'Forbidden.');
      return;
    }
    if (!isJsonContentType(request.headers['content-type'])) {
      sendPlain(response, 415, 'Send application/json.');
      return;
    }
    const body = await readBody(request, MAX_SESSION_BODY_BYTES);
    if (body === 'too-large') {
      sendPlain(response, 413, 'Too large.', { Connection: 'close' });
      return;
    }
    let token: unknown;
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      token =
        typeof parsed === 'object' && parsed !== null ? (parsed as { token?: unknown }).token : undefined;
    } catch {
      sendPlain(response, 400, 'Send {"token": "..."}.');
      return;
    }
    if (!tokens.consume(token)) {
      log('session refused: unknown, spent or expired launch token');
      sendPlain(response, 403, 'Forbidden.');
      return;
    }
    log('session issued');
    sendJson(response, 200, { session: sessions.issue() });
  }

  async function onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // Before anything else: a request for another host name is a DNS-rebinding attempt (or a mistake).
    if (!hostIsApp(request.headers, port)) {
      sendPlain(response, 421, 'Misdirected request.');
      return;
    }
    const path = (request.url ?? '').split('?', 1)[0];
    if (path === SESSION_PATH) await exchangeToken(request, response);
    else await serveStatic(files, request, response);
  }

  const server = createServer((request, response) => {
    onRequest(request, response).catch((error: unknown) => {
      log(`request failed: ${error instanceof Error ? error.message : String(error)}`);
      if (!response.headersSent) sendPlain(response, 500, 'Internal error.');
      else response.destroy();
    });
  });
  server.on('upgrade', (request: IncomingMessage, socket, head: Buffer) =>
    bridge.handleUpgrade(request, socket, head),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const origin = appOrigin(port);
  const newLaunchUrl = () => `${origin}/#launch=${tokens.issue()}`;

  let closing: Promise<void> | undefined;
  return {
    url: newLaunchUrl(),
    origin,
    port,
    newLaunchUrl,
    get connections() {
      return bridge.size;
    },
    get shownWindows() {
      return bridge.shown;
    },
    revokeSessions() {
      sessions.revokeAll();
      bridge.endSessions();
      log('sessions revoked');
    },
    close() {
      closing ??= (async () => {
        tokens.clear();
        sessions.revokeAll();
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await bridge.close();
        await serverClosed;
      })();
      return closing;
    },
  };
}
