// fetch over node:https that trusts the given CAs (the lab IdP's; a bundle may add a cluster's) and nothing else, never follows a
// redirect, and refuses any host but the loopback. openid-client 6 has no `ca` option: this is its
// customFetch in the tests; the browser stand-in (browser.ts) uses it too.
import { request } from 'node:https';

export interface HttpsFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | URLSearchParams | Uint8Array | ArrayBuffer | ReadableStream | null;
  signal?: AbortSignal | null;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function bodyBytes(body: HttpsFetchInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof ReadableStream) throw new Error('a streamed body is not sent by the lab fetch');
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

export function httpsFetchTrusting(caPem: string) {
  return (url: string | URL, init: HttpsFetchInit = {}): Promise<Response> => {
    const target = new URL(url);
    if (target.protocol !== 'https:')
      return Promise.reject(new Error(`only https is fetched, not ${target.href}`));
    if (!LOOPBACK_HOSTS.has(target.hostname)) {
      return Promise.reject(new Error(`the lab fetches only loopback addresses, not ${target.host}`));
    }
    let body: Buffer | undefined;
    try {
      body = bodyBytes(init.body);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const headers: Record<string, string> = { ...init.headers };
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
          ca: caPem,
          signal: init.signal ?? undefined,
          // The lab's listeners are on 127.0.0.1; `localhost` may resolve to ::1 first.
          ...(target.hostname === 'localhost' ? { family: 4 } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const responseHeaders = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (Array.isArray(value)) for (const item of value) responseHeaders.append(name, item);
              else if (value !== undefined) responseHeaders.set(name, value);
            }
            const status = res.statusCode ?? 500;
            const content = status === 204 || status === 304 ? null : Buffer.concat(chunks);
            const response = new Response(content, { status, headers: responseHeaders });
            // Response.url is read-only and empty for a constructed Response; openid-client does not need it.
            resolve(response);
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };
}
