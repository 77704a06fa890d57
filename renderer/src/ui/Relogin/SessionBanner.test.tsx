// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import axe from 'axe-core';
import { describe, expect, it, vi } from 'vitest';
import type { ProfileView, SessionNotice } from '../../../../preload/contract';
import { cluster, deferred, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import type { FakeKeyport } from '../../testing/fakeKeyport';
import { sessionBanner, untilNextChange } from '../../services/sessionBanner';
import { formatClock } from '../../services/time';
import { App } from '../App';

const MINUTE = 60_000;

async function seriousViolations() {
  document.documentElement.lang = 'en';
  document.title = 'Keyport Connect';
  vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue(null);
  const results = await axe.run(document, { rules: { 'color-contrast': { enabled: false } } });
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

function notice(kind: SessionNotice['kind'], of: ProfileView, nowMs: number): SessionNotice {
  return { kind, address: of.address, user: of.user, expiresMs: of.expiresMs, nowMs };
}

async function start(signedIn: ProfileView): Promise<FakeKeyport> {
  const fake = fakeKeyport({ clusters: [cluster()], profile: signedIn });
  render(<App api={fake.api} />);
  await screen.findByRole('heading', { level: 2, name: 'Account' });
  return fake;
}

const banner = () => screen.queryByRole('region', { name: 'Session' });

describe('the session banner', () => {
  it('says nothing until the backend says the session ends soon, then counts down by the minute', async () => {
    const now = Date.now();
    const signedIn = profile({ expiresMs: now + 9 * MINUTE + 30_000 });
    const fake = await start(signedIn);
    expect(banner()).toBeNull();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now });
    act(() => fake.emit('onSessionNotice', notice('endsSoon', signedIn, now)));
    expect(within(banner()!).getByRole('status')).toHaveTextContent('Session ends in 9 min');
    expect(banner()).toHaveTextContent('Session ends in 9 min — Sign in again');
    act(() => vi.advanceTimersByTime(31_000));
    expect(banner()).toHaveTextContent('Session ends in 8 min');
    // Each minute's timer is set once the minute before has shown.
    for (let minute = 7; minute >= 1; minute--) {
      act(() => vi.advanceTimersByTime(MINUTE));
      expect(banner()).toHaveTextContent(`Session ends in ${minute} min`);
    }
    act(() => vi.advanceTimersByTime(MINUTE));
    expect(banner()).toHaveTextContent('Session ends in less than a minute');
    // At the expiry it says so at once, without waiting for the backend's "ended".
    act(() => vi.advanceTimersByTime(MINUTE));
    expect(banner()).toHaveTextContent(`Your session ended at ${formatClock(signedIn.expiresMs)}`);
    vi.useRealTimers();
    expect(await seriousViolations()).toEqual([]);
  });

  it("counts on the service clock: a notice's time, not the window's (the lab clock runs ahead)", async () => {
    const ahead = Date.now() + 3 * 3600_000;
    const signedIn = profile({ expiresMs: ahead + 5 * MINUTE + 10_000 });
    const fake = await start(signedIn);
    act(() => fake.emit('onSessionNotice', notice('endsSoon', signedIn, ahead)));
    expect(banner()).toHaveTextContent('Session ends in 5 min');
  });

  it('after the expiry: "Your session ended at HH:MM — Sign in again"', async () => {
    const signedIn = profile({ expiresMs: Date.now() + 2 * MINUTE });
    const fake = await start(signedIn);
    act(() => fake.emit('onSessionNotice', notice('ended', signedIn, signedIn.expiresMs)));
    expect(banner()).toHaveTextContent(
      `Your session ended at ${formatClock(signedIn.expiresMs)} — Sign in again`,
    );
    expect(await seriousViolations()).toEqual([]);
  });

  it('a window that opens after the notice (a reload, a window reopened) shows the banner at once', async () => {
    const signedIn = profile({ expiresMs: Date.now() - MINUTE });
    const fake = fakeKeyport({ clusters: [cluster()], profile: signedIn });
    fake.respond('auth.sessionNotices', ok([notice('ended', signedIn, Date.now())]));
    render(<App api={fake.api} />);
    await screen.findByRole('heading', { level: 2, name: 'Account' });
    await expect
      .poll(() => banner()?.textContent)
      .toBe(`Your session ended at ${formatClock(signedIn.expiresMs)} — Sign in again`);
  });

  it('"Sign in again" asks for the relogin at once, and the renewed session takes the banner away', async () => {
    const signedIn = profile({ expiresMs: Date.now() + 5 * MINUTE });
    const fake = await start(signedIn);
    const renewed = profile({ expiresMs: Date.now() + 12 * 3600_000 });
    const answered = deferred<ReturnType<typeof ok<ProfileView>>>();
    fake.respond('auth.signInAgain', () => answered.promise);
    act(() => fake.emit('onSessionNotice', notice('endsSoon', signedIn, Date.now())));
    const user = userEvent.setup();
    await user.click(within(banner()!).getByRole('button', { name: 'Sign in again' }));
    expect(fake.callsTo('auth.signInAgain')).toEqual([{ address: signedIn.address }]);
    // One relogin at a time from here: the button waits for it.
    expect(within(banner()!).getByRole('button', { name: 'Sign in again' })).toBeDisabled();
    act(() => fake.emit('onProfileChanged', { address: signedIn.address, profile: renewed }));
    await act(async () => answered.resolve(ok(renewed)));
    expect(banner()).toBeNull();
    // The Account screen stayed, and shows the new session.
    expect(screen.getByRole('heading', { level: 2, name: 'Account' })).toBeInTheDocument();
    // A notice about the old session, arriving late, shows nothing.
    act(() => fake.emit('onSessionNotice', notice('ended', signedIn, signedIn.expiresMs)));
    expect(banner()).toBeNull();
  });

  it('a cancelled relogin leaves the banner as it was; another failure says why', async () => {
    const signedIn = profile({ expiresMs: Date.now() + 5 * MINUTE });
    const fake = await start(signedIn);
    act(() => fake.emit('onSessionNotice', notice('endsSoon', signedIn, Date.now())));
    const user = userEvent.setup();
    fake.respond('auth.signInAgain', fail('CANCELLED', 'Sign-in cancelled: your session is as it was.'));
    await user.click(within(banner()!).getByRole('button', { name: 'Sign in again' }));
    expect(within(banner()!).queryByRole('alert')).toBeNull();
    expect(within(banner()!).getByRole('button', { name: 'Sign in again' })).toBeEnabled();
    fake.respond('auth.signInAgain', fail('UNAVAILABLE', 'The cluster is unreachable.'));
    await user.click(within(banner()!).getByRole('button', { name: 'Sign in again' }));
    expect(await within(banner()!).findByRole('alert')).toHaveTextContent('Cannot reach the cluster.');
    expect(await seriousViolations()).toEqual([]);
  });

  it('is about the signed-in session only: another cluster, or no profile, shows nothing', () => {
    const signedIn = profile({ expiresMs: 10 * MINUTE });
    const other = { ...notice('endsSoon', signedIn, 0), address: 'other.example.com:3025' };
    expect(sessionBanner(other, signedIn, 0)).toBeNull();
    expect(sessionBanner(notice('endsSoon', signedIn, 0), null, 0)).toBeNull();
    expect(sessionBanner(notice('endsSoon', signedIn, 0), signedIn, 0)).toEqual({
      kind: 'endsSoon',
      address: signedIn.address,
      minutesLeft: 10,
    });
    // The next change is the next whole minute left (a millisecond after, to land past it).
    expect(untilNextChange(10 * MINUTE, 30_000)).toBe(30_001);
    expect(untilNextChange(10 * MINUTE, 0)).toBe(MINUTE + 1);
    expect(untilNextChange(10 * MINUTE, 10 * MINUTE)).toBe(0);
  });
});
