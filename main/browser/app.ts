// Keyport Connect on the browser host, as one program: the backend for a Keyport home, the browser host, the
// link socket that `keyport-connect open-url` talks to, the relogin socket the keyport CLI asks, and a Chromium app window (or, without a display,
// the launch URL to open). `npm start` builds the same parts around its lab; this is the app without a lab,
// what `keyport-connect` starts on a Linux desktop where no Electron binary is installed. While no window
// shows the app, the session watcher's notices go to the desktop (session-notices.ts), and a click on one
// opens a window again with a fresh launch URL.
import { ProfileStore } from '../../client/profiles';
import { createBackend } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { listenForLinks } from '../backend/link-socket';
import type { LinkSocket } from '../backend/link-socket';
import type { OpenInBrowser } from '../backend/web-approval';
import { listenForReloginRequests } from '../backend/relogin-socket';
import { openAppWindow } from './chromium';
import { openWithXdg } from './open-in-browser';
import type { AppWindow } from './chromium';
import { notifySendNotifier } from './desktop-notifications';
import { startBrowserHost } from './host';
import type { BrowserHost } from './host';
import { deliverSessionNotices } from './session-notices';

export interface ConnectAppOptions {
  home: string;
  /** The built app (dist/): the renderer and the browser bridge. */
  distDir: string;
  env?: NodeJS.ProcessEnv;
  /** The keyport:// link that started the app: held before the window opens, so its screen shows first. */
  link?: string;
  /** How the web-session approval's confirm URL and an SSO login's IdP page reach the browser (default: xdg-open). */
  openInBrowser?: OpenInBrowser;
}

export interface ConnectApp {
  backend: Backend;
  host: BrowserHost;
  links: LinkSocket;
  /** The window opened last; undefined without a display: then `host.url` is to be opened by hand. */
  readonly window: AppWindow | undefined;
  /** Opens another app window with a fresh launch URL (what a click on a desktop notification does). */
  openWindow(): Promise<void>;
  close(): Promise<void>;
}

export async function startConnectApp(options: ConnectAppOptions): Promise<ConnectApp> {
  const env = options.env ?? process.env;
  const backend = createBackend({
    profiles: new ProfileStore(options.home),
    keystoreKind: 'keychain',
    env,
    openInBrowser: options.openInBrowser ?? openWithXdg(env),
  });
  const stops: (() => Promise<unknown>)[] = [() => backend.close()];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch(() => {});
  };
  try {
    await backend.ready;
    // Before anything else listens: a second app for the same home stops here (ALREADY_EXISTS).
    const links = await listenForLinks(options.home, (link) => backend.openDeepLink(link));
    stops.push(() => links.close());
    // The CLI's "sign in again" requests show the app's relogin prompt (client/app-relogin.ts). Without
    // the socket (a KEYPORT_HOME too long for one) the app still runs, and the CLI signs in in the terminal.
    try {
      const relogins = await listenForReloginRequests(options.home, backend.relogin);
      stops.push(() => relogins.close());
    } catch (error) {
      console.warn(`The keyport CLI cannot ask this app to sign in again: ${(error as Error).message}`);
    }
    if (options.link !== undefined) await backend.openDeepLink(options.link);
    const host = await startBrowserHost({ backend, distDir: options.distDir });
    stops.push(() => host.close());
    let window: AppWindow | undefined;
    const open = async (url: string) => {
      const opened = await openAppWindow(url, { env });
      if (!opened) return;
      window = opened;
      stops.push(() => opened.close());
    };
    await open(host.url);
    const notifier = notifySendNotifier({ env, log: (line) => console.warn(line) });
    stops.push(() => notifier.close());
    const stopNotices = deliverSessionNotices({
      backend,
      notifier,
      shownWindows: () => host.shownWindows,
      openWindow: () => open(host.newLaunchUrl()),
      log: (line) => console.warn(line),
    });
    stops.push(async () => stopNotices());
    let closing: Promise<void> | undefined;
    return {
      backend,
      host,
      links,
      get window() {
        return window;
      },
      openWindow: () => open(host.newLaunchUrl()),
      close: () => (closing ??= stop()),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
