// The Electron host's entry (bundled to dist/electron/main.mjs): wires the modules beside it, each tested on
// its own, to Electron. This file is only type-checked and scanned by Electronegativity; no test imports it,
// because importing electron without its binary starts a download.
import { app, BrowserWindow, ipcMain, Menu, protocol, session, shell } from 'electron';
import { keyportHome, ProfileStore } from '../../client/profiles';
import { createBackend } from '../backend/backend';
import { APP_ENTRY_URL, APP_SCHEME, appSchemePrivileges, createAppProtocolHandler } from './app-protocol';
import { DEEP_LINK_SCHEME, deepLinkInArgv, ignoreDeepLink } from './deep-links';
import { createInvokeHandler, forwardEvents, INVOKE_CHANNEL } from './ipc';
import { applicationMenuTemplate } from './menu';
import { guardWebContents } from './navigation';
import { appPaths } from './paths';
import { applySessionPolicy, denyCertificateError } from './session-policy';
import { appWindowOptions } from './window-options';

const devTools = !app.isPackaged;
const paths = appPaths(import.meta.url);

// Both must happen before 'ready'.
protocol.registerSchemesAsPrivileged([appSchemePrivileges]);
app.enableSandbox();

if (!app.requestSingleInstanceLock()) {
  // Another Keyport Connect runs; it receives 'second-instance' and comes to the front.
  app.quit();
} else {
  start();
}

function start(): void {
  const backend = createBackend({ profiles: new ProfileStore(keyportHome()), keystoreKind: 'keychain' });
  let window: BrowserWindow | undefined;

  function openWindow(): BrowserWindow {
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
  app.on('second-instance', (_event, argv) => {
    ignoreDeepLink(deepLinkInArgv(argv));
    if (!window) return;
    if (window.isMinimized()) window.restore();
    window.focus();
  });
  app.on('open-url', (event, url) => {
    event.preventDefault();
    ignoreDeepLink(url);
  });
  app.on('activate', () => {
    if (app.isReady() && !window) window = openWindow();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('will-quit', () => {
    ipcMain.removeHandler(INVOKE_CHANNEL);
    // The backend may hold a profile watcher; close it when it has a close().
    const close: unknown = 'close' in backend ? backend.close : undefined;
    if (typeof close === 'function') {
      Promise.resolve(close.call(backend)).catch((error: unknown) => console.error('Closing failed:', error));
    }
  });

  app
    .whenReady()
    .then(() => {
      applySessionPolicy(session.defaultSession, { devTools });
      protocol.handle(APP_SCHEME, createAppProtocolHandler(paths.renderer));
      Menu.setApplicationMenu(
        Menu.buildFromTemplate(
          applicationMenuTemplate({ appName: app.name, isMac: process.platform === 'darwin', devTools }),
        ),
      );
      ipcMain.handle(INVOKE_CHANNEL, createInvokeHandler(backend.handlers));
      // A development run would register node_modules' Electron as the system's keyport:// handler.
      if (app.isPackaged) app.setAsDefaultProtocolClient(DEEP_LINK_SCHEME);
      ignoreDeepLink(deepLinkInArgv(process.argv));
      window = openWindow();
    })
    .catch((error: unknown) => {
      console.error('Keyport Connect could not start:', error);
      app.exit(1);
    });
}
