// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { DeepLinkRequest } from '../../../../preload/contract';
import { cluster, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import type { FakeState } from '../../testing/fakeKeyport';
import { App } from '../App';

const request: DeepLinkRequest = {
  kind: 'authorizeWebSession',
  cluster: { address: 'auth.example.com:3025', name: 'example' },
  id: 'req-42',
  receivedMs: 1_700_000_000_000,
  expiresMs: 1_700_000_300_000,
};

async function seriousViolations() {
  document.documentElement.lang = 'en';
  document.title = 'Keyport Connect';
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  const results = await axe.run(document, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function start(state: FakeState = {}, held: DeepLinkRequest | null = null) {
  const fake = fakeKeyport({ clusters: [cluster()], ...state });
  fake.respond('deepLinks.current', ok(held));
  render(<App api={fake.api} />);
  await act(async () => {});
  return { fake, user: userEvent.setup() };
}

const heading = () => screen.findByRole('heading', { level: 2, name: 'Verify a browser' });

describe('the screen a keyport:// link fills in', () => {
  it('shows what the browser asks, for which cluster, with Authorize off and saying why', async () => {
    const { fake } = await start();
    expect(fake.listenerCount('onDeepLink')).toBe(1);
    act(() => fake.emit('onDeepLink', request));
    const section = (await heading()).closest('section')!;
    expect(section).toHaveTextContent('A browser asks to be verified by this device.');
    expect(section).toHaveTextContent('example (auth.example.com:3025)');
    expect(section).toHaveTextContent('req-42');
    const authorize = within(section).getByRole('button', { name: 'Authorize' });
    expect(authorize).toBeDisabled();
    expect(authorize).toHaveAccessibleDescription(/comes with the web-session approval/);
    // The link called nothing by itself.
    expect(fake.calls.map((c) => c.method)).not.toContain('deepLinks.dismiss');
    expect(await seriousViolations()).toEqual([]);
  });

  it('Cancel drops the request in the backend and goes back to where the app was', async () => {
    const { fake, user } = await start({ profile: profile() });
    await screen.findByRole('heading', { level: 2, name: 'Account' });
    act(() => fake.emit('onDeepLink', request));
    await heading();
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(fake.callsTo('deepLinks.dismiss')).toEqual([{ id: 'req-42' }]);
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
  });

  it('opens on the held request when the window opens after the link arrived', async () => {
    const { fake } = await start({}, request);
    expect(await heading()).toBeInTheDocument();
    expect(fake.callsTo('deepLinks.current')).toHaveLength(1);
  });

  it('stays on the request when the person signs in meanwhile', async () => {
    const { fake } = await start();
    act(() => fake.emit('onDeepLink', request));
    await heading();
    act(() => fake.emit('onProfileChanged', { address: 'auth.example.com:3025', profile: profile() }));
    expect(await heading()).toBeInTheDocument();
    expect(screen.getByRole('banner')).toHaveTextContent('Signed in as alice');
  });

  it('a newer link replaces the one on screen', async () => {
    const { fake } = await start();
    act(() => fake.emit('onDeepLink', request));
    await heading();
    act(() => fake.emit('onDeepLink', { ...request, id: 'req-43' }));
    expect(await screen.findByText('req-43')).toBeInTheDocument();
    expect(screen.queryByText('req-42')).not.toBeInTheDocument();
  });

  it('says why a link was refused, and Close goes back', async () => {
    const { fake, user } = await start();
    await screen.findByRole('heading', { level: 2, name: 'Sign in to example' });
    act(() =>
      fake.emit('onDeepLink', {
        kind: 'refused',
        error: {
          code: 'NOT_FOUND',
          message:
            'The link is for the cluster "other", which Keyport Connect does not know. Add the cluster first.',
          details: { deepLink: 'unknown-cluster', fieldPath: 'cluster' },
        },
      }),
    );
    expect(
      await screen.findByRole('heading', { level: 2, name: 'This link cannot be opened' }),
    ).toBeInTheDocument();
    expect(screen.getByRole('alert')).toHaveTextContent('does not know. Add the cluster first.');
    expect(await seriousViolations()).toEqual([]);
    await user.click(screen.getByRole('button', { name: 'Close' }));
    expect(await screen.findByRole('heading', { level: 2, name: 'Sign in to example' })).toBeInTheDocument();
  });
});
