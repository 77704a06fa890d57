// The Electron preload, bundled the way build-app.mjs bundles it (one CommonJS file, electron external) and
// run the way a sandboxed preload runs: a module whose require knows only 'electron', here a fake one. So
// the real electron package is never loaded, and the bundle is shown to be self-contained.
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { build } from 'vite';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { eventNames, methodNames } from '../../preload/contract';
import type { KeyportApi } from '../../preload/contract';
import { EVENT_CHANNEL, INVOKE_CHANNEL } from './ipc';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function bundlePreload(): Promise<string> {
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    root,
    build: {
      write: false,
      minify: false,
      emptyOutDir: false,
      lib: { entry: 'preload/electron-preload.ts', formats: ['cjs'], fileName: () => 'preload.cjs' },
      rollupOptions: { external: ['electron'] },
    },
  });
  for (const output of Array.isArray(result) ? result : [result]) {
    if (!('output' in output)) continue;
    for (const chunk of output.output) if (chunk.type === 'chunk' && chunk.isEntry) return chunk.code;
  }
  throw new Error('Vite produced no preload chunk.');
}

type Listener = (event: unknown, ...args: unknown[]) => void;

class FakeIpcRenderer {
  readonly invocations: unknown[][] = [];
  readonly listeners = new Map<string, Listener[]>();
  answer: (...args: unknown[]) => Promise<unknown> = async (_channel, method) => ({
    ok: true,
    value: `${String(method)} answered`,
  });

  invoke(channel: string, ...args: unknown[]): Promise<unknown> {
    this.invocations.push([channel, ...args]);
    return this.answer(channel, ...args);
  }

  on(channel: string, listener: Listener): this {
    this.listeners.set(channel, [...(this.listeners.get(channel) ?? []), listener]);
    return this;
  }

  /** What main's webContents.send(channel, ...args) looks like on this side: Electron's event first. */
  deliver(channel: string, ...args: unknown[]): void {
    const electronEvent = { sender: this, senderId: 0, ports: [] };
    for (const listener of this.listeners.get(channel) ?? []) listener(electronEvent, ...args);
  }
}

let code: string;

beforeAll(async () => {
  code = await bundlePreload();
}, 180_000);

function loadPreload() {
  const ipcRenderer = new FakeIpcRenderer();
  const exposed = new Map<string, unknown>();
  const required: string[] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
    ipcRenderer,
  };
  const module = { exports: {} };
  const wrapper = runInNewContext(
    `(function (exports, require, module) {\n${code}\n})`,
    { console },
    {
      filename: 'preload.cjs',
    },
  ) as (exports: unknown, require: (id: string) => unknown, module: unknown) => void;
  wrapper(
    module.exports,
    (id) => {
      required.push(id);
      if (id === 'electron') return electron;
      throw new Error(`A sandboxed preload cannot require ${id}.`);
    },
    module,
  );
  return { ipcRenderer, exposed, required, api: exposed.get('keyport') as KeyportApi };
}

describe('the Electron preload', () => {
  it('requires nothing but electron, and exposes window.keyport only', () => {
    const { required, exposed } = loadPreload();
    expect([...new Set(required)]).toEqual(['electron']);
    expect([...exposed.keys()]).toEqual(['keyport']);
  });

  it('exposes exactly the contract: one function per method, one subscription per event', () => {
    const { api } = loadPreload();
    const namespaces = [...new Set(methodNames.map((method) => method.slice(0, method.indexOf('.'))))];
    expect(Object.keys(api).sort()).toEqual([...namespaces, ...eventNames].sort());
    for (const method of methodNames) {
      const [namespace, name] = method.split('.') as [keyof KeyportApi, string];
      expect(typeof (api[namespace] as unknown as Record<string, unknown>)[name], method).toBe('function');
    }
    for (const namespace of namespaces) {
      const members = Object.keys(api[namespace as keyof KeyportApi] as object);
      expect(members.sort()).toEqual(
        methodNames
          .filter((m) => m.startsWith(`${namespace}.`))
          .map((m) => m.slice(namespace.length + 1))
          .sort(),
      );
    }
    expect(Object.isFrozen(api)).toBe(true);
  });

  it('never hands out ipcRenderer or anything of it', () => {
    const { api, ipcRenderer } = loadPreload();
    const seen = new Set<unknown>();
    const walk = (value: unknown) => {
      if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value))
        return;
      seen.add(value);
      expect(value).not.toBe(ipcRenderer);
      expect([ipcRenderer.invoke, ipcRenderer.on, ipcRenderer.deliver]).not.toContain(value);
      for (const key of Object.keys(value)) walk((value as Record<string, unknown>)[key]);
    };
    walk(api);
  });

  it('invokes a method on the invoke channel with its argument, and returns main’s Result', async () => {
    const { api, ipcRenderer } = loadPreload();
    await expect(api.clusters.list()).resolves.toEqual({ ok: true, value: 'clusters.list answered' });
    const login = { address: 'keyport.example:3025', user: 'alice', password: 'pw' };
    await expect(api.auth.login(login)).resolves.toEqual({ ok: true, value: 'auth.login answered' });
    expect(ipcRenderer.invocations).toEqual([
      [INVOKE_CHANNEL, 'clusters.list', undefined],
      [INVOKE_CHANNEL, 'auth.login', login],
    ]);
  });

  it('turns a failed invoke into an INTERNAL Result instead of a rejection', async () => {
    const { api, ipcRenderer } = loadPreload();
    ipcRenderer.answer = () => Promise.reject(new Error("Error invoking remote method 'keyport:invoke'"));
    await expect(api.app.info()).resolves.toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
  });

  it('listens once on the event channel and hands listeners the payload only', () => {
    const { api, ipcRenderer } = loadPreload();
    expect([...ipcRenderer.listeners.keys()]).toEqual([EVENT_CHANNEL]);
    expect(ipcRenderer.listeners.get(EVENT_CHANNEL)).toHaveLength(1);
    const onPrompt = vi.fn();
    const onClosed = vi.fn();
    api.onPrompt(onPrompt);
    api.onPromptClosed(onClosed);
    const prompt = { id: 'p1', kind: 'tapKey', message: 'Touch your security key.' };
    ipcRenderer.deliver(EVENT_CHANNEL, 'onPrompt', prompt);
    expect(onPrompt.mock.calls).toEqual([[prompt]]);
    expect(onClosed).not.toHaveBeenCalled();
    expect(ipcRenderer.listeners.get(EVENT_CHANNEL)).toHaveLength(1);
  });

  it('drops events whose name the contract does not know', () => {
    const { api, ipcRenderer } = loadPreload();
    const listener = vi.fn();
    api.onPrompt(listener);
    for (const name of ['onSecret', '__proto__', 'constructor', 'toString', 42, null, undefined]) {
      expect(() => ipcRenderer.deliver(EVENT_CHANNEL, name, { id: 'x' })).not.toThrow();
    }
    ipcRenderer.deliver('some-other-channel', 'onPrompt', { id: 'x' });
    expect(listener).not.toHaveBeenCalled();
  });

  it('unsubscribes, one subscription at a time', () => {
    const { api, ipcRenderer } = loadPreload();
    const listener = vi.fn();
    const other = vi.fn();
    const first = api.onProfileChanged(listener);
    const second = api.onProfileChanged(listener);
    api.onProfileChanged(other);
    const payload = { address: 'keyport.example:3025', profile: null };
    ipcRenderer.deliver(EVENT_CHANNEL, 'onProfileChanged', payload);
    expect(listener).toHaveBeenCalledTimes(2);
    first();
    ipcRenderer.deliver(EVENT_CHANNEL, 'onProfileChanged', payload);
    expect(listener).toHaveBeenCalledTimes(3);
    second();
    second();
    ipcRenderer.deliver(EVENT_CHANNEL, 'onProfileChanged', payload);
    expect(listener).toHaveBeenCalledTimes(3);
    expect(other).toHaveBeenCalledTimes(3);
  });

  it('keeps delivering to other listeners when one throws', () => {
    const { api, ipcRenderer } = loadPreload();
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const after = vi.fn();
    api.onPromptClosed(() => {
      throw new Error('renderer bug');
    });
    api.onPromptClosed(after);
    ipcRenderer.deliver(EVENT_CHANNEL, 'onPromptClosed', { id: 'p1', reason: 'cancelled' });
    expect(after).toHaveBeenCalledOnce();
    expect(error).toHaveBeenCalled();
    error.mockRestore();
  });

  it('refuses a listener that is not a function', () => {
    const { api } = loadPreload();
    // The error comes from the preload's own realm, so match its message rather than its class.
    expect(() => api.onPrompt('alert(1)' as unknown as () => void)).toThrow(/takes a function/);
  });
});
