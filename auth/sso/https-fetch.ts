// The relying party's fetch towards an IdP: https only, over node:https with the trust keyport-auth is
// configured with (Node's default CAs, the system's where this Node can read them, plus an optional CA
// bundle from keyport-auth's config for a private IdP or the lab's), no redirects followed, a deadline.
// openid-client 6 has no `ca` option: this is its customFetch.
import { request } from 'node:https';
import * as tls from 'node:tls';

export interface IdpFetchInit {
  method?: string;
  headers?: Record<string, string> | Headers;
  body?: string | URLSearchParams | Uint8Array | ArrayBuffer | ReadableStream | null;
  signal?: AbortSignal | null;
}

export type IdpFetch = (url: string | URL, init?: IdpFetchInit) => Promise<Response>;

/** How long one request to the IdP may take: discovery, the JWKS or the token exchange. */
export const IDP_REQUEST_TIMEOUT_MS = 15_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Node's CAs, the system's (Node ≥ 22.15 / 23.5 read them), and the configured bundle. */
export function idpTrust(extraCaPem: string | undefined): string[] | undefined {
  if (extraCaPem === undefined) return undefined;
  const get = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  const system = get ? [...get('default'), ...get('system')] : [...tls.rootCertificates];
  return [...system, extraCaPem];
}

function bodyBytes(body: IdpFetchInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof ReadableStream) throw new Error('a streamed body is not sent to the IdP');
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

export function idpFetch(extraCaPem: string | undefined): IdpFetch {
  const ca = idpTrust(extraCaPem);
  return (url, init = {}) => {
    const target = new URL(url);
    if (target.protocol !== 'https:') {
      return Promise.reject(new Error(`an identity provider is reached over https only, not ${target.href}`));
    }
    let body: Buffer | undefined;
    try {
      body = bodyBytes(init.body);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const headers: Record<string, string> =
      init.headers instanceof Headers ? Object.fromEntries(init.headers.entries()) : { ...init.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    if (body !== undefined && init.body instanceof URLSearchParams && headers['content-type'] === undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    return new Promise<Response>((resolve, reject) => {
      const req = request(
        target,
        {
          method: init.method ?? 'GET',
          headers,
          ...(ca ? { ca } : {}),
          signal: init.signal ?? undefined,
          timeout: IDP_REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('the IdP answered more than 1 MiB'));
            else chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => {
            const responseHeaders = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (Array.isArray(value)) for (const item of value) responseHeaders.append(name, item);
              else if (value !== undefined) responseHeaders.set(name, value);
            }
            const status = res.statusCode ?? 500;
            const content = status === 204 || status === 304 ? null : Buffer.concat(chunks);
            resolve(new Response(content, { status, headers: responseHeaders }));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('the identity provider did not answer in time')));
      req.on('error', reject);
      req.end(body);
    });
  };
}
