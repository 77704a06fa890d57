// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { DeepLinkRequest, Result, WebApprovalDone, WebApprovalView } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
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

const readyView: WebApprovalView = {
  kind: 'ready',
  cluster: request.cluster,
  user: 'alice',
  browserAddr: 'ipv4:192.0.2.7:51234',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140',
  code: '123-456',
  expiresMs: 1_700_000_300_000,
};

const signInView: WebApprovalView = {
  kind: 'signInRequired',
  cluster: request.cluster,
  reason: 'Sign in to example to see what this browser asks.',
};

describe('the screen a keyport:// link fills in', () => {
  it('shows what the cluster says of the request: user, browser address and user agent, the code; Authorize on', async () => {
    const { fake } = await start({ profile: profile() });
    fake.respond('deepLinks.inspect', ok(readyView));
    expect(fake.listenerCount('onDeepLink')).toBe(1);
    act(() => fake.emit('onDeepLink', request));
    const section = (await heading()).closest('section')!;
    expect(await within(section).findByText('123-456')).toBeInTheDocument();
    expect(section).toHaveTextContent('A browser asks to be verified by this device.');
    expect(section).toHaveTextContent('example (auth.example.com:3025)');
    expect(section).toHaveTextContent('alice');
    expect(section).toHaveTextContent('ipv4:192.0.2.7:51234');
    expect(section).toHaveTextContent('Chrome/140');
    const authorize = within(section).getByRole('button', { name: 'Authorize' });
    expect(authorize).toBeEnabled();
    expect(authorize).toHaveAccessibleDescription('123-456');
    // The link called nothing that acts by itself: only the read.
    expect(fake.calls.map((c) => c.method)).not.toContain('deepLinks.authorize');
    expect(fake.callsTo('deepLinks.inspect')).toEqual([{ id: 'req-42' }]);
    expect(await seriousViolations()).toEqual([]);
  });

  it('Authorize asks the backend with the request id only, and says the browser opens to finish', async () => {
    const { fake, user } = await start({ profile: profile() });
    fake.respond('deepLinks.inspect', ok(readyView));
    const answer = deferred<Result<WebApprovalDone>>();
    fake.respond('deepLinks.authorize', () => answer.promise);
    act(() => fake.emit('onDeepLink', request));
    await user.click(await screen.findByRole('button', { name: 'Authorize' }));
    expect(screen.getByRole('button', { name: 'Authorizing…' })).toBeDisabled();
    expect(fake.callsTo('deepLinks.authorize')).toEqual([{ id: 'req-42' }]);
    await act(async () => answer.resolve(ok({ assetTag: 'LAPTOP-7' })));
    expect(await screen.findByText(/Approved by this device \(LAPTOP-7\)/)).toBeInTheDocument();
    expect(await seriousViolations()).toEqual([]);
    await user.click(screen.getByRole('button', { name: 'Close' }));
    expect(await screen.findByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
  });

  it('a signed-out or expired app asks for a sign-in in place, not an error, then shows the request', async () => {
    const { fake } = await start();
    fake.respond('deepLinks.inspect', ok(signInView));
    act(() => fake.emit('onDeepLink', request));
    const section = (await heading()).closest('section')!;
    expect(
      await within(section).findByText(/Sign in to example to see what this browser asks/),
    ).toBeInTheDocument();
    expect(
      within(section).getByRole('heading', { level: 2, name: 'Sign in to example' }),
    ).toBeInTheDocument();
    expect(within(section).queryByRole('alert')).not.toBeInTheDocument();
    expect(await seriousViolations()).toEqual([]);
    // Signed in (here or by the CLI): the same request is asked again and shown.
    fake.respond('deepLinks.inspect', ok(readyView));
    act(() => fake.emit('onProfileChanged', { address: 'auth.example.com:3025', profile: profile() }));
    expect(await within(section).findByText('123-456')).toBeInTheDocument();
    expect(fake.callsTo('deepLinks.inspect')).toHaveLength(2);
  });

  it('a session that ended during Authorize goes back to the sign-in; a refusal says why', async () => {
    const { fake, user } = await start({ profile: profile() });
    fake.respond('deepLinks.inspect', ok(readyView));
    fake.respond('deepLinks.authorize', fail('CERTIFICATE_EXPIRED', 'Your session has expired.'));
    act(() => fake.emit('onDeepLink', request));
    await user.click(await screen.findByRole('button', { name: 'Authorize' }));
    fake.respond('deepLinks.inspect', ok(signInView));
    await user.click(await screen.findByRole('button', { name: 'Authorize' }));
    expect(await screen.findByText(/Sign in to example to see/)).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();

    fake.respond('deepLinks.inspect', ok(readyView));
    fake.respond(
      'deepLinks.authorize',
      fail('DEVICE_TRUST_REQUIRED', 'Only a trusted device can verify a browser: enroll this device.'),
    );
    act(() => fake.emit('onDeepLink', { ...request, id: 'req-43' }));
    await user.click(await screen.findByRole('button', { name: 'Authorize' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(/trusted device/);
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
    const { fake } = await start({ profile: profile() });
    fake.respond('deepLinks.inspect', ok(readyView));
    act(() => fake.emit('onDeepLink', request));
    expect(await screen.findByText('123-456')).toBeInTheDocument();
    fake.respond('deepLinks.inspect', ok({ ...readyView, code: '654-321' }));
    act(() => fake.emit('onDeepLink', { ...request, id: 'req-43' }));
    expect(await screen.findByText('654-321')).toBeInTheDocument();
    expect(screen.queryByText('123-456')).not.toBeInTheDocument();
    expect(fake.callsTo('deepLinks.inspect')).toEqual([{ id: 'req-42' }, { id: 'req-43' }]);
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
