// @vitest-environment jsdom
import '../../testing/setup';
import { act, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Prompt } from '../../../../preload/contract';
import { fail, fakeKeyport } from '../../testing/fakeKeyport';
import { renderWithKeyport } from '../../testing/render';

function setup() {
  const fake = fakeKeyport();
  renderWithKeyport(
    fake.api,
    <button type="button" autoFocus>
      Behind
    </button>,
  );
  const show = (prompt: Prompt) => act(() => fake.emit('onPrompt', prompt));
  const close = (id: string) => act(() => fake.emit('onPromptClosed', { id, reason: 'finished' }));
  return { fake, show, close, user: userEvent.setup() };
}

describe('PromptsHost', () => {
  it('shows a prompt that opened before the window loaded (prompts.current), and answers it', async () => {
    const fake = fakeKeyport();
    fake.respond('prompts.current', () => ({ ok: true, value: { id: 'p9', kind: 'otpCode' } }));
    renderWithKeyport(fake.api, <p>Behind</p>);
    const dialog = await screen.findByRole('dialog', { name: 'One-time code' });
    const user = userEvent.setup();
    await user.type(within(dialog).getByLabelText('Code'), '123456');
    await user.click(within(dialog).getByRole('button', { name: 'Continue' }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p9', value: { kind: 'otpCode', code: '123456' } },
    ]);
  });

  it('shows tapKey with its message while it is open, and removes it on onPromptClosed', async () => {
    const { show, close } = setup();
    show({ id: 'p1', kind: 'tapKey', message: 'Tap any security key' });
    const dialog = screen.getByRole('dialog', { name: 'Security key' });
    expect(dialog).toHaveAttribute('aria-modal', 'true');
    expect(within(dialog).getByText('Tap any security key')).toBeInTheDocument();
    close('p1');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('cancels tapKey with its Cancel button and with Escape', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'tapKey', message: 'Tap any security key' });
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();

    show({ id: 'p2', kind: 'tapKey', message: 'Tap your new key' });
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }, { id: 'p2' }]);
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('asks for the key PIN with the attempts left and answers with it', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'keyPin', retriesLeft: 7 });
    const dialog = screen.getByRole('dialog', { name: 'Security key PIN' });
    expect(within(dialog).getByText('7 attempts left')).toBeInTheDocument();
    const pin = within(dialog).getByLabelText('PIN');
    expect(pin).toHaveAttribute('type', 'password');
    expect(pin).toHaveFocus();
    await user.keyboard('1234{Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([{ id: 'p1', value: { kind: 'keyPin', pin: '1234' } }]);
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it('describes the PIN field by the attempts left, then by the problem as well', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'keyPin', retriesLeft: 1 });
    const pin = screen.getByLabelText('PIN');
    expect(pin).toHaveAccessibleDescription('1 attempt left');
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    expect(pin).toHaveAttribute('aria-invalid', 'true');
    expect(pin).toHaveAccessibleDescription('1 attempt left Enter the PIN of your security key.');
    // A PIN is sent as typed, spaces included.
    await user.type(pin, ' 12 {Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([{ id: 'p1', value: { kind: 'keyPin', pin: ' 12 ' } }]);
  });

  it('does not send an empty PIN, and cancels the PIN prompt with Escape', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'keyPin' });
    expect(screen.queryByText(/attempts left/)).not.toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    expect(screen.getByRole('alert')).toHaveTextContent('Enter the PIN of your security key.');
    expect(fake.callsTo('prompts.answer')).toEqual([]);
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
  });

  it('shows the error of a refused answer inside the dialog, which stays open', async () => {
    const { fake, show, user } = setup();
    fake.respond(
      'prompts.answer',
      fail('INVALID_ARGUMENT', 'A PIN has at least 4 characters.', { fieldPath: 'value.pin' }),
    );
    show({ id: 'p1', kind: 'keyPin' });
    await user.keyboard('12{Enter}');
    const dialog = screen.getByRole('dialog', { name: 'Security key PIN' });
    expect(within(dialog).getByRole('alert')).toHaveTextContent('PIN: A PIN has at least 4 characters.');
  });

  it('sets a new PIN only when both entries match', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'newKeyPin' });
    const dialog = screen.getByRole('dialog', { name: 'Set a security key PIN' });
    await user.type(within(dialog).getByLabelText('New PIN'), '123456');
    await user.type(within(dialog).getByLabelText('Repeat the PIN'), '123465');
    await user.click(within(dialog).getByRole('button', { name: 'Set PIN' }));
    expect(within(dialog).getByRole('alert')).toHaveTextContent('The two PINs differ.');
    expect(within(dialog).getByLabelText('Repeat the PIN')).toHaveAttribute('aria-invalid', 'true');
    expect(fake.callsTo('prompts.answer')).toEqual([]);

    await user.clear(within(dialog).getByLabelText('Repeat the PIN'));
    await user.type(within(dialog).getByLabelText('Repeat the PIN'), '123456');
    await user.click(within(dialog).getByRole('button', { name: 'Set PIN' }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'newKeyPin', pin: '123456' } },
    ]);
  });

  it('cancels the new PIN with its Cancel button', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'newKeyPin' });
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
  });

  it('asks for a one-time code with a numeric keyboard and answers with the digits', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'otpCode' });
    const dialog = screen.getByRole('dialog', { name: 'One-time code' });
    const code = within(dialog).getByLabelText('Code');
    expect(code).toHaveAttribute('inputmode', 'numeric');
    expect(code).toHaveAttribute('autocomplete', 'one-time-code');
    await user.type(code, '12ab');
    await user.click(within(dialog).getByRole('button', { name: 'Continue' }));
    expect(within(dialog).getByRole('alert')).toHaveTextContent('6 to 8 digits');
    expect(fake.callsTo('prompts.answer')).toEqual([]);
    await user.clear(code);
    await user.type(code, ' 123456 {Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'otpCode', code: '123456' } },
    ]);
  });

  it('cancels the one-time code with Escape', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'otpCode' });
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
  });

  it('lets the person choose one of the accounts on a key, by index', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'chooseKey', accounts: [{ name: 'alice' }, { displayName: 'Bob Builder' }, {}] });
    const dialog = screen.getByRole('dialog', { name: 'Choose an account' });
    expect(within(dialog).getByRole('button', { name: 'alice' })).toBeInTheDocument();
    expect(within(dialog).getByRole('button', { name: 'Account 3' })).toBeInTheDocument();
    await user.click(within(dialog).getByRole('button', { name: 'Bob Builder' }));
    expect(fake.callsTo('prompts.answer')).toEqual([{ id: 'p1', value: { kind: 'chooseKey', index: 1 } }]);
  });

  it('cancels the account choice with its Cancel button', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'chooseKey', accounts: [{ name: 'alice' }] });
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
  });

  it('shows the CA pin to trust and answers Trust', async () => {
    const { fake, show, user } = setup();
    const caPin = `sha256:${'cd'.repeat(32)}`;
    show({ id: 'p1', kind: 'trustCaPin', address: 'auth.example.com:3025', caPin });
    const dialog = screen.getByRole('dialog', { name: 'Trust this cluster?' });
    expect(within(dialog).getByText('auth.example.com:3025')).toBeInTheDocument();
    expect(within(dialog).getByText(caPin).tagName).toBe('CODE');
    // The safe choice has focus first.
    expect(within(dialog).getByRole('button', { name: "Don't trust" })).toHaveFocus();
    await user.click(within(dialog).getByRole('button', { name: 'Trust' }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'trustCaPin', trust: true } },
    ]);
  });

  it("answers Don't trust with trust: false, and Escape cancels", async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'trustCaPin', address: 'auth.example.com:3025', caPin: 'sha256:00' });
    await user.click(screen.getByRole('button', { name: "Don't trust" }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'trustCaPin', trust: false } },
    ]);
    show({ id: 'p2', kind: 'trustCaPin', address: 'auth.example.com:3025', caPin: 'sha256:00' });
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p2' }]);
  });

  it('names a new key, trimmed, and refuses an empty name', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'deviceName' });
    const dialog = screen.getByRole('dialog', { name: 'Name the new key' });
    await user.click(within(dialog).getByRole('button', { name: 'Save' }));
    expect(within(dialog).getByRole('alert')).toHaveTextContent('Give the new key a name.');
    await user.type(within(dialog).getByLabelText('Key name'), '  backup key {Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'deviceName', name: 'backup key' } },
    ]);
  });

  it('cancels naming the key with its Cancel button', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'deviceName' });
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
  });

  it('shows a notice, which asks nothing and offers nothing to press, until the next prompt replaces it', async () => {
    const { fake, show, close, user } = setup();
    show({ id: 'p1', kind: 'notice', message: 'retrying on another auth server' });
    const dialog = screen.getByRole('dialog', { name: 'Please wait' });
    expect(within(dialog).getByRole('status')).toHaveTextContent('Retrying on another auth server…');
    expect(within(dialog).queryByRole('button')).toBeNull();
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([]);
    close('p1');
    show({ id: 'p2', kind: 'otpCode' });
    expect(screen.getAllByRole('dialog')).toHaveLength(1);
    expect(screen.getByRole('dialog', { name: 'One-time code' })).toBeInTheDocument();
  });

  it('shows one dialog at a time: the latest open prompt, then the previous one when it closes', async () => {
    const { show, close } = setup();
    show({ id: 'p1', kind: 'otpCode' });
    show({ id: 'p2', kind: 'tapKey', message: 'Tap any security key' });
    expect(screen.getAllByRole('dialog')).toHaveLength(1);
    expect(screen.getByRole('dialog', { name: 'Security key' })).toBeInTheDocument();
    close('p2');
    expect(screen.getByRole('dialog', { name: 'One-time code' })).toBeInTheDocument();
  });

  it('keeps Tab inside the dialog and gives focus back when it closes', async () => {
    const { show, close, user } = setup();
    const behind = screen.getByRole('button', { name: 'Behind' });
    expect(behind).toHaveFocus();
    show({ id: 'p1', kind: 'otpCode' });
    const dialog = screen.getByRole('dialog', { name: 'One-time code' });
    const code = within(dialog).getByLabelText('Code');
    expect(code).toHaveFocus();
    await user.tab();
    expect(within(dialog).getByRole('button', { name: 'Continue' })).toHaveFocus();
    await user.tab();
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus();
    await user.tab();
    expect(code).toHaveFocus();
    await user.tab({ shift: true });
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus();
    close('p1');
    expect(behind).toHaveFocus();
  });
});
