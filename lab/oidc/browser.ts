// An HTTP client standing in for a person's browser in SSO tests where the page itself does not matter:
// it keeps cookies as a browser does (tough-cookie, so Path is respected: oidc-provider scopes its
// interaction cookies to /interaction/UID and /auth/UID), follows redirects itself, and stops where the
// IdP sends it back to the relying party, without calling it: that URL is what the test hands on.
import { CookieJar } from 'tough-cookie';
import { httpsFetchTrusting } from './https-fetch';

export interface PageResponse {
  url: string;
  status: number;
  location?: string;
  text: string;
  /** The response's Set-Cookie headers, as sent (the jar has kept them). */
  setCookies: string[];
}

/** A request as a page's script sends it with fetch: the method, headers such as Origin, a JSON body. */
export interface ScriptRequest {
  method?: string;
  headers?: Record<string, string>;
  json?: unknown;
}

const MAX_REDIRECTS = 10;
const FORM_ACTION = /<form[^>]*\smethod="post"[^>]*\saction="([^"]+)"/i;

export class LabBrowser {
  readonly #jar = new CookieJar();
  readonly #fetch: ReturnType<typeof httpsFetchTrusting>;

  /** `caPem`: the CAs this browser trusts (the IdP's; with a cluster's appended, its web UI too). */
  constructor(caPem: string) {
    this.#fetch = httpsFetchTrusting(caPem);
  }

  async request(url: string, form?: Record<string, string>): Promise<PageResponse> {
    return this.#send(url, {
      method: form === undefined ? 'GET' : 'POST',
      headers: { accept: 'text/html' },
      body: form === undefined ? undefined : new URLSearchParams(form),
    });
  }

  /** What a page's script sends with fetch (same jar): e.g. the web UI's JSON API calls, with Origin. */
  script(url: string, init: ScriptRequest = {}): Promise<PageResponse> {
    return this.#send(url, {
      method: init.method ?? (init.json === undefined ? 'GET' : 'POST'),
      headers: {
        accept: 'application/json',
        ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
    });
  }

  async #send(
    url: string,
    init: { method: string; headers: Record<string, string>; body: string | URLSearchParams | undefined },
  ): Promise<PageResponse> {
    const headers = { ...init.headers };
    const cookie = await this.#jar.getCookieString(url);
    if (cookie !== '') headers.cookie = cookie;
    const response = await this.#fetch(url, { method: init.method, headers, body: init.body });
    const setCookies = response.headers.getSetCookie();
    for (const setCookie of setCookies) await this.#jar.setCookie(setCookie, url);
    const location = response.headers.get('location');
    return {
      url,
      status: response.status,
      text: await response.text(),
      setCookies,
      ...(location === null ? {} : { location: new URL(location, url).href }),
    };
  }

  /**
   * Follows redirects from `response` until one leads to `stopAt` (the relying party's redirect URI) or a
   * page answers; returns the URL it stopped at and the last page.
   */
  async follow(response: PageResponse, stopAt: string): Promise<{ stoppedAt?: string; page: PageResponse }> {
    let current = response;
    for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
      if (current.location === undefined || current.status < 300 || current.status >= 400)
        return { page: current };
      if (current.location.startsWith(stopAt)) return { stoppedAt: current.location, page: current };
      current = await this.request(current.location);
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects from ${response.url}`);
  }

  /**
   * Opens `authorizationUrl`, fills the login page's form and follows the IdP back to `redirectUri`.
   * Returns the callback URL (with code and state), or the page where it stopped (a refused password).
   */
  async signIn(
    authorizationUrl: string,
    credentials: { username: string; password: string },
    redirectUri: string,
  ): Promise<{ callbackUrl?: string; page: PageResponse }> {
    const loginPage = await this.follow(await this.request(authorizationUrl), redirectUri);
    if (loginPage.stoppedAt !== undefined) return { callbackUrl: loginPage.stoppedAt, page: loginPage.page };
    const action = FORM_ACTION.exec(loginPage.page.text)?.[1];
    if (action === undefined) return { page: loginPage.page };
    const posted = await this.request(new URL(action, loginPage.page.url).href, credentials);
    const result = await this.follow(posted, redirectUri);
    return {
      page: result.page,
      ...(result.stoppedAt === undefined ? {} : { callbackUrl: result.stoppedAt }),
    };
  }
}
