// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { MfaDeviceView, Result } from '../../../../preload/contract';
import { cluster, deferred, device, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import type { FakeState } from '../../testing/fakeKeyport';
import { App } from '../App';

async function openAccount(state: FakeState = {}) {
  // The fake reads `state` on every call, so a test can change what the next list returns.
  state.clusters ??= [cluster()];
  if (!('profile' in state)) state.profile = profile();
  const fake = fakeKeyport(state);
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  await screen.findByRole('heading', { level: 2, name: 'Account' });
  return { fake, user };
}

function term(name: string): HTMLElement {
  const dt = screen.getByText(name, { selector: 'dt' });
  return dt.nextElementSibling as HTMLElement;
}

describe('Account screen', () => {
  it("opens on the account when a profile exists, and shows the profile's facts", async () => {
    await openAccount({
      profile: profile({ cluster: 'prod', roles: ['access', 'auditor'], logins: ['alice', 'ubuntu'] }),
    });
    expect(screen.getByRole('banner')).toHaveTextContent('Signed in as alice');
    expect(term('User')).toHaveTextContent('alice');
    expect(term('Roles')).toHaveTextContent('access, auditor');
    expect(term('Logins')).toHaveTextContent('alice, ubuntu');
    expect(term('Cluster')).toHaveTextContent('prod');
    expect(term('Valid until')).toHaveTextContent(/11 h 59 min left/);
  });

  it('counts the validity down as time passes', async () => {
    vi.useFakeTimers({ now: new Date(2030, 0, 1, 8, 0) });
    const fake = fakeKeyport({
      clusters: [cluster()],
      profile: profile({ expiresMs: new Date(2030, 0, 1, 20, 0).getTime() }),
    });
    render(<App api={fake.api} />);
    await act(async () => {});
    expect(term('Valid until')).toHaveTextContent('(12 h 0 min left)');
    await act(() => vi.advanceTimersByTimeAsync(61_000));
    expect(term('Valid until')).toHaveTextContent('(11 h 58 min left)');
    await act(() => vi.advanceTimersByTimeAsync(12 * 3600_000));
    expect(term('Valid until')).toHaveTextContent('(Expired)');
    expect(screen.getByRole('button', { name: 'Sign in again' })).toBeInTheDocument();
  });

  it('signs out and shows the login of the cluster, with the user filled in', async () => {
    const { fake, user } = await openAccount();
    fake.respond('auth.logout', ok(profile()));
    await user.click(screen.getByRole('button', { name: 'Sign out' }));
    expect(fake.callsTo('auth.logout')).toEqual([{ address: 'auth.example.com:3025' }]);
    expect(await screen.findByRole('heading', { level: 2, name: 'Sign in to example' })).toBeInTheDocument();
    expect(screen.getByRole('textbox', { name: 'User' })).toHaveValue('alice');
    expect(screen.queryByText('Signed in as alice')).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Account' })).not.toBeInTheDocument();
  });

  it('switches to the login at once when the profile is signed out elsewhere (the CLI)', async () => {
    const { fake } = await openAccount();
    act(() => fake.emit('onProfileChanged', { address: 'auth.example.com:3025', profile: null }));
    expect(screen.getByRole('heading', { level: 2, name: 'Sign in to example' })).toBeInTheDocument();
    expect(screen.queryByRole('heading', { name: 'Account' })).not.toBeInTheDocument();
  });

  it('shows the account when a profile appears (a sign-in in the CLI)', async () => {
    const fake = fakeKeyport({ clusters: [cluster()] });
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Sign in to example' });
    act(() =>
      fake.emit('onProfileChanged', { address: 'auth.example.com:3025', profile: profile({ user: 'bob' }) }),
    );
    expect(screen.getByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
    expect(screen.getByText('Signed in as bob')).toBeInTheDocument();
  });

  it('lists the MFA devices with their type', async () => {
    await openAccount({
      devices: [
        device({ id: '1', name: 'yubikey' }),
        device({ id: '2', name: 'laptop', passkey: true }),
        device({ id: '3', name: 'phone', type: 'totp' }),
      ],
    });
    const list = await screen.findByRole('list', { name: 'MFA devices' });
    const rows = within(list).getAllByRole('listitem');
    expect(rows.map((row) => row.textContent)).toEqual([
      expect.stringMatching(/^yubikeySecurity key/),
      expect.stringMatching(/^laptopPasskey/),
      expect.stringMatching(/^phoneOne-time code/),
    ]);
    expect(within(rows[2]!).getByRole('button', { name: 'Remove phone' })).toBeInTheDocument();
    expect(screen.getByRole('heading', { level: 3, name: 'MFA devices' })).toBeInTheDocument();
  });

  it('adds a security key: existing key, new key, then its name, and lists it', async () => {
    const state: FakeState = { devices: [device({ id: '1', name: 'yubikey' })] };
    const { fake, user } = await openAccount(state);
    await screen.findByRole('list', { name: 'MFA devices' });
    const reply = deferred<Result<MfaDeviceView>>();
    fake.respond('mfa.add', () => reply.promise);

    await user.click(
      screen.getByRole('checkbox', { name: 'Let the new key sign in without a password (a passkey)' }),
    );
    await user.click(screen.getByRole('button', { name: 'Add security key' }));
    expect(fake.callsTo('mfa.add')).toEqual([{ passwordless: true }]);

    act(() => fake.emit('onPrompt', { id: 'p1', kind: 'tapKey', message: 'Tap your existing security key' }));
    expect(screen.getByRole('dialog', { name: 'Security key' })).toHaveTextContent(
      'Tap your existing security key',
    );
    act(() => fake.emit('onPromptClosed', { id: 'p1', reason: 'finished' }));
    act(() => fake.emit('onPrompt', { id: 'p2', kind: 'tapKey', message: 'Tap the new security key' }));
    expect(screen.getByRole('dialog', { name: 'Security key' })).toHaveTextContent(
      'Tap the new security key',
    );
    act(() => fake.emit('onPromptClosed', { id: 'p2', reason: 'finished' }));
    act(() => fake.emit('onPrompt', { id: 'p3', kind: 'deviceName' }));
    await user.type(screen.getByRole('textbox', { name: 'Key name' }), 'backup{Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p3', value: { kind: 'deviceName', name: 'backup' } },
    ]);

    const backup = device({ id: '2', name: 'backup', passkey: true });
    state.devices = [...state.devices!, backup];
    await act(async () => reply.resolve(ok(backup)));
    expect(await screen.findByText('Security key "backup" added.')).toBeInTheDocument();
    expect(
      await within(screen.getByRole('list', { name: 'MFA devices' })).findByText('backup'),
    ).toBeInTheDocument();
    expect(fake.callsTo('mfa.list')).toHaveLength(2);
    expect(
      screen.getByRole('checkbox', { name: 'Let the new key sign in without a password (a passkey)' }),
    ).not.toBeChecked();
  });

  it('adds a key with the keyboard only, and gives focus back to the Add button afterwards', async () => {
    const { fake, user } = await openAccount();
    const reply = deferred<Result<MfaDeviceView>>();
    fake.respond('mfa.add', () => reply.promise);
    const checkbox = await screen.findByRole('checkbox', {
      name: 'Let the new key sign in without a password (a passkey)',
    });
    checkbox.focus();
    await user.keyboard(' ');
    expect(checkbox).toBeChecked();
    await user.tab();
    const add = screen.getByRole('button', { name: 'Add security key' });
    expect(add).toHaveFocus();
    await user.keyboard('{Enter}');
    expect(fake.callsTo('mfa.add')).toEqual([{ passwordless: true }]);

    act(() => fake.emit('onPrompt', { id: 'p1', kind: 'tapKey', message: 'Tap the new security key' }));
    expect(screen.getByRole('button', { name: 'Cancel' })).toHaveFocus();
    act(() => fake.emit('onPromptClosed', { id: 'p1', reason: 'finished' }));
    await act(async () => reply.resolve(ok(device({ id: '9', name: 'new' }))));
    expect(await screen.findByText('Security key "new" added.')).toBeInTheDocument();
    expect(add).toHaveFocus();
  });

  it('adds a key without passwordless when the box is not ticked', async () => {
    const { fake, user } = await openAccount();
    fake.respond('mfa.add', fail('CANCELLED', 'Cancelled.'));
    await user.click(await screen.findByRole('button', { name: 'Add security key' }));
    expect(fake.callsTo('mfa.add')).toEqual([{ passwordless: false }]);
    expect(await screen.findByRole('alert')).toHaveTextContent('Cancelled. Nothing was changed.');
  });

  it('removes a device only after confirmation, then lists the devices again', async () => {
    const state: FakeState = {
      devices: [device({ id: '1', name: 'yubikey' }), device({ id: '2', name: 'old' })],
    };
    const { fake, user } = await openAccount(state);
    fake.respond('mfa.remove', ({ name }) => {
      state.devices = state.devices!.filter((d) => d.name !== name);
      return ok(null);
    });

    await user.click(await screen.findByRole('button', { name: 'Remove old' }));
    let dialog = screen.getByRole('dialog', { name: 'Remove old?' });
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus();
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(fake.callsTo('mfa.remove')).toEqual([]);

    await user.click(screen.getByRole('button', { name: 'Remove old' }));
    dialog = screen.getByRole('dialog', { name: 'Remove old?' });
    await user.click(within(dialog).getByRole('button', { name: 'Remove' }));
    expect(fake.callsTo('mfa.remove')).toEqual([{ name: 'old' }]);
    const list = screen.getByRole('list', { name: 'MFA devices' });
    await vi.waitFor(() => expect(within(list).queryByText('old')).not.toBeInTheDocument());
    expect(within(list).getByText('yubikey')).toBeInTheDocument();
  });

  it('explains a failed removal next to the devices', async () => {
    const { fake, user } = await openAccount({ devices: [device({ name: 'yubikey' })] });
    fake.respond(
      'mfa.remove',
      fail('MFA_FAILED', 'failed', { securityKeyCode: 'PIN_INVALID', retriesLeft: 2 }),
    );
    await user.click(await screen.findByRole('button', { name: 'Remove yubikey' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Remove' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong PIN. 2 attempts left');
  });

  it('offers to sign in again when the session has expired', async () => {
    const fake = fakeKeyport({ clusters: [cluster()], profile: profile() });
    fake.respond('mfa.list', fail('CERTIFICATE_EXPIRED', 'expired'));
    const user = userEvent.setup();
    render(<App api={fake.api} />);
    expect(await screen.findByRole('alert')).toHaveTextContent('Your session has ended. Sign in again');
    await user.click(screen.getByRole('button', { name: 'Sign in again' }));
    expect(screen.getByRole('heading', { level: 2, name: 'Sign in to example' })).toBeInTheDocument();
  });
});
