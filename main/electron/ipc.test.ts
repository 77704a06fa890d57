import { describe, expect, it, vi } from 'vitest';
import { eventNames, methodNames } from '../../preload/contract';
import type { EventName, EventPayloads, HandlerTable, Unsubscribe } from '../../preload/contract';
import { createInvokeHandler, EVENT_CHANNEL, forwardEvents, INVOKE_CHANNEL, validateSender } from './ipc';
import type { InvokeSender, SenderFrame } from './ipc';

interface Frame {
  url: string;
  parent: Frame | null;
  detached?: boolean;
}

function topFrame(url = 'app://keyport/index.html'): Frame {
  return { url, parent: null };
}

function senderFor(frame: Frame | null, mainFrame: Frame = frame ?? topFrame()): InvokeSender {
  return { senderFrame: frame, sender: { mainFrame } };
}

function subframe(url: string): InvokeSender {
  const main = topFrame();
  const child: SenderFrame = { url, parent: main };
  return senderFor(child, main);
}

function recordingHandlers() {
  const calls: { method: string; argument: unknown }[] = [];
  const handlers = Object.fromEntries(
    methodNames.map((method) => [
      method,
      async (argument?: unknown) => {
        calls.push({ method, argument });
        return { ok: true, value: `${method} ran` };
      },
    ]),
  ) as unknown as HandlerTable;
  return { handlers, calls };
}

describe('channels', () => {
  it('are namespaced', () => {
    expect(INVOKE_CHANNEL).toBe('keyport:invoke');
    expect(EVENT_CHANNEL).toBe('keyport:event');
  });
});

describe('validateSender', () => {
  it('trusts the top frame of a page on app://keyport', () => {
    expect(validateSender(senderFor(topFrame()))).toEqual({ trusted: true });
    expect(validateSender(senderFor(topFrame('app://keyport/index.html#/mfa')))).toEqual({ trusted: true });
  });

  it.each([
    ['a missing frame (navigated away or destroyed)', senderFor(null, topFrame())],
    ['a detached frame', senderFor({ ...topFrame(), detached: true })],
    ['a subframe on the app origin', subframe('app://keyport/index.html')],
    ['a subframe on another origin', subframe('https://evil.example/')],
    ['a frame that is not the sender’s main frame', senderFor(topFrame(), topFrame())],
    ['another origin', senderFor(topFrame('https://evil.example/'))],
    ['file://', senderFor(topFrame('file:///opt/keyport/dist/renderer/index.html'))],
    ['another app:// host', senderFor(topFrame('app://evil/index.html'))],
    ['app:// with user info', senderFor(topFrame('app://evil@keyport/index.html'))],
    ['app:// with a port', senderFor(topFrame('app://keyport:1/index.html'))],
    ['http on the same host name', senderFor(topFrame('http://keyport/index.html'))],
    ['about:blank', senderFor(topFrame('about:blank'))],
    ['data:', senderFor(topFrame('data:text/html,<b>x</b>'))],
    ['devtools', senderFor(topFrame('devtools://devtools/bundled/devtools_app.html'))],
    ['an empty URL', senderFor(topFrame(''))],
  ])('refuses %s', (_name, event) => {
    expect(validateSender(event)).toMatchObject({ trusted: false });
  });
});

describe('createInvokeHandler', () => {
  it('calls the handler of a contract method with the raw argument and returns its Result', async () => {
    const { handlers, calls } = recordingHandlers();
    const invoke = createInvokeHandler(handlers);
    const argument = { address: 'keyport.example:3025', user: 'alice', password: 'pw' };
    await expect(invoke(senderFor(topFrame()), 'auth.login', argument)).resolves.toEqual({
      ok: true,
      value: 'auth.login ran',
    });
    expect(calls).toEqual([{ method: 'auth.login', argument }]);
  });

  it.each([
    ['a subframe', subframe('app://keyport/index.html')],
    ['another origin', senderFor(topFrame('https://evil.example/'))],
    ['file://', senderFor(topFrame('file:///index.html'))],
    ['a missing frame', senderFor(null, topFrame())],
  ])('refuses %s with ACCESS_DENIED before anything runs', async (_name, event) => {
    const { handlers, calls } = recordingHandlers();
    const result = await createInvokeHandler(handlers)(event, 'clusters.list', undefined);
    expect(result).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
    expect(calls).toEqual([]);
  });

  it('checks the sender before the method name', async () => {
    const { handlers } = recordingHandlers();
    const result = await createInvokeHandler(handlers)(senderFor(null, topFrame()), '__proto__', undefined);
    expect(result).toMatchObject({ ok: false, error: { code: 'ACCESS_DENIED' } });
  });

  it.each([
    'nope.method',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'clusters',
    'clusters.list ',
    'CLUSTERS.LIST',
    '',
    42,
    null,
    undefined,
    { toString: () => 'clusters.list' },
    ['clusters.list'],
  ])('answers INVALID_ARGUMENT for the method %s, without throwing or calling anything', async (method) => {
    const { handlers, calls } = recordingHandlers();
    const result = await createInvokeHandler(handlers)(senderFor(topFrame()), method, undefined);
    expect(result).toEqual({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', message: expect.any(String), details: { fieldPath: 'method' } },
    });
    expect(calls).toEqual([]);
  });

  it('turns a handler that throws into INTERNAL without its message', async () => {
    const { handlers } = recordingHandlers();
    handlers['app.info'] = async () => {
      throw new Error('/home/alice/.keyport/secret path');
    };
    const result = await createInvokeHandler(handlers)(senderFor(topFrame()), 'app.info', undefined);
    expect(result).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
    expect(JSON.stringify(result)).not.toContain('secret path');
  });
});

describe('forwardEvents', () => {
  function fakeBackend() {
    const listeners = new Map<EventName, Set<(payload: never) => void>>();
    return {
      listeners,
      on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): Unsubscribe {
        const set = listeners.get(event) ?? new Set();
        listeners.set(event, set);
        set.add(listener as (payload: never) => void);
        return () => set.delete(listener as (payload: never) => void);
      },
      emit<E extends EventName>(event: E, payload: EventPayloads[E]) {
        for (const listener of listeners.get(event) ?? [])
          (listener as (p: EventPayloads[E]) => void)(payload);
      },
    };
  }

  it('sends every backend event to the window on the event channel, with the name and payload only', () => {
    const backend = fakeBackend();
    const sink = { send: vi.fn(), isDestroyed: () => false };
    forwardEvents(backend, sink);
    expect([...backend.listeners.keys()]).toEqual(eventNames);
    const prompt = { id: 'p1', kind: 'tapKey', message: 'Touch your security key.' } as const;
    backend.emit('onPrompt', prompt);
    backend.emit('onPromptClosed', { id: 'p1', reason: 'answered' });
    expect(sink.send.mock.calls).toEqual([
      ['keyport:event', 'onPrompt', prompt],
      ['keyport:event', 'onPromptClosed', { id: 'p1', reason: 'answered' }],
    ]);
  });

  it('stops forwarding when stopped, and never sends to a destroyed window', () => {
    const backend = fakeBackend();
    let destroyed = false;
    const sink = { send: vi.fn(), isDestroyed: () => destroyed };
    const stop = forwardEvents(backend, sink);
    destroyed = true;
    backend.emit('onProfileChanged', { address: 'a:1', profile: null });
    expect(sink.send).not.toHaveBeenCalled();
    stop();
    expect([...backend.listeners.values()].every((set) => set.size === 0)).toBe(true);
  });
});
