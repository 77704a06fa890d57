// HTTP plumbing of the web listener, apart from what the API decides: the security headers every response
// carries, typed JSON errors, bounded JSON bodies, cookies, and the checks on where a request comes from.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { CONTENT_SECURITY_POLICY } from '../../proto/csp';
import { KeyportError } from '../../proto/errors';
import type { KeyportErrorCode } from '../../proto/errors';
import type { WebApiError } from '../../proto/webapi';

export const WEB_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'Strict-Transport-Security': 'max-age=31536000',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // WebAuthn from this page itself only; nothing else a page could ask for.
  'Permissions-Policy':
    'publickey-credentials-get=(self), publickey-credentials-create=(self), camera=(), microphone=(), geolocation=(), usb=(), hid=(), serial=()',
};

/** The largest JSON body the API reads: a WebAuthn assertion is a few KiB. */
export const MAX_BODY_BYTES = 64 * 1024;

const httpStatusOf: Record<KeyportErrorCode, number> = {
  INTERNAL: 500,
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ACCESS_DENIED: 403,
  UNAUTHENTICATED: 401,
  MFA_REQUIRED: 403,
  MFA_FAILED: 403,
  LOCKED: 403,
  EXPIRED: 400,
  PRIVATE_KEY_POLICY_NOT_MET: 403,
  DEVICE_TRUST_REQUIRED: 403,
  PASSWORDLESS_DISABLED: 400,
  PRECONDITION_FAILED: 412,
  CERTIFICATE_EXPIRED: 401,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  CA_PIN_MISMATCH: 503,
  CANCELLED: 400,
};

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...WEB_SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

/** A KeyportError as `{ error }` with its HTTP status; anything else is INTERNAL, its text not told. */
export function sendError(response: ServerResponse, error: unknown, log: (line: string) => void): void {
  const known = error instanceof KeyportError ? error : undefined;
  if (!known) log(`error: ${error instanceof Error ? error.stack : String(error)}`);
  const typed = known ?? new KeyportError('INTERNAL', 'Something went wrong on the auth service; try again.');
  const body: WebApiError = {
    code: typed.code,
    message: typed.message,
    ...(typed.fields.fieldPath !== undefined ? { fieldPath: typed.fields.fieldPath } : {}),
    ...(typed.fields.lockedUntilMs !== undefined ? { lockedUntilMs: typed.fields.lockedUntilMs } : {}),
    ...(typed.fields.retryAfterMs !== undefined ? { retryAfterMs: typed.fields.retryAfterMs } : {}),
  };
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, httpStatusOf[typed.code], { error: body });
}

const invalid = (message: string, fieldPath?: string) =>
  new KeyportError('INVALID_ARGUMENT', message, fieldPath !== undefined ? { fieldPath } : {});

/**
 * The request's JSON body: `application/json` only (so no HTML form can post here), at most
 * MAX_BODY_BYTES, refused by its declared length before it is read and by its count while reading.
 */
export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json')
    throw invalid('The request body must be JSON (Content-Type: application/json).');
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw invalid('The request body is not valid JSON.');
  }
}

function tooLarge(): KeyportError {
  return new KeyportError('RESOURCE_EXHAUSTED', `The request body is over ${MAX_BODY_BYTES} bytes.`);
}

/** `value` checked against `schema`, or INVALID_ARGUMENT naming the first field that is wrong. */
export function parsed<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const fieldPath = issue?.path.join('.') ?? '';
  throw new KeyportError(
    'INVALID_ARGUMENT',
    `The request is not valid${fieldPath ? ` at ${fieldPath}` : ''}: ${issue?.message ?? 'unexpected shape'}.`,
    fieldPath ? { fieldPath } : {},
  );
}

/** A cookie's value from the Cookie header (the first of that name), undefined when absent. */
export function cookieValue(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

/**
 * A `__Host-` cookie: Secure, Path=/, no Domain (the browser enforces all three for the prefix). Strict
 * unless told: only a cookie that must come back on another site's navigation (the IdP's redirect) is Lax.
 */
export function sessionCookie(
  name: string,
  value: string,
  maxAgeSeconds: number,
  sameSite: 'Strict' | 'Lax' = 'Strict',
): string {
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=${sameSite}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

/**
 * The request comes from the web UI's own page. `Origin`, when the browser sends one, must be one of the
 * web UI's origins exactly; a state-changing request must send it. `Sec-Fetch-Site`, when sent, must be
 * same-origin (a GET from another site's page is refused too).
 */
export function checkOrigin(
  request: IncomingMessage,
  origins: readonly string[],
  stateChanging: boolean,
): void {
  const origin = request.headers.origin;
  if (origin === undefined ? stateChanging : !origins.includes(origin)) {
    throw new KeyportError(
      'ACCESS_DENIED',
      `This request did not come from the web UI's own page (Origin ${origin ?? 'missing'}); open ${origins[0] ?? 'the web UI'} and try again.`,
    );
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new KeyportError('ACCESS_DENIED', `This request came from another site (Sec-Fetch-Site: ${site}).`);
  }
}

/** The Host header names the web UI (DNS rebinding: another name resolving to this address is refused). */
export function hostAllowed(request: IncomingMessage, hosts: readonly string[]): boolean {
  const host = request.headers.host;
  return host !== undefined && hosts.includes(host.toLowerCase());
}

/** The peer as a grpc-js peer string, so the lockout and the audit log read it alike for both transports. */
export function peerOf(request: IncomingMessage): string {
  const address = (request.socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
  const port = request.socket.remotePort ?? 0;
  return address.includes(':') ? `ipv6:[${address}]:${port}` : `ipv4:${address}:${port}`;
}
