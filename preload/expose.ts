// Builds window.keyport from a transport: the same object whether the contract travels over Electron IPC
// (electron-preload.ts) or the browser host's WebSocket (browser-bridge.ts). One function per method,
// namespaced as the contract names them; events return an unsubscribe function and hand the listener the
// payload only (never a transport's event object).
import { eventNames, methodNames } from './contract-names';
import type { EventName, EventPayloads, KeyportApi, MethodName, Result, Unsubscribe } from './contract';

export interface ContractTransport {
  invoke(method: MethodName, argument: unknown): Promise<Result<unknown>>;
  subscribe<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): Unsubscribe;
}

export function buildKeyportApi(transport: ContractTransport): KeyportApi {
  const api: Record<string, unknown> = {};
  for (const method of methodNames) {
    const [namespace, name] = method.split('.') as [string, string];
    const target = (api[namespace] ??= {}) as Record<string, unknown>;
    target[name] = (argument?: unknown) => transport.invoke(method, argument);
  }
  for (const event of eventNames) {
    api[event] = (listener: unknown) => {
      if (typeof listener !== 'function') throw new TypeError(`${event} takes a function.`);
      return transport.subscribe(event, (payload) => (listener as (p: unknown) => void)(payload));
    };
  }
  for (const value of Object.values(api)) if (typeof value === 'object') Object.freeze(value);
  return Object.freeze(api) as KeyportApi;
}
