// @vitest-environment jsdom
import '../../testing/setup';
import { act, cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { ClusterView, ConnectorView, ProfileView, Result } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import { App } from '../App';

const labIdp: ConnectorView = { name: 'lab', display: 'Lab IdP' };
const okta: ConnectorView = { name: 'okta-corp', display: 'Okta' };

async function seriousViolations() {
  document.documentElement.lang = 'en';
  document.title = 'Keyport Connect';
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  const results = await axe.run(document, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function openLogin(
  connectors: ConnectorView[] = [labIdp],
  prod: ClusterView = cluster({ name: 'prod' }),
) {
  const fake = fakeKeyport({ clusters: [prod], connectors });
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  await screen.findByRole('heading', { level: 2, name: `Sign in to ${prod.name}` });
  await act(async () => {});
  return { fake, user };
}

const ssoButton = (display: string) => screen.findByRole('button', { name: `Sign in with ${display}` });

describe('Sign in with an SSO connector', () => {
  it('shows one "Sign in with DISPLAY" button per connector the cluster lists, asked for that cluster', async () => {
    const { fake } = await openLogin([labIdp, okta]);
    expect(fake.callsTo('auth.connectors')).toEqual([{ address: 'auth.example.com:3025' }]);
    const group = screen.getByRole('group', { name: 'Single sign-on' });
    expect(
      within(group)
        .getAllByRole('button')
        .map((b) => b.textContent),
    ).toEqual(['Sign in with Lab IdP', 'Sign in with Okta']);
    expect(await seriousViolations()).toEqual([]);
  });

  it('shows no SSO buttons for a cluster without connectors, or one that cannot be asked', async () => {
    await openLogin([]);
    expect(screen.queryByRole('group', { name: 'Single sign-on' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeEnabled();
    cleanup();

    const fake = fakeKeyport({ clusters: [cluster({ name: 'prod' })] });
    fake.respond('auth.connectors', fail('UNAVAILABLE', 'down'));
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Sign in to prod' });
    await act(async () => {});
    expect(fake.callsTo('auth.connectors')).toHaveLength(1);
    expect(screen.queryByRole('group', { name: 'Single sign-on' })).not.toBeInTheDocument();
    // An unreachable cluster is said when a sign-in is tried, not while the form opens.
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('signs in through the connector by name, waits for the browser with Cancel, and shows the account', async () => {
    const { fake, user } = await openLogin();
    const reply = deferred<Result<ProfileView>>();
    fake.respond('auth.loginSso', () => reply.promise);
    await user.click(await ssoButton('Lab IdP'));
    expect(fake.callsTo('auth.loginSso')).toEqual([{ address: 'auth.example.com:3025', connector: 'lab' }]);
    expect(fake.callsTo('auth.login')).toEqual([]);
    // Every way to sign in waits while this one runs.
    expect(screen.getByRole('button', { name: 'Sign in with Lab IdP' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Sign in' })).toBeDisabled();

    act(() =>
      fake.emit('onPrompt', { id: 'p1', kind: 'browserSignIn', cluster: 'prod', connector: 'Lab IdP' }),
    );
    const waiting = screen.getByRole('dialog', { name: 'Sign in with Lab IdP' });
    expect(within(waiting).getByRole('status')).toHaveTextContent(
      'Continue in your browser: sign in with Lab IdP on the page that opened. Keyport Connect signs you in to prod once you have.',
    );
    expect(within(waiting).getByRole('button', { name: 'Cancel' })).toBeEnabled();
    expect(await seriousViolations()).toEqual([]);

    act(() => fake.emit('onPromptClosed', { id: 'p1', reason: 'finished' }));
    await act(async () =>
      reply.resolve(ok(profile({ cluster: 'prod', user: 'alice@keyport.lab', roles: ['editor'] }))),
    );
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
    expect(screen.getByText('Signed in as alice@keyport.lab')).toBeInTheDocument();
  });

  it("cancels from the waiting prompt: the login ends with CANCELLED's words and the form is ready again", async () => {
    const { fake, user } = await openLogin();
    const reply = deferred<Result<ProfileView>>();
    fake.respond('auth.loginSso', () => reply.promise);
    fake.respond('prompts.cancel', () => {
      reply.resolve(fail('CANCELLED', 'Login cancelled: nothing was saved.'));
      act(() => fake.emit('onPromptClosed', { id: 'p1', reason: 'cancelled' }));
      return ok(null);
    });
    await user.click(await ssoButton('Lab IdP'));
    act(() =>
      fake.emit('onPrompt', { id: 'p1', kind: 'browserSignIn', cluster: 'prod', connector: 'Lab IdP' }),
    );
    await user.click(
      within(screen.getByRole('dialog', { name: 'Sign in with Lab IdP' })).getByRole('button', {
        name: 'Cancel',
      }),
    );
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p1' }]);
    expect(await screen.findByRole('alert')).toHaveTextContent('Cancelled. Nothing was changed.');
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Sign in with Lab IdP' })).toBeEnabled();
    // The focus, lost while the button was disabled, is back on it: Enter tries again.
    await waitFor(() => expect(screen.getByRole('button', { name: 'Sign in with Lab IdP' })).toHaveFocus());
    expect(await seriousViolations()).toEqual([]);
  });

  it('Escape cancels the waiting prompt as well', async () => {
    const { fake, user } = await openLogin();
    fake.respond('auth.loginSso', () => new Promise(() => {}));
    await user.click(await ssoButton('Lab IdP'));
    act(() =>
      fake.emit('onPrompt', { id: 'p7', kind: 'browserSignIn', cluster: 'prod', connector: 'Lab IdP' }),
    );
    screen.getByRole('dialog', { name: 'Sign in with Lab IdP' });
    await user.keyboard('{Escape}');
    expect(fake.callsTo('prompts.cancel')).toEqual([{ id: 'p7' }]);
  });

  it('says the cluster\'s reason for a refused SSO login, not "wrong password"; a password login\'s refusal still does', async () => {
    const { fake, user } = await openLogin();
    fake.respond(
      'auth.loginSso',
      fail('ACCESS_DENIED', "The identity provider's sign-in gives no access to prod."),
    );
    await user.click(await ssoButton('Lab IdP'));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent("The identity provider's sign-in gives no access to prod.");
    expect(alert).not.toHaveTextContent(/password/);
    expect(await seriousViolations()).toEqual([]);

    // The rest of the vocabulary is every login's.
    fake.respond('auth.loginSso', fail('UNAVAILABLE', 'The IdP is down'));
    await user.click(screen.getByRole('button', { name: 'Sign in with Lab IdP' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Cannot reach the cluster.');

    fake.respond('auth.login', fail('ACCESS_DENIED', 'access denied'));
    await user.type(screen.getByRole('textbox', { name: 'User' }), 'alice');
    await user.type(screen.getByLabelText('Password'), 'wrong');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Wrong user name or password.');
  });
});
