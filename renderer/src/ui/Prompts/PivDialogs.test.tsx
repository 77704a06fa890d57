// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Prompt } from '../../../../preload/contract';
import { cluster, fakeKeyport, profile } from '../../testing/fakeKeyport';
import { renderWithKeyport } from '../../testing/render';
import { describeError } from '../../services/errors';
import { App } from '../App';

function setup() {
  const fake = fakeKeyport();
  renderWithKeyport(fake.api, <p>Behind</p>);
  const show = (prompt: Prompt) => act(() => fake.emit('onPrompt', prompt));
  return { fake, show, user: userEvent.setup() };
}

describe('hardware-key prompts', () => {
  it('says "Tap your YubiKey" while the card waits, and cancels', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'pivTouch', message: 'Tap your YubiKey' });
    const dialog = screen.getByRole('dialog', { name: 'Hardware key' });
    expect(within(dialog).getByRole('status')).toHaveTextContent('Tap your YubiKey');
    await user.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
  });

  it('asks for the PIV PIN, with the attempts left after a wrong one, and checks its length first', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'pivPin', retriesLeft: 2 });
    const pin = screen.getByLabelText('PIV PIN', { selector: 'input' });
    expect(pin).toHaveAccessibleDescription('Wrong PIN. 2 attempts left before the card blocks its PIN.');
    await user.type(pin, '1234{Enter}');
    expect(screen.getByRole('alert')).toHaveTextContent('A PIV PIN has 6 to 8 characters.');
    expect(fake.callsTo('prompts.answer')).toEqual([]);
    await user.clear(pin);
    await user.type(pin, '246810{Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([{ id: 'p1', value: { kind: 'pivPin', pin: '246810' } }]);
  });

  it('sets a new PIV PIN and PUK: never the factory ones, and only when both entries match', async () => {
    const { fake, show, user } = setup();
    show({ id: 'p1', kind: 'newPivPin', secret: 'pin' });
    let dialog = screen.getByRole('dialog', { name: 'Set a PIV PIN' });
    expect(dialog).toHaveTextContent('still has its default PIN');
    await user.type(within(dialog).getByLabelText('New PIN'), '123456');
    await user.type(within(dialog).getByLabelText('Repeat the PIN'), '123456{Enter}');
    expect(within(dialog).getByRole('alert')).toHaveTextContent(
      'Choose a PIN other than the default 123456.',
    );
    await user.clear(within(dialog).getByLabelText('New PIN'));
    await user.type(within(dialog).getByLabelText('New PIN'), '246810{Enter}');
    expect(within(dialog).getByRole('alert')).toHaveTextContent('The two PINs differ.');
    await user.clear(within(dialog).getByLabelText('Repeat the PIN'));
    await user.type(within(dialog).getByLabelText('Repeat the PIN'), '246810{Enter}');
    show({ id: 'p2', kind: 'newPivPin', secret: 'puk' });
    dialog = screen.getByRole('dialog', { name: 'Set a PIV PUK' });
    await user.type(within(dialog).getByLabelText('New PUK'), '13579246');
    await user.type(within(dialog).getByLabelText('Repeat the PUK'), '13579246{Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'newPivPin', value: '246810' } },
      { id: 'p2', value: { kind: 'newPivPin', value: '13579246' } },
    ]);
  });
});

describe('hardware keys on the Account screen and in errors', () => {
  it("shows a card session's slot and key policy", async () => {
    const fake = fakeKeyport({
      clusters: [cluster()],
      profile: profile({
        sessionKey: {
          kind: 'piv',
          slot: '9c',
          policy: 'hardware_key_touch',
          touchPolicy: 'cached',
          pinPolicy: 'never',
          serial: 16493529,
        },
      }),
    });
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Account' });
    const fact = (name: string) => screen.getByText(name, { selector: 'dt' }).nextElementSibling;
    expect(fact('Session key')).toHaveTextContent('On your YubiKey, PIV slot 9c (serial 16493529)');
    expect(fact('Key policy')).toHaveTextContent('hardware_key_touch (touch cached, PIN never)');
  });

  it('shows where a software session key lives, and no key policy', async () => {
    const fake = fakeKeyport({ clusters: [cluster()], profile: profile() });
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Account' });
    expect(screen.getByText('Session key', { selector: 'dt' }).nextElementSibling).toHaveTextContent(
      'In the OS keychain',
    );
    expect(screen.queryByText('Key policy')).not.toBeInTheDocument();
  });

  it("says what the card's refusals mean: a touch not given, a blocked PIN", () => {
    expect(
      describeError({
        code: 'ACCESS_DENIED',
        message: 'The PIV card refused to sign with slot 9C…',
        details: { pivCode: 'SECURITY_STATUS_NOT_SATISFIED' },
      }),
    ).toMatch(/^Your YubiKey was not touched .* in time/);
    const blocked =
      'The PIN of your PIV card is blocked after too many wrong attempts. Unblock it with the PUK.';
    expect(
      describeError({
        code: 'LOCKED',
        message: blocked,
        details: { pivCode: 'PIN_BLOCKED', retriesLeft: 0 },
      }),
    ).toBe(blocked);
  });
});
