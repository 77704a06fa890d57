import { describe, expect, it } from 'vitest';
import { eventFrame, parseIncoming, replyFrame } from './protocol';

describe('parseIncoming', () => {
  it('accepts a call', () => {
    expect(parseIncoming('{"id":1,"method":"app.info"}')).toEqual({
      kind: 'call',
      call: { id: 1, method: 'app.info', argument: undefined },
    });
    expect(parseIncoming('{"id":0,"method":"clusters.remove","argument":{"address":"a:1"}}')).toEqual({
      kind: 'call',
      call: { id: 0, method: 'clusters.remove', argument: { address: 'a:1' } },
    });
  });

  it.each(['', 'nope', '[1]', 'null', '7', '{"method":"app.info"}', '{"id":-1}', '{"id":1.5}', '{"id":"1"}'])(
    'closes on %j (no usable id)',
    (text) => {
      expect(parseIncoming(text).kind).toBe('fatal');
    },
  );

  it.each([
    ['{"id":1}', 'A call names its method.'],
    ['{"id":1,"method":7}', 'A call names its method.'],
    ['{"id":1,"method":"nope"}', 'Unknown method "nope".'],
    ['{"id":1,"method":"toString"}', 'Unknown method "toString".'],
    ['{"id":1,"method":"__proto__"}', 'Unknown method "__proto__".'],
    ['{"id":1,"method":"app.info","extra":1}', 'Unexpected field "extra".'],
    ['{"id":1,"method":"app.info","__proto__":{"polluted":1}}', 'Unexpected field "__proto__".'],
    [
      '{"id":1,"method":"app.info","argument":{"a":{"constructor":{"prototype":{}}}}}',
      'Unexpected field "prototype".',
    ],
  ])('answers %j with INVALID_ARGUMENT', (text, message) => {
    expect(parseIncoming(text)).toEqual({
      kind: 'invalid',
      id: 1,
      error: { code: 'INVALID_ARGUMENT', message, details: {} },
    });
  });

  it('accepts a visibility message and nothing more in it', () => {
    expect(parseIncoming('{"visibility":"hidden"}')).toEqual({ kind: 'visibility', visibility: 'hidden' });
    expect(parseIncoming('{"visibility":"visible"}')).toEqual({ kind: 'visibility', visibility: 'visible' });
    for (const text of [
      '{"visibility":"prerender"}',
      '{"visibility":true}',
      '{"visibility":"hidden","id":1}',
      '{"visibility":"hidden","x":1}',
      '{"visibility":"hidden","__proto__":{}}',
    ]) {
      expect(parseIncoming(text).kind, text).toBe('fatal');
    }
  });

  it('does not pollute Object.prototype', () => {
    parseIncoming('{"id":1,"method":"app.info","__proto__":{"polluted":1}}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

it('writes replies and events', () => {
  expect(JSON.parse(replyFrame(3, { ok: true, value: null }))).toEqual({
    id: 3,
    result: { ok: true, value: null },
  });
  expect(JSON.parse(eventFrame('onPromptClosed', { id: 'prompt-1', reason: 'finished' }))).toEqual({
    event: 'onPromptClosed',
    payload: { id: 'prompt-1', reason: 'finished' },
  });
});
