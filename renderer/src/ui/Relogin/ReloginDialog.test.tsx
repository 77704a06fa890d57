// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { Prompt } from '../../../../preload/contract';
import { cluster, fakeKeyport, profile } from '../../testing/fakeKeyport';
import { renderWithKeyport } from '../../testing/render';
import { App } from '../App';

type ReloginPrompt = Extract<Prompt, { kind: 'relogin' }>;

const SEED_LINES = [
  'Unmet private key policy "hardware_key_touch".',
  'Relogging in with hardware-backed private key.',
];

function relogin(overrides: Partial<ReloginPrompt> = {}): ReloginPrompt {
  return {
    id: 'p1',
    kind: 'relogin',
    cluster: 'auth.example.com:3025',
    user: 'ivy',
    reason: ['Your session ended at 14:02.'],
    cause: 'expired',
    passwordless: false,
    secondFactors: ['webauthn'],
    allowPasswordless: false,
    ...overrides,
  };
}

/** axe-core's serious and critical findings. jsdom has no layout, so contrast is checked in the e2e tests. */
async function seriousViolations() {
  document.documentElement.lang = 'en';
  document.title = 'Keyport Connect';
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  const results = await axe.run(document, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

function setup() {
  const fake = fakeKeyport();
  renderWithKeyport(fake.api, <p>Behind</p>);
  const show = (prompt: Prompt) => act(() => fake.emit('onPrompt', prompt));
  return { fake, show, user: userEvent.setup() };
}

/** The read-only fact `name` (Cluster, User) in the dialog. */
const fact = (dialog: HTMLElement, name: string) =>
  within(dialog).getByText(name, { selector: 'dt' }).nextElementSibling;

describe('the relogin dialog', () => {
  it('says the session ended at HH:MM, shows the cluster and user read only, and answers with the password', async () => {
    const { fake, show, user } = setup();
    show(relogin());
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    expect(within(dialog).getByText('Your session ended at 14:02.')).toBeInTheDocument();
    expect(fact(dialog, 'Cluster')).toHaveTextContent('auth.example.com:3025');
    expect(fact(dialog, 'User')).toHaveTextContent('ivy');
    // Nothing to type for the cluster or the user: a relogin renews this session.
    expect(within(dialog).queryAllByRole('textbox')).toEqual([]);
    expect(dialog).toHaveTextContent('what you were doing stays open');
    const password = within(dialog).getByLabelText('Password');
    expect(password).toHaveAttribute('type', 'password');
    expect(password).toHaveFocus();
    // Only one second factor: no choice, and no passwordless where the cluster does not allow it.
    expect(within(dialog).queryByRole('radiogroup')).not.toBeInTheDocument();
    expect(within(dialog).queryByRole('button', { name: 'Sign in without a password' })).toBeNull();
    await user.click(within(dialog).getByRole('button', { name: 'Sign in' }));
    expect(within(dialog).getByRole('alert')).toHaveTextContent('Enter your password.');
    expect(password).toHaveAccessibleDescription('Enter your password.');
    expect(fake.callsTo('prompts.answer')).toEqual([]);
    expect(await seriousViolations()).toEqual([]);
    await user.type(password, 'ivy-password-123{Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'relogin', password: 'ivy-password-123' } },
    ]);
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
  });

  it("says the cluster now requires a hardware key, with the seed's two lines", async () => {
    const { show } = setup();
    show(relogin({ cause: 'keyPolicy', reason: SEED_LINES }));
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    expect(within(dialog).getByText('This cluster now requires a hardware key.')).toBeInTheDocument();
    for (const line of SEED_LINES) expect(within(dialog).getByText(line)).toBeInTheDocument();
    expect(dialog).toHaveTextContent('make your session key on your hardware key (a YubiKey)');
    expect(await seriousViolations()).toEqual([]);
  });

  it('says the CLI asked, and that the terminal goes on after', () => {
    const { show } = setup();
    show(relogin({ cause: 'cli', reason: ['The CLI asked to sign in again.'] }));
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    expect(within(dialog).getByText('The CLI asked to sign in again.')).toBeInTheDocument();
    expect(dialog).toHaveTextContent('the keyport command in your terminal goes on');
  });

  it("offers the login screen's factors: the second factor's choice, and passwordless where allowed", async () => {
    const { fake, show, user } = setup();
    show(relogin({ secondFactors: ['otp', 'webauthn'], allowPasswordless: true }));
    let dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    const choice = within(dialog).getByRole('radiogroup', { name: 'Second factor' });
    expect(within(choice).getByRole('radio', { name: 'Security key' })).toBeChecked();
    expect(await seriousViolations()).toEqual([]);
    await user.click(within(choice).getByRole('radio', { name: 'One-time code' }));
    await user.type(within(dialog).getByLabelText('Password'), 'ivy-password-123{Enter}');
    show(relogin({ id: 'p2', secondFactors: ['otp', 'webauthn'], allowPasswordless: true }));
    dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    await user.click(within(dialog).getByRole('button', { name: 'Sign in without a password' }));
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'relogin', password: 'ivy-password-123', secondFactor: 'otp' } },
      { id: 'p2', value: { kind: 'relogin' } },
    ]);
  });

  it('continues a passwordless relogin without a password, and cancels with Escape', async () => {
    const { fake, show, user } = setup();
    show(relogin({ passwordless: true, allowPasswordless: true }));
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    expect(within(dialog).queryByLabelText('Password')).not.toBeInTheDocument();
    expect(fact(dialog, 'User')).toHaveTextContent('ivy');
    expect(await seriousViolations()).toEqual([]);
    await user.click(within(dialog).getByRole('button', { name: 'Continue' }));
    expect(fake.callsTo('prompts.answer')).toEqual([{ id: 'p1', value: { kind: 'relogin' } }]);
    show(relogin({ id: 'p2', passwordless: true }));
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p2' }]);
  });

  it('offers an SSO session only its connector: "Sign in with DISPLAY", no password, and Cancel', async () => {
    const { fake, show, user } = setup();
    show(
      relogin({
        secondFactors: [],
        sso: { connector: 'lab', display: 'Lab IdP' },
      }),
    );
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    expect(within(dialog).getByText('Your session ended at 14:02.')).toBeInTheDocument();
    expect(fact(dialog, 'User')).toHaveTextContent('ivy');
    expect(within(dialog).queryByLabelText('Password')).not.toBeInTheDocument();
    expect(within(dialog).queryByRole('radiogroup')).toBeNull();
    expect(dialog).toHaveTextContent('Sign in there as ivy.');
    expect(await seriousViolations()).toEqual([]);
    await user.click(within(dialog).getByRole('button', { name: 'Sign in with Lab IdP' }));
    expect(fake.callsTo('prompts.answer')).toEqual([{ id: 'p1', value: { kind: 'relogin', sso: true } }]);
    show(relogin({ id: 'p2', secondFactors: [], sso: { connector: 'lab', display: 'Lab IdP' } }));
    await user.click(
      within(screen.getByRole('dialog', { name: 'Sign in again' })).getByRole('button', { name: 'Cancel' }),
    );
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p2' }]);
  });

  it('shows the backend refusing the answer (a wrong password) in the dialog, which stays open', async () => {
    const { fake, show, user } = setup();
    fake.respond('prompts.answer', {
      ok: false,
      error: { code: 'INVALID_ARGUMENT', message: 'Give the password.', details: {} },
    });
    show(relogin());
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    await user.type(within(dialog).getByLabelText('Password'), 'x{Enter}');
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('Give the password.');
    expect(screen.getByRole('dialog', { name: 'Sign in again' })).toBeInTheDocument();
  });
});

describe('what the person was doing stays underneath', () => {
  it('a half-typed form keeps its value through a relogin, and the screen stays', async () => {
    const signedIn = profile();
    const fake = fakeKeyport({ clusters: [cluster()], profile: signedIn });
    const user = userEvent.setup();
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Account' });
    await user.click(screen.getByRole('button', { name: 'Clusters' }));
    const address = await screen.findByLabelText('Cluster address');
    await user.type(address, 'new.example.com:30');
    // A call is refused for an expired session: the backend asks, over the screen.
    act(() => fake.emit('onPrompt', relogin({ cluster: signedIn.address, user: signedIn.user })));
    const dialog = screen.getByRole('dialog', { name: 'Sign in again' });
    await user.type(within(dialog).getByLabelText('Password'), 'alice-password{Enter}');
    act(() => fake.emit('onPromptClosed', { id: 'p1', reason: 'answered' }));
    const renewed = profile({ expiresMs: signedIn.expiresMs + 3_600_000 });
    act(() => fake.emit('onProfileChanged', { address: signedIn.address, profile: renewed }));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.getByRole('heading', { level: 2, name: 'Clusters' })).toBeInTheDocument();
    expect(screen.getByLabelText('Cluster address')).toHaveValue('new.example.com:30');
  });
});
