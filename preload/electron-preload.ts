// The Electron preload (sandboxed; bundled to dist/preload/preload.cjs). It exposes window.keyport, the
// contract and nothing else: never ipcRenderer, never Electron's event object. Calls travel on one invoke
// channel; events arrive on one event channel, are checked against the contract's event names and reach
// the listeners with their payload only.
import { contextBridge, ipcRenderer } from 'electron';
import { eventNames } from './contract-names';
import type { EventName, Result } from './contract';
import { buildKeyportApi } from './expose';
import type { ContractTransport } from './expose';

// Spelled out again in main/electron/ipc.ts (the preload may not import main/); a test ties the two.
const INVOKE_CHANNEL = 'keyport:invoke';
const EVENT_CHANNEL = 'keyport:event';

const listeners = new Map<EventName, Set<(payload: unknown) => void>>();

function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && (eventNames as readonly string[]).includes(name);
}

ipcRenderer.on(EVENT_CHANNEL, (_event, name: unknown, payload: unknown) => {
  if (!isEventName(name)) return;
  for (const listener of [...(listeners.get(name) ?? [])]) {
    try {
      listener(payload);
    } catch (error) {
      console.error(`A ${name} listener failed:`, error);
    }
  }
});

const transport: ContractTransport = {
  async invoke(method, argument) {
    try {
      return (await ipcRenderer.invoke(INVOKE_CHANNEL, method, argument)) as Result<unknown>;
    } catch {
      return {
        ok: false,
        error: {
          code: 'INTERNAL',
          message: 'Keyport Connect did not answer. Restart it and try again.',
          details: {},
        },
      };
    }
  },
  subscribe(event, listener) {
    let subscribed = listeners.get(event);
    if (!subscribed) listeners.set(event, (subscribed = new Set()));
    // One entry per subscription, so subscribing the same function twice needs two unsubscribes.
    const entry = (payload: unknown) => listener(payload as Parameters<typeof listener>[0]);
    subscribed.add(entry);
    return () => {
      subscribed.delete(entry);
    };
  },
};

contextBridge.exposeInMainWorld('keyport', buildKeyportApi(transport));
