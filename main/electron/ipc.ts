// The contract over Electron IPC (invariant 3). One invoke channel carries every method and one event
// channel every event. Each call is checked on arrival, before anything else: the sender must be the top
// frame of a page on app://keyport (a subframe, another origin or a frame that is gone is refused), and the
// method must be one the contract names. The handler then validates the argument itself.
import { eventNames, methodNames } from '../../preload/contract';
import type {
  ContractError,
  EventName,
  EventPayloads,
  HandlerTable,
  MethodName,
  Result,
  Unsubscribe,
} from '../../preload/contract';
import { isAppUrl } from './app-protocol';

/** Also spelled out in preload/electron-preload.ts (the preload may not import main/); preload.test.ts ties them. */
export const INVOKE_CHANNEL = 'keyport:invoke';
export const EVENT_CHANNEL = 'keyport:event';

/** The parts of Electron's WebFrameMain the check reads. */
export interface SenderFrame {
  readonly url: string;
  readonly parent: SenderFrame | null;
  readonly detached?: boolean;
}

/** The parts of Electron's IpcMainInvokeEvent the check reads. */
export interface InvokeSender {
  readonly senderFrame: SenderFrame | null;
  readonly sender: { readonly mainFrame: SenderFrame };
}

export type SenderCheck = { trusted: true } | { trusted: false; reason: string };

export function validateSender(event: InvokeSender): SenderCheck {
  const frame = event.senderFrame;
  if (!frame || frame.detached) return { trusted: false, reason: 'the sending frame is gone' };
  if (frame.parent !== null || frame !== event.sender.mainFrame) {
    return { trusted: false, reason: 'the sender is not the top frame' };
  }
  if (!isAppUrl(frame.url)) return { trusted: false, reason: 'the sender is not on the app origin' };
  return { trusted: true };
}

function isMethodName(method: unknown): method is MethodName {
  return typeof method === 'string' && (methodNames as readonly string[]).includes(method);
}

function failure(code: ContractError['code'], message: string, details: ContractError['details'] = {}) {
  return { ok: false, error: { code, message, details } } as const;
}

export type InvokeHandler = (
  event: InvokeSender,
  method: unknown,
  argument: unknown,
) => Promise<Result<unknown>>;

/** The `ipcMain.handle(INVOKE_CHANNEL, ...)` listener. It never throws: every outcome is a Result. */
export function createInvokeHandler(handlers: HandlerTable): InvokeHandler {
  return async (event, method, argument) => {
    const sender = validateSender(event);
    if (!sender.trusted) {
      return failure('ACCESS_DENIED', `Refused a call to Keyport: ${sender.reason}.`);
    }
    if (!isMethodName(method)) {
      return failure('INVALID_ARGUMENT', 'Keyport has no such method.', { fieldPath: 'method' });
    }
    try {
      return await handlers[method](argument);
    } catch {
      // Handlers return Results; a throw is a bug, and its message stays in main.
      return failure('INTERNAL', 'Keyport failed unexpectedly. Try again, or restart Keyport Connect.');
    }
  };
}

export interface EventSource {
  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): Unsubscribe;
}

/** The app window's WebContents: `send` reaches its main frame only. */
export interface EventSink {
  send(channel: string, ...args: unknown[]): void;
  isDestroyed(): boolean;
}

/** Forwards every backend event to one window; returns the function that stops it. */
export function forwardEvents(source: EventSource, sink: EventSink): Unsubscribe {
  const stops = eventNames.map((name) =>
    source.on(name, (payload) => {
      if (!sink.isDestroyed()) sink.send(EVENT_CHANNEL, name, payload);
    }),
  );
  return () => {
    for (const stop of stops) stop();
  };
}
