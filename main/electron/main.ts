// The Electron host's entry (bundled to dist/electron/main.mjs): wires the modules beside it, each tested on
// its own, to Electron. startElectronHost() takes Electron and the backend as arguments, so main.test.ts runs
// this file against a recording double of Electron (importing the real one without its binary starts a
// download); the module body passes the real ones.
import * as electron from 'electron';
import { keyportHome, ProfileStore } from '../../client/profiles';
import { createBackend } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { APP_ENTRY_URL, APP_SCHEME, appSchemePrivileges, createAppProtocolHandler } from './app-protocol';
import { DEEP_LINK_SCHEME, deepLinkInArgv } from './deep-links';
import { createInvokeHandler, forwardEvents, INVOKE_CHANNEL } from './ipc';
import { applicationMenuTemplate } from './menu';
import { guardWebContents, httpsOpener } from './navigation';
import { appPaths } from './paths';
import type { AppPaths } from './paths';
import { applySessionPolicy, denyCertificateError } from './session-policy';
import { appWindowOptions } from './window-options';

/** The part of Electron the host uses. */
export type ElectronApi = Pick<
  typeof electron,
  'app' | 'BrowserWindow' | 'ipcMain' | 'Menu' | 'protocol' | 'session' | 'shell'
>;

export interface HostDeps {
  paths: AppPaths;
  /** Called once, and only when this is the single instance. */
  createBackend(): Pick<Backend, 'handlers' | 'on' | 'close' | 'openDeepLink'>;
  platform: NodeJS.Platform;
  argv: readonly string[];
}

export function startElectronHost(api: ElectronApi, deps: HostDeps): void {
  const { app, BrowserWindow, ipcMain, Menu, protocol, session, shell } = api;
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
  let window: electron.BrowserWindow | undefined;

  function openWindow(): electron.BrowserWindow {
    const options = appWindowOptions({ preload: paths.preload, devTools });
    // Electronegativity cannot follow `options` to window-options.ts, which sets contextIsolation, sandbox
    // and disableBlinkFeatures: 'Auxclick' (its test asserts them; test/electronegativity.test.ts scans them).
    const created = new BrowserWindow(options); // eng-disable CONTEXT_ISOLATION_JS_CHECK SANDBOX_JS_CHECK AUXCLICK_JS_CHECK
    const stopForwarding = forwardEvents(backend, created.webContents);
    created.once('ready-to-show', () => created.show());
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
  /** The window to the front (a new one where none is open and the app is ready). */
  function showWindow(): void {
    if (!window) {
      if (app.isReady()) window = openWindow();
      return;
    }
    if (window.isMinimized()) window.restore();
    window.focus();
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
    if (platform !== 'darwin') app.quit();
  });
  app.on('will-quit', () => {
    ipcMain.removeHandler(INVOKE_CHANNEL);
    // The backend may hold a profile watcher.
    backend.close().catch((error: unknown) => console.error('Closing failed:', error));
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
      // Windows and Linux: the link that launched the app is on its own command line.
      openLink(deepLinkInArgv(deps.argv));
      window ??= openWindow();
    })
    .catch((error: unknown) => {
      console.error('Keyport Connect could not start:', error);
      app.exit(1);
    });
}

startElectronHost(electron, {
  paths: appPaths(import.meta.url),
  createBackend: () =>
    createBackend({
      profiles: new ProfileStore(keyportHome()),
      keystoreKind: 'keychain',
      // The web-session approval's confirm URL (checked by the client core: https, the confirm path only) and
      // an SSO login's IdP page (checked by the backend); https only here again.
      openInBrowser: httpsOpener((url) => electron.shell.openExternal(url)),
    }),
  platform: process.platform,
  argv: process.argv,
});
