import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import type { Prompt, PromptClosed } from '../../preload/contract';
import { PromptBroker } from './prompt-broker';

function recordingBroker() {
  const shown: Prompt[] = [];
  const closed: PromptClosed[] = [];
  const broker = new PromptBroker({ prompt: (p) => shown.push(p), closed: (c) => closed.push(c) });
  return { broker, shown, closed };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('PromptBroker', () => {
  it('shows one prompt at a time: the second opens only after the first is answered', async () => {
    const { broker, shown } = recordingBroker();
    const first = broker.ceremony();
    const second = broker.ceremony();
    const otp = first.otpCode();
    const trust = second.confirmCaPin('127.0.0.1:3025', `sha256:${'a'.repeat(64)}`);

    expect(shown.map((p) => p.kind)).toEqual(['otpCode']);
    const [otpPrompt] = shown;
    broker.answer(otpPrompt!.id, { kind: 'otpCode', code: ' 123456 ' });
    await expect(otp).resolves.toBe('123456');

    expect(shown.map((p) => p.kind)).toEqual(['otpCode', 'trustCaPin']);
    expect(shown[1]).toMatchObject({ address: '127.0.0.1:3025', caPin: `sha256:${'a'.repeat(64)}` });
    broker.answer(shown[1]!.id, { kind: 'trustCaPin', trust: true });
    await expect(trust).resolves.toBe(true);
    expect(broker.current()).toBeUndefined();
  });

  it('cancel rejects with CANCELLED and aborts the ceremony signal (CTAPHID CANCEL for a key)', async () => {
    const { broker, shown, closed } = recordingBroker();
    const ceremony = broker.ceremony();
    const pin = ceremony.securityKey.pin(5);
    expect(shown[0]).toMatchObject({ kind: 'keyPin', retriesLeft: 5 });

    broker.cancel(shown[0]!.id);
    await expect(pin).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(ceremony.signal.aborted).toBe(true);
    expect(ceremony.signal.reason).toBeInstanceOf(KeyportError);
    expect(closed).toEqual([{ id: shown[0]!.id, reason: 'cancelled' }]);
    // The cancelled ceremony cannot ask again.
    await expect(ceremony.otpCode()).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('cancelling a tap prompt aborts the ceremony; the tap closes when the ceremony asks for more', async () => {
    const { broker, shown, closed } = recordingBroker();
    const ceremony = broker.ceremony();
    ceremony.securityKey.tap('Tap any security key');
    expect(shown[0]).toMatchObject({ kind: 'tapKey', message: 'Tap any security key' });
    const pin = ceremony.securityKey.pin(undefined);
    expect(closed[0]).toEqual({ id: shown[0]!.id, reason: 'finished' });
    expect(shown[1]).toEqual({ kind: 'keyPin', id: shown[1]!.id });
    broker.answer(shown[1]!.id, { kind: 'keyPin', pin: '1234' });
    await expect(pin).resolves.toBe('1234');

    ceremony.securityKey.tap('Tap any security key');
    broker.cancel(shown[2]!.id);
    expect(ceremony.signal.aborted).toBe(true);
  });

  it('shows the SSO wait for the browser: nothing to answer, a cancel aborts the ceremony, its end closes it', () => {
    const { broker, shown, closed } = recordingBroker();
    const ceremony = broker.ceremony();
    ceremony.browserSignIn({ cluster: 'prod', connector: 'Okta' });
    expect(shown).toEqual([{ kind: 'browserSignIn', cluster: 'prod', connector: 'Okta', id: shown[0]!.id }]);
    expect(() => broker.answer(shown[0]!.id, { kind: 'trustCaPin', trust: true })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    broker.cancel(shown[0]!.id);
    expect(ceremony.signal.aborted).toBe(true);
    expect(ceremony.signal.reason).toMatchObject({ code: 'CANCELLED' });
    expect(closed).toEqual([{ id: shown[0]!.id, reason: 'cancelled' }]);

    const next = broker.ceremony();
    next.browserSignIn({ cluster: 'prod', connector: 'Okta' });
    next.finish();
    expect(closed.at(-1)).toEqual({ id: shown[1]!.id, reason: 'finished' });
    expect(broker.current()).toBeUndefined();
  });

  it('refuses stale, unknown and mismatched answers without touching the open prompt', async () => {
    const { broker, shown } = recordingBroker();
    const ceremony = broker.ceremony();
    const otp = ceremony.otpCode();
    const id = shown[0]!.id;

    expect(() => broker.answer('prompt-999', { kind: 'otpCode', code: '123456' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'id' } }),
    );
    expect(() => broker.answer(id, { kind: 'keyPin', pin: '1234' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'value.kind' } }),
    );
    expect(broker.current()?.id).toBe(id);

    broker.answer(id, { kind: 'otpCode', code: '654321' });
    await expect(otp).resolves.toBe('654321');
    expect(() => broker.answer(id, { kind: 'otpCode', code: '654321' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => broker.cancel(id)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses an account index the chooseKey prompt did not offer', async () => {
    const { broker, shown } = recordingBroker();
    const choice = broker.ceremony().securityKey.chooseAccount!([{ name: 'alice' }, { name: 'bob' }]);
    expect(() => broker.answer(shown[0]!.id, { kind: 'chooseKey', index: 2 })).toThrow(
      expect.objectContaining({ fields: { fieldPath: 'value.index' } }),
    );
    broker.answer(shown[0]!.id, { kind: 'chooseKey', index: 1 });
    await expect(choice).resolves.toBe(1);
  });

  it('finishing a ceremony closes its queued prompts and lets the next ceremony show', async () => {
    const { broker, shown, closed } = recordingBroker();
    const first = broker.ceremony();
    const second = broker.ceremony();
    const a = first.otpCode();
    const b = second.otpCode();
    a.catch(() => {});
    first.finish();
    await expect(a).rejects.toMatchObject({ code: 'CANCELLED' });
    await settle();
    expect(closed).toEqual([{ id: shown[0]!.id, reason: 'finished' }]);
    expect(broker.current()?.id).toBe(shown[1]!.id);
    broker.answer(shown[1]!.id, { kind: 'otpCode', code: '111111' });
    await expect(b).resolves.toBe('111111');
  });

  it('ends an unanswered ceremony with EXPIRED, so the prompts queued behind it show', async () => {
    const shown: Prompt[] = [];
    const closed: PromptClosed[] = [];
    const broker = new PromptBroker(
      { prompt: (p) => shown.push(p), closed: (c) => closed.push(c) },
      { answerTimeoutMs: 50 },
    );
    const abandoned = broker.ceremony();
    const pin = abandoned.securityKey.pin(8);
    const next = broker.ceremony();
    const otp = next.otpCode();
    expect(shown.map((p) => p.kind)).toEqual(['keyPin']);
    await expect(pin).rejects.toMatchObject({ code: 'EXPIRED' });
    expect(abandoned.signal.aborted).toBe(true);
    expect(closed).toEqual([{ id: shown[0]!.id, reason: 'cancelled' }]);
    expect(shown.map((p) => p.kind)).toEqual(['keyPin', 'otpCode']);
    expect(broker.current()).toMatchObject({ kind: 'otpCode' });
    broker.answer(shown[1]!.id, { kind: 'otpCode', code: '123456' });
    await expect(otp).resolves.toBe('123456');
  });

  it('an answered prompt does not expire later', async () => {
    const { broker, shown } = recordingBroker();
    const ceremony = broker.ceremony();
    const otp = ceremony.otpCode();
    broker.answer(shown[0]!.id, { kind: 'otpCode', code: '654321' });
    await expect(otp).resolves.toBe('654321');
    expect(ceremony.signal.aborted).toBe(false);
  });

  it('shows a step hint (say) only once a key waits for a touch, on that one tap prompt', () => {
    const { broker, shown } = recordingBroker();
    const ceremony = broker.ceremony();
    ceremony.securityKey.tap('Tap any security key');
    ceremony.say('Tap your new security key');
    expect(broker.current()).toBeUndefined();
    ceremony.securityKey.tap('Tap any security key');
    expect(broker.current()).toMatchObject({ kind: 'tapKey', message: 'Tap your new security key' });
    ceremony.securityKey.tap('Tap your security key again to complete the request');
    expect(shown.map((p) => p.kind === 'tapKey' && p.message)).toEqual([
      'Tap any security key',
      'Tap your new security key',
      'Tap your security key again to complete the request',
    ]);
  });

  it('shows a notice that asks nothing until the ceremony’s next prompt replaces it, or its end', async () => {
    const { broker, shown, closed } = recordingBroker();
    const ceremony = broker.ceremony();
    ceremony.notice('retrying on another auth server');
    const notice = shown[0]!;
    expect(notice).toEqual({ kind: 'notice', message: 'retrying on another auth server', id: notice.id });
    expect(broker.current()).toBe(notice);
    // Nothing to answer.
    expect(() => broker.answer(notice.id, { kind: 'otpCode', code: '123456' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'value.kind' } }),
    );
    const otp = ceremony.otpCode();
    expect(closed).toEqual([{ id: notice.id, reason: 'finished' }]);
    expect(broker.current()).toMatchObject({ kind: 'otpCode' });
    broker.answer(shown[1]!.id, { kind: 'otpCode', code: '123456' });
    await expect(otp).resolves.toBe('123456');

    ceremony.notice('retrying on another auth server');
    const last = shown[2]!;
    ceremony.finish();
    expect(closed.at(-1)).toEqual({ id: last.id, reason: 'finished' });
    expect(broker.current()).toBeUndefined();
    // A finished ceremony says nothing more.
    ceremony.notice('retrying on another auth server');
    expect(shown).toHaveLength(3);
  });
});

describe('PromptBroker, hardware-key prompts', () => {
  const relogin = {
    cluster: '127.0.0.1:3025',
    user: 'ivy',
    reason: [
      'Unmet private key policy "hardware_key_touch".',
      'Relogging in with hardware-backed private key.',
    ],
    cause: 'keyPolicy' as const,
    secondFactors: ['webauthn' as const, 'otp' as const],
    allowPasswordless: false,
  };

  it('a password relogin resolves with the password typed, and refuses an answer without one', async () => {
    const { broker, shown } = recordingBroker();
    const asked = broker.ceremony().relogin({ ...relogin, passwordless: false });
    expect(shown[0]).toEqual({ kind: 'relogin', ...relogin, passwordless: false, id: shown[0]!.id });
    expect(() => broker.answer(shown[0]!.id, { kind: 'relogin' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', fields: { fieldPath: 'value.password' } }),
    );
    // A second factor without a password is refused too.
    expect(() => broker.answer(shown[0]!.id, { kind: 'relogin', secondFactor: 'otp' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    // Still open after the refused answers.
    expect(broker.current()?.id).toBe(shown[0]!.id);
    broker.answer(shown[0]!.id, { kind: 'relogin', password: 'ivy-password-123', secondFactor: 'otp' });
    await expect(asked).resolves.toEqual({ password: 'ivy-password-123', secondFactor: 'otp' });
  });

  it('a passwordless relogin resolves with no password, and is never sent one', async () => {
    const { broker, shown } = recordingBroker();
    const asked = broker.ceremony().relogin({ ...relogin, passwordless: true });
    expect(() => broker.answer(shown[0]!.id, { kind: 'relogin', password: 'x' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    broker.answer(shown[0]!.id, { kind: 'relogin' });
    await expect(asked).resolves.toEqual({});
  });

  it('a password cluster that allows passwordless takes either: no password means passwordless', async () => {
    const { broker, shown } = recordingBroker();
    const asked = broker.ceremony().relogin({ ...relogin, passwordless: false, allowPasswordless: true });
    broker.answer(shown[0]!.id, { kind: 'relogin' });
    await expect(asked).resolves.toEqual({});
  });

  it('asks the PIV PIN (attempts left after a wrong one), a new PIN and PUK, and shows the touch until the next step', async () => {
    const { broker, shown, closed } = recordingBroker();
    const ceremony = broker.ceremony();
    ceremony.piv.touch('Tap your YubiKey');
    expect(shown[0]).toEqual({ kind: 'pivTouch', message: 'Tap your YubiKey', id: shown[0]!.id });
    const pin = ceremony.piv.pin(2);
    // The touch prompt gave way to the question.
    expect(closed).toEqual([{ id: shown[0]!.id, reason: 'finished' }]);
    expect(shown[1]).toEqual({ kind: 'pivPin', retriesLeft: 2, id: shown[1]!.id });
    broker.answer(shown[1]!.id, { kind: 'pivPin', pin: '246810' });
    await expect(pin).resolves.toBe('246810');
    const newPin = ceremony.piv.newPin();
    expect(shown[2]).toMatchObject({ kind: 'newPivPin', secret: 'pin' });
    broker.answer(shown[2]!.id, { kind: 'newPivPin', value: '246810' });
    await expect(newPin).resolves.toBe('246810');
    const newPuk = ceremony.piv.newPuk();
    expect(shown[3]).toMatchObject({ kind: 'newPivPin', secret: 'puk' });
    // A PIN prompt is answered as a PIN, not as a new one.
    expect(() => broker.answer(shown[3]!.id, { kind: 'pivPin', pin: '13579246' })).toThrow(
      expect.objectContaining({ fields: { fieldPath: 'value.kind' } }),
    );
    broker.answer(shown[3]!.id, { kind: 'newPivPin', value: '13579246' });
    await expect(newPuk).resolves.toBe('13579246');
    ceremony.piv.touch('Tap your YubiKey');
    ceremony.progressDone();
    expect(broker.current()).toBeUndefined();
    ceremony.finish();
  });
});
