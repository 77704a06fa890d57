// main.ts against a recording double of the part of Electron it uses (testing/electron-double.ts): the
// Electron binary cannot run here (requiring the real package starts a download), so `electron` is the one
// module this test replaces. The module body runs once as the bundle would run it; every other case calls
// startElectronHost() with a fresh double and a recording backend (testing/host-harness.ts). The tray, the
// notifications and the relogin socket have test files of their own (tray.test.ts, notifications.test.ts,
// cli-relogin.test.ts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { sep } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { reloginSocketPath } from '../../client/app-relogin';
import type { EventPayloads, Result } from '../../preload/contract';
import { RENDERER_SECURITY_HEADERS } from '../csp';
import { APP_ENTRY_URL, appSchemePrivileges } from './app-protocol';
import { EVENT_CHANNEL, INVOKE_CHANNEL } from './ipc';
import type { InvokeSender, SenderFrame } from './ipc';
import { applicationMenuTemplate } from './menu';
import { appPaths } from './paths';
import { appWindowOptions } from './window-options';
import { createFakeElectron, preventableEvent } from './testing/electron-double';
import type { FakeElectron, FakeWindow } from './testing/electron-double';
import {
  PRELOAD as preload,
  quitHosts,
  removeTempDirs,
  startHost,
  startReadyHost,
  tempDir,
} from './testing/host-harness';
import type { RecordingBackend, StartOptions } from './testing/host-harness';

const electronDouble = await vi.hoisted(() => import('./testing/electron-double'));
vi.mock('electron', () => electronDouble.electronModule);

afterEach(async () => {
  await quitHosts();
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

afterAll(removeTempDirs);

/** Loaded modules from the real electron package (its index.js looks for, and downloads, the binary). */
function realElectronModules(): string[] {
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).filter((path) => path.includes(`${sep}node_modules${sep}electron${sep}`));
}

async function loadHost() {
  return import('./main');
}

const start = (options: StartOptions<RecordingBackend> = {}) => startHost(options);
const startReady = (options: StartOptions<RecordingBackend> = {}) => startReadyHost(options);

function navigationEvent(url: string) {
  return { url, preventDefault: vi.fn() };
}

function topFrame(url = 'app://keyport/index.html'): SenderFrame {
  return { url, parent: null };
}

function invoke(fake: FakeElectron, event: InvokeSender, method: unknown, argument?: unknown) {
  const handler = fake.ipcHandlers.get(INVOKE_CHANNEL);
  if (!handler) throw new Error(`no ${INVOKE_CHANNEL} handler`);
  return handler(event, method, argument) as Promise<Result<unknown>>;
}

describe('main.ts as the bundle runs it (electron replaced by the double)', () => {
  it('gets the double, never the real electron package', async () => {
    const electron = (await import('electron')) as unknown as { isKeyportTestDouble?: boolean };
    expect(electron.isKeyportTestDouble).toBe(true);
    await loadHost();
    expect(realElectronModules()).toEqual([]);
  });

  it('without the single-instance lock: registers app:// and the sandbox, quits, and creates nothing', async () => {
    const fake = electronDouble.holder.current;
    await loadHost();
    expect(fake.calls).toEqual([
      'protocol.registerSchemesAsPrivileged',
      'app.enableSandbox',
      'app.requestSingleInstanceLock',
      'app.quit',
    ]);
    await fake.ready();
    expect(fake.windows).toEqual([]);
    expect(fake.ipcHandlers.size).toBe(0);
    expect(fake.protocolHandlers.size).toBe(0);
    expect(fake.app.listeners.size).toBe(0);
  });

  it('with the lock: runs the real backend under KEYPORT_HOME, answers app.info over IPC, listens for the CLI until quit', async () => {
    const home = tempDir();
    vi.stubEnv('KEYPORT_HOME', home);
    vi.resetModules();
    const fake = createFakeElectron({ lock: true, userData: tempDir() });
    electronDouble.holder.current = fake;
    await loadHost();
    await fake.ready();

    expect(fake.calls).not.toContain('app.quit');
    const [window] = fake.windows;
    const mainPaths = appPaths(new URL('./main.ts', import.meta.url).href);
    expect(window?.options).toEqual(appWindowOptions({ preload: mainPaths.preload, devTools: true }));
    expect(window?.loaded).toEqual([APP_ENTRY_URL]);

    const main = topFrame();
    const info = await invoke(fake, { senderFrame: main, sender: { mainFrame: main } }, 'app.info');
    expect(info).toMatchObject({ ok: true, value: { name: 'Keyport Connect', keyportHome: home } });

    // The CLI's relogin requests reach this app (cli-relogin.test.ts has the protocol through the host).
    const socket = reloginSocketPath(home);
    await expect.poll(() => existsSync(socket)).toBe(true);
    expect(fake.trays).toHaveLength(1);

    fake.app.quit();
    expect(fake.ipcHandlers.size).toBe(0);
    await expect.poll(() => fake.exit.quitted).toBe(true);
    expect(existsSync(socket)).toBe(false);
    expect(realElectronModules()).toEqual([]);
  });
});

describe('startElectronHost', () => {
  it('without the single-instance lock quits before ready and makes no backend, window or handler', async () => {
    const { fake, backendsCreated } = await start({ lock: false });
    await fake.ready();
    expect(fake.calls).toEqual([
      'protocol.registerSchemesAsPrivileged',
      'app.enableSandbox',
      'app.requestSingleInstanceLock',
      'app.quit',
    ]);
    expect(backendsCreated()).toBe(0);
    expect(fake.windows).toEqual([]);
    expect(fake.ipcHandlers.size).toBe(0);
    expect(fake.app.listeners.size).toBe(0);
    fake.app.emit('second-instance', {}, ['keyport-connect'], '/');
    expect(fake.windows).toEqual([]);
  });

  it('registers app:// as a privileged scheme and enables the sandbox before ready', async () => {
    const { fake } = await start();
    expect(fake.privilegedSchemes).toEqual([appSchemePrivileges]);
    expect(fake.privilegedSchemes).toEqual([
      { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
    ]);
    expect(fake.calls).toEqual([
      'protocol.registerSchemesAsPrivileged',
      'app.enableSandbox',
      'app.requestSingleInstanceLock',
      'app.whenReady',
    ]);
    // Nothing that needs 'ready' has happened yet.
    expect(fake.windows).toEqual([]);
    expect(fake.protocolHandlers.size).toBe(0);
    await fake.ready();
    expect(fake.calls.indexOf('app.enableSandbox')).toBeLessThan(fake.calls.indexOf('new BrowserWindow'));
  });

  it('on second-instance, brings the existing window to the front and opens no other', async () => {
    const { fake, window, backend } = await startReady();
    window.minimized = true;
    fake.app.emit('second-instance', {}, ['keyport-connect', '--no-sandbox'], '/');
    expect(window.restored).toBe(1);
    expect(window.focused).toBe(1);
    expect(fake.windows).toHaveLength(1);
    expect(backend.links).toEqual([]);
  });

  it('installs the deny-all session policy once ready', async () => {
    const { fake } = await start();
    expect(fake.policy).toEqual({});
    await fake.ready();
    const { permissionRequest, permissionCheck, devicePermission, beforeRequest } = fake.policy;

    for (const permission of ['media', 'notifications', 'geolocation', 'clipboard-read', 'hid']) {
      const callback = vi.fn();
      permissionRequest?.({}, permission, callback);
      expect(callback).toHaveBeenCalledExactlyOnceWith(false);
    }
    expect(permissionCheck?.({}, 'media', 'app://keyport', {})).toBe(false);
    expect(devicePermission?.({ deviceType: 'hid', origin: 'app://keyport' })).toBe(false);

    const filter = (url: string) => {
      const callback = vi.fn();
      beforeRequest?.({ url }, callback);
      expect(callback).toHaveBeenCalledOnce();
      return callback.mock.calls[0]?.[0] as { cancel: boolean };
    };
    expect(filter('https://evil.example/')).toEqual({ cancel: true });
    expect(filter('http://127.0.0.1:8080/')).toEqual({ cancel: true });
    expect(filter('file:///etc/passwd')).toEqual({ cancel: true });
    expect(filter('app://keyport/index.html')).toEqual({ cancel: false });
    // DevTools' front end loads in a development run only.
    expect(filter('devtools://devtools/bundled/inspector.html')).toEqual({ cancel: false });
  });

  it('cancels DevTools requests in a packaged build', async () => {
    const { fake } = await startReady({ isPackaged: true });
    const callback = vi.fn();
    fake.policy.beforeRequest?.({ url: 'devtools://devtools/bundled/inspector.html' }, callback);
    expect(callback).toHaveBeenCalledExactlyOnceWith({ cancel: true });
  });

  it('serves app:// from the renderer folder, with the security headers, and nothing else', async () => {
    const { fake } = await startReady();
    expect([...fake.protocolHandlers.keys()]).toEqual(['app']);
    const handle = fake.protocolHandlers.get('app')!;

    const page = await handle(new Request(APP_ENTRY_URL));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Keyport Connect</title>');
    for (const [name, value] of Object.entries(RENDERER_SECURITY_HEADERS)) {
      expect(page.headers.get(name)).toBe(value);
    }
    expect((await handle(new Request('https://evil.example/index.html'))).status).toBe(403);
    expect((await handle(new Request(APP_ENTRY_URL, { method: 'POST', body: 'x' }))).status).toBe(405);
  });

  it('guards every web contents: navigation, redirects, new windows and webviews', async () => {
    const { fake, window } = await startReady();
    const other = new fake.FakeWebContents();
    fake.app.emit('web-contents-created', {}, other);

    for (const contents of [window.webContents, other]) {
      for (const name of ['will-navigate', 'will-redirect', 'will-frame-navigate']) {
        const away = navigationEvent('https://evil.example/');
        contents.emit(name, away);
        expect(away.preventDefault, name).toHaveBeenCalled();
        const inside = navigationEvent('app://keyport/index.html#/devices');
        contents.emit(name, inside);
        expect(inside.preventDefault, name).not.toHaveBeenCalled();
      }
      const attach = { preventDefault: vi.fn() };
      contents.emit(
        'will-attach-webview',
        attach,
        { nodeIntegration: true },
        { src: 'https://evil.example/' },
      );
      expect(attach.preventDefault).toHaveBeenCalled();

      expect(contents.windowOpenHandler?.({ url: 'https://evil.example/' })).toEqual({ action: 'deny' });
      expect(contents.windowOpenHandler?.({ url: APP_ENTRY_URL })).toEqual({ action: 'deny' });
    }
    expect(fake.opened).toEqual([]);
    // An allowed https link is denied as a window and goes to the person's browser instead.
    expect(window.webContents.windowOpenHandler?.({ url: 'https://github.com/keyport' })).toEqual({
      action: 'deny',
    });
    expect(fake.opened).toEqual(['https://github.com/keyport']);
  });

  it('creates the window with the options of window-options.ts, loads app://keyport/index.html, shows it when ready', async () => {
    const { window } = await startReady();
    expect(window.options).toEqual(appWindowOptions({ preload, devTools: true }));
    expect(window.options).toMatchObject({
      show: false,
      webPreferences: {
        preload,
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
        webSecurity: true,
      },
    });
    expect(window.loaded).toEqual(['app://keyport/index.html']);
    expect(window.shown).toBe(false);
    window.emit('ready-to-show');
    expect(window.shown).toBe(true);
  });

  it('turns DevTools off in a packaged build', async () => {
    const { window } = await startReady({ isPackaged: true });
    expect(window.options).toEqual(appWindowOptions({ preload, devTools: false }));
  });

  it('registers keyport:invoke, which passes the app’s top frame through to the backend', async () => {
    const { fake, backend } = await startReady();
    expect([...fake.ipcHandlers.keys()]).toEqual([INVOKE_CHANNEL]);
    expect(INVOKE_CHANNEL).toBe('keyport:invoke');
    const main = window0(fake).webContents.mainFrame;
    await expect(
      invoke(fake, { senderFrame: main, sender: { mainFrame: main } }, 'clusters.list'),
    ).resolves.toEqual({ ok: true, value: 'clusters.list ran' });
    expect(backend.calls).toEqual([{ method: 'clusters.list', argument: undefined }]);
  });

  it('refuses a call from a subframe, another origin or a detached frame with ACCESS_DENIED, before the backend', async () => {
    const { fake, backend } = await startReady();
    const main = topFrame();
    const refused: InvokeSender[] = [
      // An app:// subframe.
      { senderFrame: { url: 'app://keyport/index.html', parent: main }, sender: { mainFrame: main } },
      // A subframe of another origin.
      { senderFrame: { url: 'https://evil.example/', parent: main }, sender: { mainFrame: main } },
      // A top frame that navigated away.
      (() => {
        const evil = topFrame('https://evil.example/');
        return { senderFrame: evil, sender: { mainFrame: evil } };
      })(),
      // app:// with user info is not the app origin.
      (() => {
        const spoof = topFrame('app://x@keyport/index.html');
        return { senderFrame: spoof, sender: { mainFrame: spoof } };
      })(),
      { senderFrame: { ...main, detached: true }, sender: { mainFrame: main } },
      { senderFrame: null, sender: { mainFrame: main } },
    ];
    for (const event of refused) {
      const result = await invoke(fake, event, 'auth.logout', { address: 'cluster.example:3025' });
      expect(result).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
    }
    expect(backend.calls).toEqual([]);
  });

  it('forwards backend events to the app window only, and stops when it closes', async () => {
    const { fake, backend, window } = await startReady();
    const other = new fake.FakeWebContents();
    fake.app.emit('web-contents-created', {}, other);
    const payload: EventPayloads['onProfileChanged'] = { address: 'cluster.example:3025', profile: null };

    backend.emit('onProfileChanged', payload);
    expect(window.webContents.sent).toEqual([[EVENT_CHANNEL, 'onProfileChanged', payload]]);
    expect(other.sent).toEqual([]);

    // Closed for good (macOS's close, or a quit; elsewhere the close button hides it: tray.test.ts).
    const withWindow = backend.listenerCount();
    window.destroy();
    expect(backend.listenerCount()).toBeLessThan(withWindow);
    backend.emit('onProfileChanged', payload);
    expect(window.webContents.sent).toHaveLength(1);

    // macOS: the dock icon reopens a window, which gets the events from then on.
    fake.app.emit('activate');
    expect(fake.windows).toHaveLength(2);
    expect(backend.listenerCount()).toBe(withWindow);
    backend.emit('onProfileChanged', payload);
    expect(fake.windows[1]?.webContents.sent).toEqual([[EVENT_CHANNEL, 'onProfileChanged', payload]]);
    expect(window.webContents.sent).toHaveLength(1);
  });

  it('sets the application menu', async () => {
    const { fake } = await startReady();
    expect(fake.menu.current).toEqual({
      template: applicationMenuTemplate({ appName: 'Keyport Connect', isMac: false, devTools: true }),
    });
    const mac = await startReady({ platform: 'darwin', isPackaged: true });
    expect(mac.fake.menu.current).toEqual({
      template: applicationMenuTemplate({ appName: 'Keyport Connect', isMac: true, devTools: false }),
    });
  });

  it('denies every certificate error', async () => {
    const { fake } = await startReady();
    const callback = vi.fn();
    const handled = fake.app.emit(
      'certificate-error',
      { preventDefault: vi.fn() },
      {},
      'https://evil.example/',
      'net::ERR_CERT_AUTHORITY_INVALID',
      {},
      callback,
    );
    expect(handled).toBe(true);
    expect(callback).toHaveBeenCalledExactlyOnceWith(false);
  });

  it('on quit removes the IPC handler and closes the backend, then lets the quit go on', async () => {
    const { fake, backend } = await startReady();
    expect(backend.closed).toBe(0);
    const willQuit = preventableEvent();
    fake.app.emit('will-quit', willQuit);
    // Held until the backend and the relogin socket have closed.
    expect(willQuit.defaultPrevented).toBe(true);
    expect(fake.ipcHandlers.size).toBe(0);
    expect(fake.calls).toContain(`ipcMain.removeHandler ${INVOKE_CHANNEL}`);
    expect(backend.closed).toBe(1);
    await expect.poll(() => fake.exit.quitted).toBe(true);
    expect(fake.calls.filter((call) => call === 'app.quit')).toHaveLength(1);
    expect(backend.closed).toBe(1);
  });

  it('quits when the last window closes only where nothing keeps the app: not with a tray, never on macOS', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const noTray = await startReady({ trayFails: true });
    expect(warn).toHaveBeenCalledWith('No tray icon on this desktop:', 'no tray on this desktop');
    noTray.window.close();
    expect(noTray.window.destroyed).toBe(true);
    noTray.fake.app.emit('window-all-closed');
    expect(noTray.fake.calls).toContain('app.quit');

    const linux = await startReady();
    linux.window.destroy();
    linux.fake.app.emit('window-all-closed');
    expect(linux.fake.calls).not.toContain('app.quit');

    const mac = await startReady({ platform: 'darwin' });
    mac.window.close();
    mac.fake.app.emit('window-all-closed');
    expect(mac.fake.calls).not.toContain('app.quit');
  });

  it('registers itself as the keyport:// handler in a packaged build only', async () => {
    const development = await startReady();
    expect(
      development.fake.calls.filter((call) => call.startsWith('app.setAsDefaultProtocolClient')),
    ).toEqual([]);
    const packaged = await startReady({ isPackaged: true });
    expect(packaged.fake.calls).toContain('app.setAsDefaultProtocolClient keyport');
  });

  describe('keyport:// links', () => {
    const link = 'keyport://lab/authorize-web-session?id=r1&token=secret-token-0123456789&redirect=%2F';

    it('second-instance (Windows, Linux): hands the link in its argv to the backend and shows the window', async () => {
      const { fake, window, backend } = await startReady();
      const log = [vi.spyOn(console, 'warn'), vi.spyOn(console, 'log'), vi.spyOn(console, 'error')];
      fake.app.emit('second-instance', {}, ['/opt/keyport/keyport-connect', '--no-sandbox', link], '/');
      expect(backend.links).toEqual([link]);
      expect(window.focused).toBe(1);
      expect(fake.windows).toHaveLength(1);
      // The link carries a token: it is never logged.
      for (const spy of log) expect(JSON.stringify(spy.mock.calls)).not.toContain('secret-token');
    });

    it('open-url (macOS): takes the event, hands the link to the backend and shows the window', async () => {
      const { fake, window, backend } = await startReady({ platform: 'darwin' });
      const event = { preventDefault: vi.fn() };
      fake.app.emit('open-url', event, link);
      expect(event.preventDefault).toHaveBeenCalled();
      expect(backend.links).toEqual([link]);
      expect(window.focused).toBe(1);
      // With every window closed (macOS keeps running), a link opens one.
      window.close();
      fake.app.emit('open-url', { preventDefault: vi.fn() }, link);
      expect(backend.links).toEqual([link, link]);
      expect(fake.windows).toHaveLength(2);
    });

    it('open-url before ready (a link launched the app on macOS): the backend has it, one window opens at ready', async () => {
      const { fake, backend } = await start({ platform: 'darwin' });
      fake.app.emit('open-url', { preventDefault: vi.fn() }, link);
      expect(backend.links).toEqual([link]);
      expect(fake.windows).toEqual([]);
      await fake.ready();
      expect(fake.windows).toHaveLength(1);
    });

    it("the first launch's argv (Windows, Linux): the link that started the app reaches the backend once, at ready", async () => {
      const { fake, backend } = await start({ argv: ['/opt/keyport/keyport-connect', link] });
      expect(backend.links).toEqual([]);
      await fake.ready();
      expect(backend.links).toEqual([link]);
      expect(fake.windows).toHaveLength(1);
    });

    it('without the single-instance lock, a launch by link hands nothing to a backend of its own', async () => {
      const { fake, backendsCreated } = await start({
        lock: false,
        argv: ['/opt/keyport/keyport-connect', link],
      });
      await fake.ready();
      expect(fake.calls).toContain('app.quit');
      expect(backendsCreated()).toBe(0);
    });

    it('an argv without a keyport:// link hands nothing over', async () => {
      const { fake, backend } = await startReady({ argv: ['/opt/keyport/keyport-connect', 'https://x/'] });
      fake.app.emit('second-instance', {}, ['keyport-connect', 'keyport:nope'], '/');
      expect(backend.links).toEqual([]);
    });
  });

  it('exits with 1 when starting fails', async () => {
    const { fake } = await start();
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    fake.api.Menu.buildFromTemplate = () => {
      throw new Error('no menu');
    };
    await fake.ready();
    expect(fake.calls).toContain('app.exit 1');
    expect(error).toHaveBeenCalledWith('Keyport Connect could not start:', expect.any(Error));
  });
});

function window0(fake: FakeElectron): FakeWindow {
  const [window] = fake.windows;
  if (!window) throw new Error('no window');
  return window;
}
