// The Electron host's entry (bundled to dist/electron/main.mjs): wires the modules beside it, each tested on
// its own, to Electron. startElectronHost() takes Electron and the backend as arguments, so the host's tests
// run this file against a recording double of Electron (testing/electron-double.ts; importing the real one
// without its binary starts a download); the module body passes the real ones.
import * as electron from 'electron';
import { keyportHome, ProfileStore } from '../../client/profiles';
import { KeyportError } from '../../proto/errors';
import { clockFromEnv } from '../../proto/clock';
import type { Clock } from '../../proto/clock';
import { createBackend } from '../backend/backend';
import type { Backend } from '../backend/backend';
import type { LinkSocket } from '../backend/link-socket';
import type { Relogin } from '../backend/relogin';
import { listenForReloginRequests } from '../backend/relogin-socket';
import { APP_ENTRY_URL, APP_SCHEME, appSchemePrivileges, createAppProtocolHandler } from './app-protocol';
import { createCloseToTray } from './close-to-tray';
import type { CloseToTray } from './close-to-tray';
import { DEEP_LINK_SCHEME, deepLinkInArgv } from './deep-links';
import { createInvokeHandler, forwardEvents, INVOKE_CHANNEL } from './ipc';
import { applicationMenuTemplate } from './menu';
import { guardWebContents, httpsOpener } from './navigation';
import { createNotifier, sessionNotifications } from './notifications';
import { appPaths } from './paths';
import type { AppPaths } from './paths';
import { applySessionPolicy, denyCertificateError } from './session-policy';
import { createTray } from './tray';
import type { AppTray } from './tray';
import { reloginReason } from './tray-menu';
import type { TrayAction } from './tray-menu';
import { appWindowOptions } from './window-options';

/** The part of Electron the host uses. */
export type ElectronApi = Pick<
  typeof electron,
  'app' | 'BrowserWindow' | 'ipcMain' | 'Menu' | 'Notification' | 'protocol' | 'session' | 'shell' | 'Tray'
>;

export interface HostDeps {
  paths: AppPaths;
  /** Called once, and only when this is the single instance. */
  createBackend(): Pick<Backend, 'handlers' | 'on' | 'close' | 'openDeepLink'> & {
    relogin: Pick<Relogin, 'signInAgain'>;
  };
  platform: NodeJS.Platform;
  argv: readonly string[];
  /**
   * The backend's profile store (KEYPORT_HOME): the tray's menu reads it, and the keyport CLI asks this app
   * to sign in again beside it (connect/relogin.sock).
   */
  profiles: ProfileStore;
  /** The service clock (proto/clock): the tray's "until HH:MM" against it. */
  clock: Clock;
}

/** How long a quit waits for the backend and the relogin socket to close. */
const SHUTDOWN_MS = 3_000;

export function startElectronHost(api: ElectronApi, deps: HostDeps): void {
  const { app, BrowserWindow, ipcMain, Menu, Notification, protocol, session, shell, Tray } = api;
  const { paths, platform } = deps;
  const devTools = !app.isPackaged;

  // Both must happen before 'ready'.
  protocol.registerSchemesAsPrivileged([appSchemePrivileges]);
  app.enableSandbox();

  if (!app.requestSingleInstanceLock()) {
    // Another Keyport Connect runs; it receives 'second-instance' and comes to the front.
    app.quit();
    return;
  }

  const backend = deps.createBackend();
  const notifier = createNotifier(Notification);
  let window: electron.BrowserWindow | undefined;
  let tray: AppTray | undefined;
  let closeToTray: CloseToTray | undefined;
  let reloginSocket: Promise<LinkSocket | undefined> = Promise.resolve(undefined);
  let quitting = false;

  function openWindow(): electron.BrowserWindow {
    const options = appWindowOptions({ preload: paths.preload, devTools });
    // Electronegativity cannot follow `options` to window-options.ts, which sets contextIsolation, sandbox
    // and disableBlinkFeatures: 'Auxclick' (its test asserts them; test/electronegativity.test.ts scans them).
    const created = new BrowserWindow(options); // eng-disable CONTEXT_ISOLATION_JS_CHECK SANDBOX_JS_CHECK AUXCLICK_JS_CHECK
    const stopForwarding = forwardEvents(backend, created.webContents);
    created.once('ready-to-show', () => created.show());
    closeToTray?.attach(created);
    created.on('closed', () => {
      stopForwarding();
      if (window === created) window = undefined;
    });
    created.loadURL(APP_ENTRY_URL).catch((error: unknown) => console.error('Could not load the app:', error));
    return created;
  }

  app.on('web-contents-created', (_event, contents) =>
    guardWebContents(contents, (url) => shell.openExternal(url)),
  );
  app.on('certificate-error', denyCertificateError);
  /** The window to the front: shown again from the tray, or a new one where none is open and the app is ready. */
  function showWindow(): void {
    if (!window) {
      if (app.isReady()) window = openWindow();
      return;
    }
    if (window.isMinimized()) window.restore();
    if (!window.isVisible()) window.show();
    window.focus();
  }

  /**
   * The backend's relogin for `address` (joined with one running for it), its prompt in the window, which
   * comes to the front: the tray's "Sign in again…", a notification's click, the CLI's request.
   */
  function signInAgain(address: string, reason: string[]): ReturnType<Relogin['signInAgain']> {
    showWindow();
    return backend.relogin.signInAgain(address, reason);
  }
  function startSignInAgain(address: string, reason: string[]): void {
    signInAgain(address, reason).catch((error: unknown) => {
      // A cancel is the person's answer; anything else is said by the prompt. Only the code is logged.
      if (!(error instanceof KeyportError && error.code === 'CANCELLED')) {
        console.warn(
          `Signing in to ${address} again failed: ${error instanceof KeyportError ? error.code : 'INTERNAL'}`,
        );
      }
    });
  }

  function runTrayAction(action: TrayAction): void {
    switch (action.kind) {
      case 'open':
        return showWindow();
      case 'signInAgain':
        return startSignInAgain(action.address, action.reason);
      case 'quit':
        return app.quit();
    }
  }

  /**
   * A keyport:// link to the backend, which holds it for the screen it fills in and tells the window
   * (onDeepLink; a window that opens later asks deepLinks.current). Never logged: it carries a token.
   */
  function openLink(link: string | undefined): void {
    if (link !== undefined) void backend.openDeepLink(link);
  }

  // Windows and Linux: a second start (`keyport-connect keyport://…`, from the desktop's handler) gives
  // its argv to this instance through the single-instance lock, and quits.
  app.on('second-instance', (_event, argv) => {
    openLink(deepLinkInArgv(argv));
    showWindow();
  });
  // macOS: the link comes as an event, before 'ready' too when it launched the app.
  app.on('open-url', (event, url) => {
    event.preventDefault();
    openLink(url);
    showWindow();
  });
  app.on('activate', () => {
    if (app.isReady() && !window) window = openWindow();
  });
  app.on('window-all-closed', () => {
    // macOS keeps the app in the dock; elsewhere the tray keeps it, and without a tray the last window quits.
    if (platform !== 'darwin' && !tray) app.quit();
  });
  // A quit (the tray's Quit, the app menu's, the OS's) closes the window for real.
  app.on('before-quit', () => {
    quitting = true;
  });
  let shutDown = false;
  app.on('will-quit', (event) => {
    if (shutDown) return;
    shutDown = true;
    // The backend (its profile watcher, terminals, card sessions) and the relogin socket close first, then
    // the quit goes on; a close that hangs does not keep the app running past SHUTDOWN_MS.
    event.preventDefault();
    ipcMain.removeHandler(INVOKE_CHANNEL);
    tray?.destroy();
    tray = undefined;
    const closing = Promise.allSettled([
      backend.close().catch((error: unknown) => console.error('Closing failed:', error)),
      reloginSocket.then((socket) => socket?.close()),
    ]);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_MS)));
    void Promise.race([closing, bound]).then(() => {
      clearTimeout(timer);
      app.quit();
    });
  });

  app
    .whenReady()
    .then(() => {
      applySessionPolicy(session.defaultSession, { devTools });
      protocol.handle(APP_SCHEME, createAppProtocolHandler(paths.renderer));
      Menu.setApplicationMenu(
        Menu.buildFromTemplate(
          applicationMenuTemplate({ appName: app.name, isMac: platform === 'darwin', devTools }),
        ),
      );
      ipcMain.handle(INVOKE_CHANNEL, createInvokeHandler(backend.handlers));
      // A development run would register node_modules' Electron as the system's keyport:// handler.
      if (app.isPackaged) app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);
      tray = startTray();
      closeToTray = createCloseToTray({
        platform,
        userData: app.getPath('userData'),
        notifier,
        hasTray: () => tray !== undefined,
        isQuitting: () => quitting,
        showWindow,
      });
      // Session notices on the desktop from here on. One subscription for the app, not one per window: a
      // reloaded or reopened window never says a notice twice.
      backend.on(
        'onSessionNotice',
        sessionNotifications({
          notifier,
          clusterName: (address) => tray?.clusterName(address) ?? address,
          signInAgain: (address, notice) =>
            startSignInAgain(address, reloginReason(notice.expiresMs, deps.clock())),
        }),
      );
      // The CLI's "sign in again" requests show this app's relogin prompt (client/app-relogin.ts). Without
      // the socket (another app for this KEYPORT_HOME has it) the CLI signs in in the terminal.
      reloginSocket = listenForReloginRequests(deps.profiles.home, { signInAgain }).catch(
        (error: unknown) => {
          console.warn(`The keyport CLI cannot ask this app to sign in again: ${(error as Error).message}`);
          return undefined;
        },
      );
      // Windows and Linux: the link that launched the app is on its own command line.
      openLink(deepLinkInArgv(deps.argv));
      window ??= openWindow();
    })
    .catch((error: unknown) => {
      console.error('Keyport Connect could not start:', error);
      app.exit(1);
    });

  function startTray(): AppTray | undefined {
    try {
      return createTray({
        Tray,
        Menu,
        icon: paths.trayIcon,
        platform,
        profiles: deps.profiles,
        backend,
        clock: deps.clock,
        run: runTrayAction,
      });
    } catch (error) {
      console.warn('No tray icon on this desktop:', (error as Error).message);
      return undefined;
    }
  }
}

const profiles = new ProfileStore(keyportHome());
startElectronHost(electron, {
  paths: appPaths(import.meta.url),
  createBackend: () =>
    createBackend({
      profiles,
      keystoreKind: 'keychain',
      // The web-session approval's confirm URL (checked by the client core: https, the confirm path only) and
      // an SSO login's IdP page (checked by the backend); https only here again.
      openInBrowser: httpsOpener((url) => electron.shell.openExternal(url)),
    }),
  platform: process.platform,
  argv: process.argv,
  profiles,
  clock: clockFromEnv(process.env),
});
