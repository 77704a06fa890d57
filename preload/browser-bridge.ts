// window.keyport in the browser host (main/browser/): the same contract object the Electron preload
// exposes (expose.ts), carried over a WebSocket to the host on the page's own origin. Built by
// build-app.mjs into dist/preload/keyport-bridge.js, a classic script the host injects before the
// renderer's module script, so window.keyport exists before any renderer code runs.
//
// Launch: the window opens at http://127.0.0.1:PORT/#launch=TOKEN. The token is read and the fragment
// removed from the address at once (history.replaceState), then posted to /session, which answers with a
// session. The session is kept in sessionStorage under one key and offered on the WebSocket upgrade as a
// subprotocol (`keyport.v1`, `keyport-session.SESSION`); the host accepts the socket only for a session it
// issued. There is no cookie: every port of 127.0.0.1 shares one cookie jar, so a cookie would reach
// any other local server this browser visits. sessionStorage is per origin, port included, and per tab,
// and survives a reload of the tab, which then connects with the stored session alone. Without a token
// and without a stored session nothing connects. Whatever fails (a spent token, a refused session, the
// app gone), every call then resolves UNAVAILABLE: nothing here throws at the renderer. A session the
// host refuses is removed from sessionStorage. Fits the app's CSP: one same-origin fetch and one
// same-origin WebSocket (connect-src 'self' matches ws: on the same host in CSP 3).
import { eventNames } from './contract-names';
import type { ContractError, EventName, MethodName, Result, Unsubscribe } from './contract';
import { buildKeyportApi } from './expose';
import type { ContractTransport } from './expose';

const SESSION_PATH = '/session';
const BRIDGE_PATH = '/bridge';
/** main/browser/request-checks.ts: BRIDGE_PROTOCOL, SESSION_PROTOCOL_PREFIX. */
const BRIDGE_PROTOCOL = 'keyport.v1';
const SESSION_PROTOCOL_PREFIX = 'keyport-session.';
/** main/browser/bridge-server.ts: the close code for an expired or revoked session. */
const SESSION_ENDED = 4001;
/** The one sessionStorage key this script uses. */
const SESSION_KEY = 'keyport.session';
/** 32 bytes in base64url, as the host issues them. */
const SESSION_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/**
 * A stored session is tried once more, after a pause, before it is given up: right after a reload the
 * host may not yet have seen the old page's socket close, and refuses a second one for the session.
 */
const RETRY_DELAY_MS = 300;

/** Why a call cannot reach the app: this window never connected to it, or the connection ended. */
function unavailable(connection: 'NOT_CONNECTED' | 'LOST'): Result<never> {
  return {
    ok: false,
    error: {
      code: 'UNAVAILABLE',
      message:
        connection === 'NOT_CONNECTED'
          ? 'This window is not connected to Keyport Connect: its one-time link was already used or has expired.'
          : 'This window lost its connection to Keyport Connect.',
      details: { appConnection: connection },
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

function storedSession(): string | undefined {
  try {
    const value = sessionStorage.getItem(SESSION_KEY);
    if (value === null) return undefined;
    if (SESSION_PATTERN.test(value)) return value;
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // Storage off (a browser setting): the session lives as long as this page.
  }
  return undefined;
}

function storeSession(session: string): void {
  try {
    sessionStorage.setItem(SESSION_KEY, session);
  } catch {
    // As above.
  }
}

function forgetSession(session: string): void {
  try {
    if (sessionStorage.getItem(SESSION_KEY) === session) sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // As above.
  }
}

/** Spends the launch token: the session it becomes, or undefined when the host refuses it. */
async function exchangeLaunchToken(token: string): Promise<string | undefined> {
  try {
    const response = await fetch(SESSION_PATH, {
      method: 'POST',
      // Nothing to send or receive but the body: the host neither reads nor sets cookies.
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    if (!response.ok) {
      // A refused token (spent, expired) is not the end: a stored session may still open the bridge.
      console.warn(`Keyport Connect: the launch token was refused (${response.status}).`);
      return undefined;
    }
    const body: unknown = await response.json();
    const session = isRecord(body) ? body.session : undefined;
    if (typeof session === 'string' && SESSION_PATTERN.test(session)) return session;
    console.warn('Keyport Connect: the app answered the launch token with no session.');
  } catch {
    console.warn('Keyport Connect: the launch token could not be sent.');
  }
  return undefined;
}

type Listener = (payload: unknown) => void;

function createSocketTransport(launchToken: string | undefined): ContractTransport {
  const knownEvents = new Set<string>(eventNames);
  const listeners = new Map<EventName, Set<Listener>>();
  const pending = new Map<number, (result: Result<unknown>) => void>();
  const queued: string[] = [];
  let state: 'connecting' | 'open' | 'closed' = 'connecting';
  /** Whether a socket to the app ever opened: a window that never connected says so, not "lost". */
  let everOpened = false;
  let socket: WebSocket | undefined;
  let nextId = 1;

  /** The connection is gone for good: every call in flight, and every later one, is UNAVAILABLE. */
  function fail(): void {
    if (state === 'closed') return;
    state = 'closed';
    queued.length = 0;
    const waiting = [...pending.values()];
    pending.clear();
    for (const resolve of waiting) resolve(unavailable(connectionLost()));
  }

  function connectionLost(): 'NOT_CONNECTED' | 'LOST' {
    return everOpened ? 'LOST' : 'NOT_CONNECTED';
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

  /** Opens the socket for `session`; `retries` more attempts if the upgrade is refused. */
  function open(session: string, retries: number): void {
    if (state === 'closed') return;
    const ws = new WebSocket(`ws://${location.host}${BRIDGE_PATH}`, [
      BRIDGE_PROTOCOL,
      SESSION_PROTOCOL_PREFIX + session,
    ]);
    socket = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      if (state !== 'connecting') return;
      opened = true;
      everOpened = true;
      state = 'open';
      sendVisibility();
      for (const frame of queued.splice(0)) send(frame);
    });
    ws.addEventListener('message', receive);
    // A failed or ended socket always fires close (after error, if any); only close is acted on.
    ws.addEventListener('close', (event: CloseEvent) => {
      if (!opened && retries > 0 && state === 'connecting') {
        setTimeout(() => {
          try {
            open(session, retries - 1);
          } catch {
            fail();
          }
        }, RETRY_DELAY_MS);
        return;
      }
      // Never opened (refused, or the app is gone) or ended by the host: the session is of no more use.
      if (!opened || event.code === SESSION_ENDED) forgetSession(session);
      fail();
    });
  }

  /** Tells the host whether this page is shown: it notifies on the desktop only when no window is. */
  function sendVisibility(): void {
    if (state === 'open')
      send(JSON.stringify({ visibility: document.visibilityState === 'hidden' ? 'hidden' : 'visible' }));
  }
  document.addEventListener('visibilitychange', sendVisibility);

  async function connect(): Promise<void> {
    const fresh = launchToken === undefined ? undefined : await exchangeLaunchToken(launchToken);
    if (fresh !== undefined) storeSession(fresh);
    const session = fresh ?? storedSession();
    // No token that worked and no session from earlier in this tab: there is nothing to connect with.
    if (session === undefined) {
      fail();
      return;
    }
    open(session, 1);
  }
  connect().catch(fail);

  return {
    invoke(method: MethodName, argument: unknown): Promise<Result<unknown>> {
      if (state === 'closed') return Promise.resolve(unavailable(connectionLost()));
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
