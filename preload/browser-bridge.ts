// window.keyport in the browser host (main/browser/): the same contract object the Electron preload
// exposes (expose.ts), carried over a WebSocket to the host on the page's own origin. Built by
// build-app.mjs into dist/preload/keyport-bridge.js, a classic script the host injects before the
// renderer's module script, so window.keyport exists before any renderer code runs.
//
// Launch: the window opens at http://127.0.0.1:PORT/#launch=TOKEN. The token is read and the fragment
// removed from the address at once (history.replaceState), then posted to /session, which answers with an
// HttpOnly session cookie; the WebSocket at /bridge is accepted only with that cookie. A reload has no
// fragment and connects with the cookie alone. Whatever fails (a spent token, no cookie, the app gone),
// every call then resolves UNAVAILABLE: nothing here throws at the renderer. Fits the app's CSP: one
// same-origin fetch and one same-origin WebSocket (connect-src 'self' matches ws: on the same host in CSP 3).
import { eventNames } from './contract-names';
import type { ContractError, EventName, MethodName, Result, Unsubscribe } from './contract';
import { buildKeyportApi } from './expose';
import type { ContractTransport } from './expose';

const SESSION_PATH = '/session';
const BRIDGE_PATH = '/bridge';

function unavailable(): Result<never> {
  return {
    ok: false,
    error: {
      code: 'UNAVAILABLE',
      message: 'Keyport Connect lost its connection to the app. Restart it.',
      details: {},
    },
  };
}

function unsendable(): Result<never> {
  const error: ContractError = {
    code: 'INVALID_ARGUMENT',
    message: 'That argument cannot be sent to the app.',
    details: { fieldPath: 'argument' },
  };
  return { ok: false, error };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isResult(value: unknown): value is Result<unknown> {
  return (
    isRecord(value) &&
    ((value.ok === true && 'value' in value) || (value.ok === false && isRecord(value.error)))
  );
}

/** The launch token in `#launch=TOKEN`, if any; the fragment leaves the address bar and history at once. */
function takeLaunchToken(): string | undefined {
  const match = /^#(?:.*&)?launch=([^&]*)/.exec(location.hash);
  if (!match) return undefined;
  history.replaceState(history.state, '', location.pathname + location.search);
  try {
    return decodeURIComponent(match[1] ?? '');
  } catch {
    return undefined;
  }
}

async function exchangeLaunchToken(token: string): Promise<void> {
  try {
    const response = await fetch(SESSION_PATH, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    // A refused token (spent, expired) is not the end: a cookie from earlier may still open the bridge.
    if (!response.ok) console.warn(`Keyport Connect: the launch token was refused (${response.status}).`);
  } catch {
    console.warn('Keyport Connect: the launch token could not be sent.');
  }
}

type Listener = (payload: unknown) => void;

function createSocketTransport(launchToken: string | undefined): ContractTransport {
  const knownEvents = new Set<string>(eventNames);
  const listeners = new Map<EventName, Set<Listener>>();
  const pending = new Map<number, (result: Result<unknown>) => void>();
  const queued: string[] = [];
  let state: 'connecting' | 'open' | 'closed' = 'connecting';
  let socket: WebSocket | undefined;
  let nextId = 1;

  /** The connection is gone for good: every call in flight, and every later one, is UNAVAILABLE. */
  function fail(): void {
    if (state === 'closed') return;
    state = 'closed';
    queued.length = 0;
    const waiting = [...pending.values()];
    pending.clear();
    for (const resolve of waiting) resolve(unavailable());
  }

  function send(frame: string): void {
    try {
      socket?.send(frame);
    } catch {
      fail();
    }
  }

  function receive(event: MessageEvent): void {
    if (typeof event.data !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!isRecord(message)) return;
    if (typeof message.id === 'number') {
      const resolve = pending.get(message.id);
      if (!resolve || !isResult(message.result)) return;
      pending.delete(message.id);
      resolve(message.result);
      return;
    }
    if (typeof message.event !== 'string' || !knownEvents.has(message.event)) return;
    for (const listener of [...(listeners.get(message.event as EventName) ?? [])]) {
      try {
        listener(message.payload);
      } catch (error) {
        // One listener's bug must not stop the others; it still shows in the console.
        reportError(error);
      }
    }
  }

  async function connect(): Promise<void> {
    if (launchToken !== undefined) await exchangeLaunchToken(launchToken);
    if (state === 'closed') return;
    const ws = new WebSocket(`ws://${location.host}${BRIDGE_PATH}`);
    socket = ws;
    ws.addEventListener('open', () => {
      if (state !== 'connecting') return;
      state = 'open';
      for (const frame of queued.splice(0)) send(frame);
    });
    ws.addEventListener('message', receive);
    ws.addEventListener('close', fail);
    ws.addEventListener('error', fail);
  }
  connect().catch(fail);

  return {
    invoke(method: MethodName, argument: unknown): Promise<Result<unknown>> {
      if (state === 'closed') return Promise.resolve(unavailable());
      const id = nextId++;
      let frame: string;
      try {
        frame = JSON.stringify({ id, method, argument });
      } catch {
        return Promise.resolve(unsendable());
      }
      return new Promise((resolve) => {
        pending.set(id, resolve);
        if (state === 'open') send(frame);
        else queued.push(frame);
      });
    },
    subscribe(event, listener): Unsubscribe {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      // A wrapper per subscription, so subscribing one function twice needs two unsubscribes.
      const entry: Listener = (payload) => listener(payload as never);
      set.add(entry);
      return () => void set.delete(entry);
    },
  };
}

// Loaded once per page; a second copy (a mistake) leaves the first in place.
if (!Object.hasOwn(window, 'keyport')) {
  Object.defineProperty(window, 'keyport', {
    value: buildKeyportApi(createSocketTransport(takeLaunchToken())),
    enumerable: true,
    writable: false,
    configurable: false,
  });
}
