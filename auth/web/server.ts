// keyport-auth's web listener (`--web-listen`, `web_listen_addr`): HTTPS with the same host certificate as
// the gRPC listener, serving the web app (dist/web, built from web/) and its JSON API (api.ts). Every
// response carries the security headers (http.ts); a Host that is not the web UI's is refused.
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { KeyportError } from '../../proto/errors';
import type { ServiceContext } from '../context';
import { webApi } from './api';
import { ssoCallback } from './sso-callback';
import { OIDC_CALLBACK_PATH } from '../sso/callback';
import { hostAllowed, sendError, WEB_SECURITY_HEADERS } from './http';

/** The built web app, beside the sources (build-app.mjs writes it). */
export const WEB_APP_DIR = resolve(import.meta.dirname, '..', '..', 'dist', 'web');

export interface WebListenerOptions {
  host: string;
  port: number;
  /** The web UI's public address (HOST:PORT; port 0 takes the bound port): its one origin. */
  publicAddr: string;
  tls: { keyPem: string; chainPem: string };
  appDir?: string;
  log: (line: string) => void;
}

export interface RunningWebListener {
  /** https://HOST:PORT, the one origin the web UI is served from (and WebAuthn accepts). */
  origin: string;
  port: number;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** A file of the built app; any other path without an extension is the app's index (its own routes). */
async function serveApp(appDir: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  let path: string;
  try {
    path = decodeURIComponent((request.url ?? '/').split('?')[0] ?? '/');
  } catch {
    throw new KeyportError('INVALID_ARGUMENT', 'The path is not valid URL encoding.');
  }
  const wanted = extname(path) === '' ? '/index.html' : path;
  const file = normalize(join(appDir, wanted));
  const found = file.startsWith(appDir + sep) ? await stat(file).catch(() => undefined) : undefined;
  if (!found?.isFile()) {
    const missing =
      wanted === '/index.html' ? 'The web UI is not built here: run npm run build:app.' : 'Not found.';
    response.writeHead(404, { ...WEB_SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
    response.end(missing);
    return;
  }
  response.writeHead(200, {
    ...WEB_SECURITY_HEADERS,
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    // Vite names assets by their content; the index must be fetched afresh.
    'Cache-Control': wanted.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  response.end(await readFile(file));
}

export async function startWebListener(
  ctx: ServiceContext,
  options: WebListenerOptions,
): Promise<RunningWebListener> {
  const appDir = options.appDir ?? WEB_APP_DIR;
  let origin = '';
  let hosts: string[] = [];
  const origins: string[] = [];
  const route = webApi(ctx, { origins });

  const server = createServer(
    { key: options.tls.keyPem, cert: options.tls.chainPem, minVersion: 'TLSv1.2' },
    (request, response) => {
      void (async () => {
        try {
          if (!hostAllowed(request, hosts)) {
            throw new KeyportError('ACCESS_DENIED', `This server answers only as ${origin}.`);
          }
          if (request.method === 'GET' && (request.url ?? '').split('?')[0] === OIDC_CALLBACK_PATH) {
            return await ssoCallback(ctx, request, response, origin);
          }
          const handler = route(request);
          if (handler) return await handler(request, response);
          if ((request.url ?? '').startsWith('/v1/')) {
            throw new KeyportError('NOT_FOUND', `No such API call: ${request.method} ${request.url}.`);
          }
          if (request.method !== 'GET' && request.method !== 'HEAD') {
            throw new KeyportError('INVALID_ARGUMENT', `${request.method} is not served here.`);
          }
          await serveApp(appDir, request, response);
        } catch (error) {
          sendError(response, error, options.log);
        }
      })();
    },
  );
  // Slow or idle clients do not hold sockets for long.
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  const port = await new Promise<number>((resolvePort, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      const address = server.address();
      resolvePort(typeof address === 'object' && address ? address.port : options.port);
    });
  });
  const publicAddr = options.publicAddr.replace(/:0$/, `:${port}`);
  origin = new URL(`https://${publicAddr}`).origin;
  origins.push(origin);
  hosts = [new URL(origin).host.toLowerCase()];
  return {
    origin,
    port,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}
