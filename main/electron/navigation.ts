// Navigation and new windows (Electron security checklist §13-§15). The app window only ever shows
// app://keyport; a page that tries to go anywhere else is stopped. New windows are never created: an https
// link to a host on the allowlist goes to the person's browser instead, anything else is dropped.
import type { WebContents } from 'electron';
import { KeyportError } from '../../proto/errors';
import { isAppUrl } from './app-protocol';

/** Hosts whose pages the app may hand to the browser (documentation, source, issues). Exact matches only. */
export const EXTERNAL_HOSTS: readonly string[] = ['keyport.dev', 'docs.keyport.dev', 'github.com'];

const MAX_EXTERNAL_URL_LENGTH = 2048;

/**
 * The URL to give `shell.openExternal`, or undefined when it must not be opened: https only, no user info
 * (`https://keyport.dev@evil.example` is evil.example), the default port, and a host on the allowlist
 * compared after the URL parser's own normalisation (lower case, punycode, so look-alike IDNs never match).
 * The normalised href is returned, never the raw string.
 */
export function externalUrl(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length > MAX_EXTERNAL_URL_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.port) return undefined;
  return EXTERNAL_HOSTS.includes(url.hostname) ? url.href : undefined;
}

export function isAllowedExternalUrl(raw: unknown): boolean {
  return externalUrl(raw) !== undefined;
}

export type OpenExternal = (url: string) => Promise<void>;

const MAX_BROWSER_URL_LENGTH = 8 * 1024;

/**
 * The backend's way to the person's browser (BackendOptions.openInBrowser: the web-session approval's
 * confirm URL, an SSO login's IdP page). The backend checked each URL already; shell.openExternal would open
 * any scheme (file:, smb:, a custom handler), so this checks again: https only, no user info, bounded.
 */
export function httpsOpener(openExternal: OpenExternal): OpenExternal {
  return async (raw) => {
    let url: URL | undefined;
    try {
      url = raw.length <= MAX_BROWSER_URL_LENGTH ? new URL(raw) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'https:' || url.username !== '' || url.password !== '') {
      throw new KeyportError('PRECONDITION_FAILED', 'Only https addresses are opened in the browser.');
    }
    await openExternal(url.href);
  };
}

/** Applied to every WebContents the app creates (app 'web-contents-created'). */
export function guardWebContents(contents: WebContents, openExternal: OpenExternal): void {
  const stayInApp = (event: { preventDefault(): void; url: string }) => {
    if (!isAppUrl(event.url)) event.preventDefault();
  };
  contents.on('will-navigate', stayInApp);
  contents.on('will-redirect', stayInApp);
  contents.on('will-frame-navigate', stayInApp);
  // webviewTag is off already; refuse an attach anyway, whatever preferences it asks for.
  contents.on('will-attach-webview', (event) => event.preventDefault());
  // Without a handler, Web Bluetooth picks the first device it finds.
  contents.on('select-bluetooth-device', (event, _devices, callback) => {
    event.preventDefault();
    callback('');
  });
  contents.setWindowOpenHandler(({ url }) => {
    const target = externalUrl(url);
    if (target !== undefined) {
      openExternal(target).catch((error: unknown) => console.error(`Could not open ${target}:`, error));
    }
    return { action: 'deny' };
  });
}
