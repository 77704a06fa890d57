// The web UI's client of keyport-auth's JSON API (proto/webapi.ts). Same origin only; the session cookie
// is HttpOnly and never seen here. The CSRF token the server gives this page goes with every state change.
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../../proto/webapi';
import type {
  WebApiError,
  WebChallenge,
  WebChallengeRequest,
  WebClusterInfo,
  WebDeviceApprovalRequest,
  WebLoginRequest,
  WebSessionView,
  WebSsoStart,
  WebSsoStartRequest,
} from '../../proto/webapi';

export class ApiError extends Error {
  constructor(readonly detail: WebApiError) {
    super(detail.message);
  }
}

async function call<T>(method: string, path: string, body?: unknown, csrfToken?: string): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrfToken) headers[WEBAPI_CSRF_HEADER] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError({ code: 'UNAVAILABLE', message: 'The auth service cannot be reached; try again.' });
  }
  const parsed = (await response.json().catch(() => ({}))) as { error?: WebApiError };
  if (!response.ok) {
    throw new ApiError(
      parsed.error ?? { code: 'INTERNAL', message: `The auth service answered ${response.status}.` },
    );
  }
  return parsed as T;
}

export const api = {
  cluster: () => call<WebClusterInfo>('GET', WEBAPI.cluster),
  challenge: (request: WebChallengeRequest) => call<WebChallenge>('POST', WEBAPI.challenge, request),
  login: (request: WebLoginRequest) =>
    call<{ user: string; expiresMs: number }>('POST', WEBAPI.login, request),
  session: () => call<WebSessionView>('GET', WEBAPI.session),
  signOut: (csrfToken: string) => call<object>('DELETE', WEBAPI.session, undefined, csrfToken),
  ssoStart: (request: WebSsoStartRequest) => call<WebSsoStart>('POST', WEBAPI.ssoStart, request),
  requestDeviceApproval: (csrfToken: string) =>
    call<WebDeviceApprovalRequest>('POST', WEBAPI.deviceApproval, {}, csrfToken),
};
