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
}

const MAX_REDIRECTS = 10;
const FORM_ACTION = /<form[^>]*\smethod="post"[^>]*\saction="([^"]+)"/i;

export class LabBrowser {
  readonly #jar = new CookieJar();
  readonly #fetch: ReturnType<typeof httpsFetchTrusting>;

  constructor(caPem: string) {
    this.#fetch = httpsFetchTrusting(caPem);
  }

  async request(url: string, form?: Record<string, string>): Promise<PageResponse> {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = await this.#jar.getCookieString(url);
    if (cookie !== '') headers.cookie = cookie;
    const response = await this.#fetch(url, {
      method: form === undefined ? 'GET' : 'POST',
      headers,
      body: form === undefined ? undefined : new URLSearchParams(form),
    });
    for (const setCookie of response.headers.getSetCookie()) await this.#jar.setCookie(setCookie, url);
    const location = response.headers.get('location');
    return {
      url,
      status: response.status,
      text: await response.text(),
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
