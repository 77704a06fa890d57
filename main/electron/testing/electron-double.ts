// A recording double of the part of Electron the host uses (main.ts's ElectronApi). The Electron binary
// cannot run here (requiring the real package starts a download), so `electron` is the one module the host's
// tests replace: `vi.mock('electron', () => double.electronModule)`. It behaves as Electron documents where
// the host depends on it: a window's 'close' can be prevented, destroy() skips it, app.quit() asks
// 'before-quit', closes the windows (a prevented close cancels the quit) and then asks 'will-quit'.
// Nothing here imports electron or vitest.

type Listener = (...args: never[]) => unknown;

export class Emitter {
  readonly listeners = new Map<string, Listener[]>();
  on(name: string, listener: Listener): this {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
    return this;
  }
  once(name: string, listener: Listener): this {
    const once = (...args: never[]) => {
      this.removeListener(name, once);
      return listener(...args);
    };
    return this.on(name, once);
  }
  removeListener(name: string, listener: Listener): this {
    this.listeners.set(
      name,
      (this.listeners.get(name) ?? []).filter((l) => l !== listener),
    );
    return this;
  }
  emit(name: string, ...args: unknown[]): boolean {
    const listeners = this.listeners.get(name) ?? [];
    for (const listener of listeners) (listener as (...a: unknown[]) => unknown)(...args);
    return listeners.length > 0;
  }
  listenerCount(name: string): number {
    return this.listeners.get(name)?.length ?? 0;
  }
}

/** An event whose default (closing, quitting) a listener may prevent. */
export function preventableEvent() {
  return {
    defaultPrevented: false,
    preventDefault() {
      this.defaultPrevented = true;
    },
  };
}

export class FakeWebContents extends Emitter {
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

/** A menu as the double builds it: the template it was given. */
export interface FakeMenu {
  template: FakeMenuItem[];
}
export interface FakeMenuItem {
  label?: string;
  type?: string;
  role?: string;
  enabled?: boolean;
  click?: () => void;
  submenu?: FakeMenuItem[];
}

export interface FakeOptions {
  lock?: boolean;
  isPackaged?: boolean;
  /** app.getPath('userData'); reading it without one throws, as a host that should not need it. */
  userData?: string;
  /** Notification.isSupported() (false: a Linux desktop without a notification server). */
  notificationsSupported?: boolean;
  /** The Tray constructor throws (a desktop where Electron cannot make one). */
  trayFails?: boolean;
}

export function createFakeElectron({
  lock = true,
  isPackaged = false,
  userData,
  notificationsSupported = true,
  trayFails = false,
}: FakeOptions = {}) {
  /** Every call, in order. */
  const calls: string[] = [];
  let isReady = false;
  let markReady = () => {};
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve));
  const windows: FakeBrowserWindow[] = [];
  const trays: FakeTray[] = [];
  const notifications: FakeNotification[] = [];
  const ipcHandlers = new Map<string, (...args: unknown[]) => unknown>();
  const protocolHandlers = new Map<string, (request: Request) => Promise<Response>>();
  const privilegedSchemes: unknown[] = [];
  const opened: string[] = [];
  const menu: { current?: FakeMenu } = {};
  /** Set once a quit went through 'will-quit' unprevented: the process would end here. */
  const exit = { quitted: false };

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
      const beforeQuit = preventableEvent();
      app.emit('before-quit', beforeQuit);
      if (beforeQuit.defaultPrevented) return;
      for (const window of [...windows]) {
        if (window.destroyed) continue;
        window.close();
        // A window that refused to close cancels the quit.
        if (!window.destroyed) return;
      }
      const willQuit = preventableEvent();
      app.emit('will-quit', willQuit);
      if (!willQuit.defaultPrevented) exit.quitted = true;
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
    getPath(name: string) {
      if (name !== 'userData' || userData === undefined) throw new Error(`no ${name} path in this double`);
      return userData;
    },
  });

  class FakeBrowserWindow extends Emitter {
    readonly webContents = new FakeWebContents();
    readonly loaded: string[] = [];
    shown = false;
    visible = false;
    minimized = false;
    destroyed = false;
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
      this.visible = true;
    }
    hide(): void {
      this.visible = false;
    }
    isVisible(): boolean {
      return this.visible;
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
    isDestroyed(): boolean {
      return this.destroyed;
    }
    /** What the close button does: 'close', which a listener may prevent, then 'closed'. */
    close(): void {
      if (this.destroyed) return;
      const event = preventableEvent();
      this.emit('close', event);
      if (!event.defaultPrevented) this.destroy();
    }
    /** Closes without asking ('closed' only), as Electron's destroy() does. */
    destroy(): void {
      if (this.destroyed) return;
      this.destroyed = true;
      this.visible = false;
      this.webContents.destroyed = true;
      this.emit('closed');
    }
  }

  class FakeTray extends Emitter {
    toolTip = '';
    contextMenu: FakeMenu | null = null;
    destroyed = false;
    constructor(readonly image: unknown) {
      super();
      calls.push('new Tray');
      if (trayFails) throw new Error('no tray on this desktop');
      trays.push(this);
    }
    setToolTip(text: string): void {
      this.toolTip = text;
    }
    setContextMenu(built: FakeMenu | null): void {
      this.contextMenu = built;
    }
    destroy(): void {
      this.destroyed = true;
    }
    isDestroyed(): boolean {
      return this.destroyed;
    }
  }

  class FakeNotification extends Emitter {
    static isSupported(): boolean {
      return notificationsSupported;
    }
    shown = 0;
    constructor(readonly options: { title?: string; body?: string; silent?: boolean }) {
      super();
      notifications.push(this);
    }
    show(): void {
      this.shown += 1;
    }
    close(): void {
      this.emit('close', preventableEvent());
    }
    /** What a click on the shown notification does. */
    click(): void {
      this.emit('click', preventableEvent());
    }
  }

  const policy: {
    permissionRequest?: (contents: unknown, permission: string, callback: (granted: boolean) => void) => void;
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
    Tray: FakeTray,
    Notification: FakeNotification,
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
      buildFromTemplate: (template: FakeMenuItem[]): FakeMenu => ({ template }),
      setApplicationMenu(built: FakeMenu) {
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
    trays,
    notifications,
    ipcHandlers,
    protocolHandlers,
    privilegedSchemes,
    policy,
    opened,
    menu,
    exit,
    FakeWebContents,
    /** Emits 'ready' (resolves whenReady) and lets main.ts's then() run. */
    async ready() {
      isReady = true;
      markReady();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

export type FakeElectron = ReturnType<typeof createFakeElectron>;
export type FakeWindow = FakeElectron['windows'][number];
export type FakeTrayIcon = FakeElectron['trays'][number];
export type FakeNotice = FakeElectron['notifications'][number];

/** What `import ... from 'electron'` gives main.ts: the current double, read at each access. */
export const holder = { current: createFakeElectron({ lock: false }) };

export const electronModule = {
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
  get Notification() {
    return holder.current.api.Notification;
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
  get Tray() {
    return holder.current.api.Tray;
  },
};
