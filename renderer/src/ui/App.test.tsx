// @vitest-environment jsdom
import '../testing/setup';
import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import { cluster, device, fail, fakeKeyport, ok, profile } from '../testing/fakeKeyport';
import type { FakeState } from '../testing/fakeKeyport';
import { App } from './App';

/** axe-core's serious and critical findings. jsdom has no layout, so contrast is checked in the e2e tests. */
async function seriousViolations() {
  // As renderer/index.html sets them:
  document.documentElement.lang = 'en';
  document.title = 'Keyport Connect';
  // axe probes icon fonts with a canvas, which jsdom lacks (and says so on the console).
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  const results = await axe.run(document, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function start(state: FakeState = {}) {
  const fake = fakeKeyport(state);
  const view = render(<App api={fake.api} />);
  await act(async () => {});
  return { fake, view, user: userEvent.setup() };
}

describe('App', () => {
  it('asks for the app info, the clusters and the session at startup, and listens to every event', async () => {
    const { fake } = await start();
    expect(fake.calls.map((c) => c.method).sort()).toEqual([
      'app.info',
      'app.ready',
      'auth.sessionNotices',
      'auth.status',
      'clusters.list',
      'deepLinks.current',
      'prompts.current',
    ]);
    expect(fake.listenerCount('onPrompt')).toBe(1);
    expect(fake.listenerCount('onPromptClosed')).toBe(1);
    expect(fake.listenerCount('onProfileChanged')).toBe(1);
    expect(fake.listenerCount('onDeepLink')).toBe(1);
    expect(fake.listenerCount('onSessionNotice')).toBe(1);
  });

  it('tells the host it is ready once, when the first screen takes input, not while it loads', async () => {
    const fake = fakeKeyport({ clusters: [cluster({ name: 'prod' })] });
    let releaseStatus: () => void = () => {};
    fake.respond('auth.status', () => new Promise((resolve) => (releaseStatus = () => resolve(ok(null)))));
    const user = userEvent.setup();
    render(<App api={fake.api} />);
    await act(async () => {});
    expect(fake.callsTo('app.ready')).toHaveLength(0);
    await act(async () => releaseStatus());
    expect(await screen.findByRole('textbox', { name: 'User' })).toBeInTheDocument();
    // Called from an effect after the screen is committed: waited for.
    await waitFor(() => expect(fake.callsTo('app.ready')).toHaveLength(1));
    await user.click(screen.getByRole('button', { name: 'Clusters' }));
    expect(fake.callsTo('app.ready')).toHaveLength(1);
  });

  it('stops listening when it goes away', async () => {
    const { fake, view } = await start();
    view.unmount();
    expect(fake.listenerCount('onPrompt')).toBe(0);
    expect(fake.listenerCount('onPromptClosed')).toBe(0);
    expect(fake.listenerCount('onProfileChanged')).toBe(0);
    expect(fake.listenerCount('onDeepLink')).toBe(0);
  });

  it('has a header with the app name and the main navigation', async () => {
    await start({ clusters: [cluster()], profile: profile() });
    const header = screen.getByRole('banner');
    expect(within(header).getByRole('heading', { level: 1, name: 'Keyport Connect' })).toBeInTheDocument();
    const nav = within(header).getByRole('navigation', { name: 'Main' });
    expect(within(nav).getByRole('button', { name: 'Clusters' })).toBeInTheDocument();
    expect(within(nav).getByRole('button', { name: 'Account' })).toHaveAttribute('aria-current', 'page');
    expect(header).toHaveTextContent('Signed in as alice');
    expect(screen.getAllByRole('main')).toHaveLength(1);
  });

  it('shows a startup error with a way to try again', async () => {
    const fake = fakeKeyport({ clusters: [cluster()] });
    fake.respond('auth.status', fail('PRECONDITION_FAILED', 'locked', { keystoreCode: 'KEYCHAIN_LOCKED' }));
    const user = userEvent.setup();
    render(<App api={fake.api} />);
    expect(await screen.findByRole('alert')).toHaveTextContent('The OS keychain is locked. Unlock it');
    fake.respond('auth.status', ok(profile()));
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(fake.callsTo('auth.status')).toHaveLength(2);
  });

  it('has no serious accessibility findings on any screen or dialog', async () => {
    const { fake, user } = await start({
      clusters: [cluster({ secondFactors: ['otp', 'webauthn'], allowPasswordless: true })],
      devices: [device()],
    });
    await screen.findByRole('heading', { level: 2, name: 'Sign in to example' });
    expect(await seriousViolations()).toEqual([]);

    await user.click(screen.getByRole('button', { name: 'Clusters' }));
    expect(await seriousViolations()).toEqual([]);
    await user.click(screen.getByRole('button', { name: 'Remove example' }));
    expect(await seriousViolations()).toEqual([]);
    await user.keyboard('{Escape}');

    act(() => fake.emit('onProfileChanged', { address: 'auth.example.com:3025', profile: profile() }));
    await screen.findByRole('list', { name: 'MFA devices' });
    expect(await seriousViolations()).toEqual([]);

    act(() => fake.emit('onPrompt', { id: 'p1', kind: 'keyPin', retriesLeft: 3 }));
    expect(await seriousViolations()).toEqual([]);
    // The hardware-key prompts that the Chromium e2e does not reach.
    act(() => fake.emit('onPrompt', { id: 'p2', kind: 'newPivPin', secret: 'pin' }));
    expect(await seriousViolations()).toEqual([]);
    act(() =>
      fake.emit('onPrompt', {
        id: 'p3',
        kind: 'relogin',
        cluster: 'c:3025',
        user: 'ivy',
        reason: ['x'],
        cause: 'other',
        passwordless: true,
        secondFactors: [],
        allowPasswordless: false,
      }),
    );
    expect(await seriousViolations()).toEqual([]);
  });
});
