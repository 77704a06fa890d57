// main.ts against a recording double of the part of Electron it uses: the Electron binary cannot run here
// (requiring the real package starts a download), so `electron` is the one module this test replaces. The
// module body runs once as the bundle would run it; every other case calls startElectronHost() with a fresh
// double and a recording backend.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { methodNames } from '../../preload/contract';
import type { EventName, EventPayloads, HandlerTable, Result } from '../../preload/contract';
import { RENDERER_SECURITY_HEADERS } from '../csp';
import { APP_ENTRY_URL, appSchemePrivileges } from './app-protocol';
import { EVENT_CHANNEL, INVOKE_CHANNEL } from './ipc';
import type { InvokeSender, SenderFrame } from './ipc';
import type { ElectronApi, HostDeps } from './main';
import { applicationMenuTemplate } from './menu';
import { appPaths } from './paths';
import { appWindowOptions } from './window-options';

const electronDouble = vi.hoisted(() => {
  type Listener = (...args: never[]) => unknown;

  class Emitter {
    readonly listeners = new Map<string, Listener[]>();
    on(name: string, listener: Listener): this {
      this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
      return this;
    }
    once(name: string, listener: Listener): this {
      const once = (...args: never[]) => {
        this.listeners.set(
          name,
          (this.listeners.get(name) ?? []).filter((l) => l !== once),
        );
        return listener(...args);
      };
      return this.on(name, once);
    }
    emit(name: string, ...args: unknown[]): boolean {
      const listeners = this.listeners.get(name) ?? [];
      for (const listener of listeners) (listener as (...a: unknown[]) => unknown)(...args);
      return listeners.length > 0;
    }
  }

  class FakeWebContents extends Emitter {
    readonly sent: unknown[][] = [];
    destroyed = false;
    windowOpenHandler?: (details: { url: string }) => { action: string };
    readonly mainFrame = { url: 'app://keyport/index.html', parent: null };
    send(...args: unknown[]): void {
      this.sent.push(args);
    }
    isDestroyed(): boolean {
      return this.destroyed;
    }
    setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
      this.windowOpenHandler = handler;
    }
  }

  interface FakeOptions {
    lock?: boolean;
    isPackaged?: boolean;
  }

  function createFakeElectron({ lock = true, isPackaged = false }: FakeOptions = {}) {
    /** Every call, in order. */
    const calls: string[] = [];
    let isReady = false;
    let markReady = () => {};
    const readyPromise = new Promise<void>((resolve) => (markReady = resolve));
    const windows: FakeBrowserWindow[] = [];
    const ipcHandlers = new Map<string, (...args: unknown[]) => unknown>();
    const protocolHandlers = new Map<string, (request: Request) => Promise<Response>>();
    const privilegedSchemes: unknown[] = [];
    const opened: string[] = [];
    const menu: { current?: { template: unknown } } = {};

    const app = Object.assign(new Emitter(), {
      name: 'Keyport Connect',
      isPackaged,
      requestSingleInstanceLock() {
        calls.push('app.requestSingleInstanceLock');
        return lock;
      },
      enableSandbox() {
        calls.push('app.enableSandbox');
      },
      quit() {
        calls.push('app.quit');
      },
      exit(code: number) {
        calls.push(`app.exit ${code}`);
      },
      whenReady() {
        calls.push('app.whenReady');
        return readyPromise;
      },
      isReady: () => isReady,
      setAsDefaultProtocolClient(scheme: string) {
        calls.push(`app.setAsDefaultProtocolClient ${scheme}`);
        return true;
      },
    });

    class FakeBrowserWindow extends Emitter {
      readonly webContents = new FakeWebContents();
      readonly loaded: string[] = [];
      shown = false;
      minimized = false;
      restored = 0;
      focused = 0;
      constructor(readonly options: unknown) {
        super();
        calls.push('new BrowserWindow');
        windows.push(this);
        // Electron announces every WebContents it creates, the window's too.
        app.emit('web-contents-created', {}, this.webContents);
      }
      loadURL(url: string): Promise<void> {
        this.loaded.push(url);
        return Promise.resolve();
      }
      show(): void {
        this.shown = true;
      }
      isMinimized(): boolean {
        return this.minimized;
      }
      restore(): void {
        this.restored += 1;
      }
      focus(): void {
        this.focused += 1;
      }
      /** What Electron does when the window closes. */
      close(): void {
        this.webContents.destroyed = true;
        this.emit('closed');
      }
    }

    const policy: {
      permissionRequest?: (
        contents: unknown,
        permission: string,
        callback: (granted: boolean) => void,
      ) => void;
      permissionCheck?: (...args: unknown[]) => boolean;
      devicePermission?: (...args: unknown[]) => boolean;
      beforeRequest?: (details: { url: string }, callback: (response: { cancel?: boolean }) => void) => void;
    } = {};
    const defaultSession = {
      setPermissionRequestHandler(handler: typeof policy.permissionRequest) {
        calls.push('session.setPermissionRequestHandler');
        policy.permissionRequest = handler;
      },
      setPermissionCheckHandler(handler: typeof policy.permissionCheck) {
        calls.push('session.setPermissionCheckHandler');
        policy.permissionCheck = handler;
      },
      setDevicePermissionHandler(handler: typeof policy.devicePermission) {
        calls.push('session.setDevicePermissionHandler');
        policy.devicePermission = handler;
      },
      webRequest: {
        onBeforeRequest(...args: unknown[]) {
          calls.push('session.webRequest.onBeforeRequest');
          policy.beforeRequest = args.at(-1) as typeof policy.beforeRequest;
        },
      },
    };

    const api = {
      app,
      BrowserWindow: FakeBrowserWindow,
      protocol: {
        registerSchemesAsPrivileged(schemes: unknown[]) {
          calls.push('protocol.registerSchemesAsPrivileged');
          privilegedSchemes.push(...schemes);
        },
        handle(scheme: string, handler: (request: Request) => Promise<Response>) {
          calls.push(`protocol.handle ${scheme}`);
          protocolHandlers.set(scheme, handler);
        },
      },
      session: { defaultSession },
      ipcMain: {
        handle(channel: string, handler: (...args: unknown[]) => unknown) {
          calls.push(`ipcMain.handle ${channel}`);
          ipcHandlers.set(channel, handler);
        },
        removeHandler(channel: string) {
          calls.push(`ipcMain.removeHandler ${channel}`);
          ipcHandlers.delete(channel);
        },
      },
      Menu: {
        buildFromTemplate: (template: unknown) => ({ template }),
        setApplicationMenu(built: { template: unknown }) {
          calls.push('Menu.setApplicationMenu');
          menu.current = built;
        },
      },
      shell: {
        openExternal(url: string) {
          opened.push(url);
          return Promise.resolve();
        },
      },
    };

    return {
      api,
      app,
      calls,
      windows,
      ipcHandlers,
      protocolHandlers,
      privilegedSchemes,
      policy,
      opened,
      menu,
      FakeWebContents,
      /** Emits 'ready' (resolves whenReady) and lets main.ts's then() run. */
      async ready() {
        isReady = true;
        markReady();
        await new Promise((resolve) => setImmediate(resolve));
      },
    };
  }

  // What `import ... from 'electron'` gives main.ts: the current double, read at each access.
  const holder = { current: createFakeElectron({ lock: false }) };
  const module = {
    isKeyportTestDouble: true,
    get app() {
      return holder.current.api.app;
    },
    get BrowserWindow() {
      return holder.current.api.BrowserWindow;
    },
    get ipcMain() {
      return holder.current.api.ipcMain;
    },
    get Menu() {
      return holder.current.api.Menu;
    },
    get protocol() {
      return holder.current.api.protocol;
    },
    get session() {
      return holder.current.api.session;
    },
    get shell() {
      return holder.current.api.shell;
    },
  };
  return { createFakeElectron, holder, module };
});

vi.mock('electron', () => electronDouble.module);

type FakeElectron = ReturnType<typeof electronDouble.createFakeElectron>;
type FakeWindow = FakeElectron['windows'][number];

const { createFakeElectron } = electronDouble;
const preload = '/opt/keyport/dist/preload/preload.cjs';
const temporary: string[] = [];
let renderer: string;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-electron-main-'));
  temporary.push(dir);
  return dir;
}

beforeAll(() => {
  renderer = join(tempDir(), 'renderer');
  mkdirSync(renderer);
  writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>Keyport Connect</title>');
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

afterAll(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

/** Loaded modules from the real electron package (its index.js looks for, and downloads, the binary). */
function realElectronModules(): string[] {
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).filter((path) => path.includes(`${sep}node_modules${sep}electron${sep}`));
}

function recordingBackend() {
  const calls: { method: string; argument: unknown }[] = [];
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  const handlers = Object.fromEntries(
    methodNames.map((method) => [
      method,
      async (argument?: unknown) => {
        calls.push({ method, argument });
        return { ok: true, value: `${method} ran` };
      },
    ]),
  ) as unknown as HandlerTable;
  let closed = 0;
  /** The keyport:// links handed to the backend, in order. */
  const links: unknown[] = [];
  return {
    handlers,
    calls,
    links,
    async openDeepLink(link: unknown) {
      links.push(link);
      return { kind: 'refused', error: { code: 'INTERNAL', message: 'recorded', details: {} } } as const;
    },
    on(event: EventName, listener: (payload: never) => void) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (payload: unknown) => void);
      return () => void set.delete(listener as (payload: unknown) => void);
    },
    emit<E extends EventName>(event: E, payload: EventPayloads[E]) {
      for (const listener of listeners.get(event) ?? []) listener(payload);
    },
    listenerCount: () => [...listeners.values()].reduce((sum, set) => sum + set.size, 0),
    async close() {
      closed += 1;
    },
    get closed() {
      return closed;
    },
  };
}

interface StartOptions {
  lock?: boolean;
  isPackaged?: boolean;
  platform?: NodeJS.Platform;
  argv?: string[];
}

async function loadHost() {
  return import('./main');
}

async function start({
  lock = true,
  isPackaged = false,
  platform = 'linux',
  argv = ['/opt/keyport/keyport-connect'],
}: StartOptions = {}) {
  const { startElectronHost } = await loadHost();
  const fake = createFakeElectron({ lock, isPackaged });
  const backend = recordingBackend();
  let backendsCreated = 0;
  const deps: HostDeps = {
    paths: { renderer, preload },
    createBackend: () => {
      backendsCreated += 1;
      return backend;
    },
    platform,
    argv,
  };
  startElectronHost(fake.api as unknown as ElectronApi, deps);
  return { fake, backend, backendsCreated: () => backendsCreated };
}

async function startReady(options: StartOptions = {}) {
  const started = await start(options);
  await started.fake.ready();
  expect(started.fake.windows).toHaveLength(1);
  return { ...started, window: started.fake.windows[0] as FakeWindow };
}

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

  it('with the lock: runs the real backend under KEYPORT_HOME and answers app.info over IPC', async () => {
    const home = tempDir();
    vi.stubEnv('KEYPORT_HOME', home);
    vi.resetModules();
    const fake = createFakeElectron({ lock: true });
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

    fake.app.emit('will-quit');
    expect(fake.ipcHandlers.size).toBe(0);
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

    window.close();
    expect(backend.listenerCount()).toBe(0);
    backend.emit('onProfileChanged', payload);
    expect(window.webContents.sent).toHaveLength(1);

    // macOS: the dock icon reopens a window, which gets the events from then on.
    fake.app.emit('activate');
    expect(fake.windows).toHaveLength(2);
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

  it('on quit removes the IPC handler and closes the backend', async () => {
    const { fake, backend } = await startReady();
    expect(backend.closed).toBe(0);
    fake.app.emit('will-quit', { preventDefault: vi.fn() });
    expect(fake.ipcHandlers.size).toBe(0);
    expect(fake.calls).toContain(`ipcMain.removeHandler ${INVOKE_CHANNEL}`);
    expect(backend.closed).toBe(1);
  });

  it('quits when the last window closes, except on macOS', async () => {
    const linux = await startReady();
    linux.window.close();
    linux.fake.app.emit('window-all-closed');
    expect(linux.fake.calls).toContain('app.quit');

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
