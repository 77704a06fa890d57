// @vitest-environment jsdom
import '../../testing/setup';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { ClusterView, ProfileView, Result } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import { renderWithKeyport } from '../../testing/render';
import { App } from '../App';
import { Login } from './Login';

async function openLogin(prod: ClusterView = cluster({ name: 'prod' })) {
  const fake = fakeKeyport({ clusters: [prod] });
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  await screen.findByRole('heading', { level: 2, name: `Sign in to ${prod.name}` });
  return { fake, user };
}

async function fillIn(user: ReturnType<typeof userEvent.setup>, name = 'alice', password = 'correct horse') {
  await user.type(screen.getByRole('textbox', { name: 'User' }), name);
  await user.type(screen.getByLabelText('Password'), password);
}

describe('Login screen', () => {
  // The focus moves in an effect after the form is on screen: waited for, not assumed at first paint.
  it('opens ready to type: the User field has the focus', async () => {
    await openLogin();
    await waitFor(() => expect(screen.getByRole('textbox', { name: 'User' })).toHaveFocus());
  });

  it('offers the last user of the cluster after a sign-out, with the focus on the password', async () => {
    await openLogin(cluster({ name: 'prod', lastUser: 'alice' }));
    expect(screen.getByRole('textbox', { name: 'User' })).toHaveValue('alice');
    await waitFor(() => expect(screen.getByLabelText('Password')).toHaveFocus());
  });

  it('opens on the login of the first trusted cluster when nobody is signed in', async () => {
    await openLogin();
    expect(screen.getByRole('textbox', { name: 'User' })).toBeInTheDocument();
    expect(screen.getByLabelText('Password')).toHaveAttribute('type', 'password');
    expect(screen.queryByRole('radiogroup')).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Sign in without a password' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Account' })).not.toBeInTheDocument();
  });

  it('signs in with the only second factor left to the backend ("auto") and shows the account', async () => {
    const { fake, user } = await openLogin();
    fake.respond('auth.login', ok(profile({ cluster: 'prod' })));
    await fillIn(user);
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(fake.callsTo('auth.login')).toEqual([
      { address: 'auth.example.com:3025', user: 'alice', password: 'correct horse', secondFactor: 'auto' },
    ]);
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
    expect(screen.getByText('Signed in as alice')).toBeInTheDocument();
    expect(
      within(screen.getByRole('navigation', { name: 'Main' })).getByRole('button', { name: 'Account' }),
    ).toBeInTheDocument();
  });

  it('offers a choice of second factor when the cluster takes both, and sends the one chosen', async () => {
    const { fake, user } = await openLogin(cluster({ name: 'prod', secondFactors: ['otp', 'webauthn'] }));
    fake.respond('auth.login', fail('ACCESS_DENIED', 'denied'));
    const group = screen.getByRole('radiogroup', { name: 'Second factor' });
    expect(within(group).getByRole('radio', { name: 'Security key' })).toBeChecked();
    await fillIn(user);
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(fake.callsTo('auth.login').at(-1)?.secondFactor).toBe('key');

    await user.click(within(group).getByRole('radio', { name: 'One-time code' }));
    await user.type(screen.getByLabelText('Password'), 'again');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(fake.callsTo('auth.login').at(-1)?.secondFactor).toBe('otp');
  });

  it('says the user name or password is wrong, clears the password and puts focus on it', async () => {
    const { fake, user } = await openLogin();
    fake.respond('auth.login', fail('ACCESS_DENIED', 'access denied'));
    await fillIn(user);
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong user name or password.');
    expect(screen.getByLabelText('Password')).toHaveValue('');
    expect(screen.getByLabelText('Password')).toHaveFocus();
    expect(screen.getByRole('textbox', { name: 'User' })).toHaveValue('alice');
  });

  it("keeps the last error's space (hidden and silent) while a new attempt runs, then replaces it", async () => {
    const { fake, user } = await openLogin();
    fake.respond('auth.login', fail('ACCESS_DENIED', 'access denied'));
    await fillIn(user);
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    const first = await screen.findByRole('alert');
    let finish: (value: ReturnType<typeof fail>) => void = () => {};
    fake.respond('auth.login', () => new Promise((resolve) => (finish = resolve)));
    await user.type(screen.getByLabelText('Password'), 'again{Enter}');
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    const held = first.ownerDocument.querySelector('.alert-held');
    expect(held).toHaveAttribute('aria-hidden', 'true');
    expect(held).toHaveTextContent('Wrong user name or password.');
    await act(async () =>
      finish(fail('LOCKED', 'locked', { lockedUntilMs: new Date(2030, 0, 1, 9, 5).getTime() })),
    );
    expect(await screen.findByRole('alert')).toHaveTextContent('locked until 09:05');
    expect(first.ownerDocument.querySelector('.alert-held')).toBeNull();
  });

  it('says until when a locked account stays locked, in local time', async () => {
    const { fake, user } = await openLogin();
    const lockedUntilMs = new Date(2030, 4, 6, 17, 45).getTime();
    fake.respond('auth.login', fail('LOCKED', 'locked', { lockedUntilMs }));
    await fillIn(user);
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('This account is locked until 17:45');
  });

  it('asks for the user and the password before calling', async () => {
    const { fake, user } = await openLogin();
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(screen.getByRole('alert')).toHaveTextContent('User: Give your user name.');
    expect(screen.getByRole('textbox', { name: 'User' })).toHaveFocus();
    await user.type(screen.getByRole('textbox', { name: 'User' }), 'alice{Enter}');
    expect(screen.getByRole('alert')).toHaveTextContent('Password: Give your password.');
    expect(screen.getByLabelText('Password')).toHaveFocus();
    expect(fake.callsTo('auth.login')).toEqual([]);
  });

  it('shows the touch prompt only while it is open during the ceremony, and a cancel ends it', async () => {
    const { fake, user } = await openLogin();
    const reply = deferred<Result<ProfileView>>();
    fake.respond('auth.login', () => reply.promise);
    fake.respond('prompts.cancel', () => {
      reply.resolve(fail('CANCELLED', 'Cancelled. Nothing was changed.'));
      return ok(null);
    });
    await fillIn(user);
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    act(() => fake.emit('onPrompt', { id: 'p1', kind: 'tapKey', message: 'Tap any security key' }));
    expect(screen.getByRole('dialog', { name: 'Security key' })).toHaveTextContent('Tap any security key');
    act(() => fake.emit('onPromptClosed', { id: 'p1', reason: 'finished' }));
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();

    act(() => fake.emit('onPrompt', { id: 'p2', kind: 'keyPin', retriesLeft: 8 }));
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p2' }]);
    expect(await screen.findByRole('alert')).toHaveTextContent('Cancelled. Nothing was changed.');
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeEnabled();
  });

  it('signs in without a password when the cluster allows it, with the user if one is typed', async () => {
    const { fake, user } = await openLogin(cluster({ name: 'prod', allowPasswordless: true }));
    fake.respond('auth.loginPasswordless', fail('CANCELLED', 'cancelled'));
    await user.click(screen.getByRole('button', { name: 'Sign in without a password' }));
    expect(fake.callsTo('auth.loginPasswordless')).toEqual([{ address: 'auth.example.com:3025' }]);
    fake.respond('auth.loginPasswordless', ok(profile()));
    await user.type(screen.getByRole('textbox', { name: 'User' }), 'alice');
    await user.click(screen.getByRole('button', { name: 'Sign in without a password' }));
    expect(fake.callsTo('auth.loginPasswordless').at(-1)).toEqual({
      address: 'auth.example.com:3025',
      user: 'alice',
    });
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
    expect(fake.callsTo('auth.login')).toEqual([]);
  });

  it('shows progress only once a sign-in has lasted 300 ms, without moving the form', async () => {
    vi.useFakeTimers();
    const fake = fakeKeyport();
    const reply = deferred<Result<ProfileView>>();
    fake.respond('auth.login', () => reply.promise);
    const onSignedIn = vi.fn();
    renderWithKeyport(fake.api, <Login cluster={cluster({ name: 'prod' })} onSignedIn={onSignedIn} />);
    fireEvent.change(screen.getByRole('textbox', { name: 'User' }), { target: { value: 'alice' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'pw' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await act(async () => {});

    const form = screen.getByRole('form', { name: 'Sign in to prod' });
    expect(form).toHaveAttribute('aria-busy', 'true');
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeDisabled();
    await act(() => vi.advanceTimersByTimeAsync(299));
    expect(screen.queryByText('Signing in…')).not.toBeInTheDocument();
    await act(() => vi.advanceTimersByTimeAsync(1));
    expect(screen.getByText('Signing in…')).toBeInTheDocument();

    await act(async () => reply.resolve(ok(profile())));
    expect(screen.queryByText('Signing in…')).not.toBeInTheDocument();
    expect(onSignedIn).toHaveBeenCalledWith(expect.objectContaining({ user: 'alice' }));
  });

  it('shows no progress at all for a call that answers within 300 ms', async () => {
    vi.useFakeTimers();
    const fake = fakeKeyport();
    fake.respond('auth.login', fail('ACCESS_DENIED', 'denied'));
    renderWithKeyport(fake.api, <Login cluster={cluster()} onSignedIn={() => {}} />);
    fireEvent.change(screen.getByRole('textbox', { name: 'User' }), { target: { value: 'alice' } });
    fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'pw' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await act(async () => {});
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(screen.queryByText('Signing in…')).not.toBeInTheDocument();
    expect(screen.getByRole('alert')).toHaveTextContent('Wrong user name or password.');
  });

  it('completes a sign-in with a one-time code using the keyboard only', async () => {
    const fake = fakeKeyport({ clusters: [cluster({ name: 'prod', secondFactors: ['otp', 'webauthn'] })] });
    const user = userEvent.setup();
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Sign in to prod' });
    const reply = deferred<Result<ProfileView>>();
    fake.respond('auth.login', () => reply.promise);

    // The form opens with the focus on the User field (moved there by an effect: waited for).
    await waitFor(() => expect(screen.getByRole('textbox', { name: 'User' })).toHaveFocus());
    await user.keyboard('alice');
    await user.tab();
    await user.keyboard('correct horse');
    await user.tab();
    expect(screen.getByRole('radio', { name: 'Security key' })).toHaveFocus();
    await user.keyboard('{ArrowRight}');
    expect(screen.getByRole('radio', { name: 'One-time code' })).toBeChecked();
    await user.tab();
    expect(screen.getByRole('button', { name: 'Sign in' })).toHaveFocus();
    await user.keyboard('{Enter}');
    expect(fake.callsTo('auth.login')).toEqual([
      { address: 'auth.example.com:3025', user: 'alice', password: 'correct horse', secondFactor: 'otp' },
    ]);

    act(() => fake.emit('onPrompt', { id: 'p1', kind: 'otpCode' }));
    expect(screen.getByRole('textbox', { name: 'Code' })).toHaveFocus();
    await user.keyboard('123456{Enter}');
    expect(fake.callsTo('prompts.answer')).toEqual([
      { id: 'p1', value: { kind: 'otpCode', code: '123456' } },
    ]);

    await act(async () => reply.resolve(ok(profile({ cluster: 'prod' }))));
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
  });
});
