// The contract over the browser host's WebSocket, one JSON text frame per message:
//   page → host   {id, method, argument?}        a call; id is a non-negative safe integer chosen by the page
//   host → page   {id, result}                   the Result of that call (always; a handler never throws)
//   host → page   {event, payload}               a backend event (onPrompt, onPromptClosed, ...)
//   page → host   {visibility: "visible"|"hidden"}  the page's document.visibilityState, when it changes:
//                                                the host sends a desktop notification only while no
//                                                window shows the app (session-notices.ts)
// Every incoming frame is checked here before it reaches a handler (invariant 3): anything that is not
// exactly that shape, names no contract method, or carries a prototype-polluting key anywhere is answered
// with INVALID_ARGUMENT for its id, or closes the socket (1008) when it has no usable id.
import { methodNames } from '../../preload/contract';
import type { ContractError, EventName, EventPayloads, MethodName, Result } from '../../preload/contract';

export interface Call {
  id: number;
  method: MethodName;
  argument: unknown;
}

export type Visibility = 'visible' | 'hidden';

export type Incoming =
  | { kind: 'call'; call: Call }
  | { kind: 'visibility'; visibility: Visibility }
  | { kind: 'invalid'; id: number; error: ContractError }
  /** No id to answer: the socket is closed with 1008 (policy violation). */
  | { kind: 'fatal'; reason: string };

const methods = new Set<string>(methodNames);
const allowedKeys = new Set(['id', 'method', 'argument']);
/** Keys that could reach an object's prototype if some code later merged the argument. */
const forbiddenKeys = new Set(['__proto__', 'constructor', 'prototype']);

export function invalid(message: string, fieldPath?: string): ContractError {
  return { code: 'INVALID_ARGUMENT', message, details: fieldPath === undefined ? {} : { fieldPath } };
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseIncoming(text: string): Incoming {
  let forbidden: string | undefined;
  let message: unknown;
  try {
    message = JSON.parse(text, function (key, value: unknown) {
      if (forbiddenKeys.has(key)) forbidden ??= key;
      return value;
    });
  } catch {
    return { kind: 'fatal', reason: 'Messages are JSON.' };
  }
  if (!isPlainRecord(message)) return { kind: 'fatal', reason: 'A message is a JSON object.' };
  if (Object.hasOwn(message, 'visibility')) return parseVisibility(message);
  const id = Object.hasOwn(message, 'id') ? message.id : undefined;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    return { kind: 'fatal', reason: 'A call has a numeric id.' };
  }
  if (forbidden !== undefined)
    return { kind: 'invalid', id, error: invalid(`Unexpected field "${forbidden}".`) };
  for (const key of Object.keys(message)) {
    if (!allowedKeys.has(key)) return { kind: 'invalid', id, error: invalid(`Unexpected field "${key}".`) };
  }
  const method = message.method;
  if (typeof method !== 'string' || !methods.has(method)) {
    return {
      kind: 'invalid',
      id,
      error: invalid(
        typeof method === 'string' ? `Unknown method "${method.slice(0, 64)}".` : 'A call names its method.',
      ),
    };
  }
  return { kind: 'call', call: { id, method: method as MethodName, argument: message.argument } };
}

/** Exactly {visibility: "visible" | "hidden"}; anything else has no id to answer, so it closes the socket. */
function parseVisibility(message: Record<string, unknown>): Incoming {
  const visibility = message.visibility;
  if (Object.keys(message).length !== 1 || (visibility !== 'visible' && visibility !== 'hidden')) {
    return { kind: 'fatal', reason: 'A visibility message is {"visibility": "visible" | "hidden"}.' };
  }
  return { kind: 'visibility', visibility };
}

export function replyFrame(id: number, result: Result<unknown>): string {
  return JSON.stringify({ id, result });
}

export function eventFrame<E extends EventName>(event: E, payload: EventPayloads[E]): string {
  return JSON.stringify({ event, payload });
}
