// deliverSessionNotices' rules, with a recording notifier in place of notify-send and a backend that only
// emits notices and records relogins. The whole path (the real backend and session watcher on a lab clock,
// notify-send, the lab's notification server, a real Chromium window) is
// test/browser-host-notifications.test.ts.
import { describe, expect, it } from 'vitest';
import { sessionNoticeSchema } from '../../preload/contract';
import type { SessionNotice } from '../../preload/contract';
import { clockTime } from '../backend/relogin';
import type { DesktopNotice, DesktopNotifier } from './desktop-notifications';
import { deliverSessionNotices, desktopNotice, reloginReason } from './session-notices';

const EXPIRES = Date.UTC(2026, 11, 7, 14, 2);
const endsSoon: SessionNotice = {
  kind: 'endsSoon',
  address: 'lab.example:3025',
  user: 'alice',
  expiresMs: EXPIRES,
};
const ended: SessionNotice = { ...endsSoon, kind: 'ended' };

function harness(options: { shown?: number; reloginFails?: boolean } = {}) {
  let shown = options.shown ?? 0;
  const listeners = new Set<(notice: SessionNotice) => void>();
  const profileListeners = new Set<
    (change: { address: string; profile: { expiresMs: number } | null }) => void
  >();
  const shownNotices: { notice: DesktopNotice; click: () => void }[] = [];
  const relogins: { cluster: string; reason: string[] }[] = [];
  const opened: number[] = [];
  const log: string[] = [];
  const notifier: DesktopNotifier = {
    show: (notice, click) => void shownNotices.push({ notice, click }),
    waiting: 0,
    close: async () => {},
  };
  const stop = deliverSessionNotices({
    backend: {
      on: ((event: string, listener: never) => {
        const set = event === 'onSessionNotice' ? listeners : profileListeners;
        expect(['onSessionNotice', 'onProfileChanged']).toContain(event);
        set.add(listener);
        return () => void set.delete(listener);
      }) as never,
      relogin: {
        retryWithRelogin: (_cluster, action) => action(),
        signInAgain: async (cluster, reason) => {
          relogins.push({ cluster, reason });
          if (options.reloginFails) throw new Error('Sign-in cancelled: your session is as it was.');
          return {} as never;
        },
      },
    },
    notifier,
    shownWindows: () => shown,
    openWindow: async () => {
      opened.push(shown);
      shown += 1;
    },
    log: (line) => log.push(line),
  });
  const emit = (notice: SessionNotice) => {
    for (const listener of listeners) listener(sessionNoticeSchema.parse(notice));
  };
  const profileChanged = (expiresMs: number | null) => {
    for (const listener of profileListeners) {
      listener({ address: endsSoon.address, profile: expiresMs === null ? null : { expiresMs } });
    }
  };
  return {
    emit,
    profileChanged,
    shownNotices,
    relogins,
    opened,
    log,
    stop,
    setShown: (n: number) => (shown = n),
  };
}

describe('desktopNotice', () => {
  it('names the cluster, the user and the time, and nothing else', () => {
    const at = clockTime(EXPIRES);
    expect(desktopNotice(endsSoon)).toEqual({
      summary: 'Keyport session ends soon',
      body: `Your session on lab.example:3025 as alice ends at ${at}. Click to sign in again.`,
      actionLabel: 'Sign in again',
    });
    expect(desktopNotice(ended)).toEqual({
      summary: 'Keyport session ended',
      body: `Your session on lab.example:3025 as alice ended at ${at}. Click to sign in again.`,
      actionLabel: 'Sign in again',
      urgency: 'critical',
    });
    expect(reloginReason(ended)).toEqual([`Your session ended at ${at}.`]);
    expect(reloginReason(endsSoon)).toEqual([`Your session ends at ${at}.`]);
  });
});

describe('deliverSessionNotices', () => {
  it('notifies while no window shows the app, once per session and kind', () => {
    const { emit, shownNotices } = harness();
    emit(endsSoon);
    emit(endsSoon);
    emit(ended);
    emit({ ...endsSoon, expiresMs: EXPIRES + 3_600_000 });
    expect(shownNotices.map((n) => n.notice.summary)).toEqual([
      'Keyport session ends soon',
      'Keyport session ended',
      'Keyport session ends soon',
    ]);
  });

  it('says nothing on the desktop while a window shows the app (it says it there)', () => {
    const { emit, shownNotices, setShown } = harness({ shown: 1 });
    emit(endsSoon);
    expect(shownNotices).toEqual([]);
    // Not spent by the shown window: hidden a moment later, the same notice goes to the desktop.
    setShown(0);
    emit(endsSoon);
    expect(shownNotices).toHaveLength(1);
  });

  it('a click opens a window where none shows the app, then asks for the relogin of that cluster', async () => {
    const { emit, shownNotices, relogins, opened } = harness();
    emit(ended);
    shownNotices[0]?.click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(opened).toEqual([0]);
    expect(relogins).toEqual([{ cluster: 'lab.example:3025', reason: reloginReason(ended) }]);
  });

  it('a click with a window shown opens none; a cancelled relogin is only logged', async () => {
    const { emit, shownNotices, relogins, opened, log, setShown } = harness({ reloginFails: true });
    emit(endsSoon);
    setShown(1);
    shownNotices[0]?.click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(opened).toEqual([]);
    expect(relogins).toHaveLength(1);
    expect(log).toEqual([
      'Sign-in from the notification ended: Sign-in cancelled: your session is as it was.',
    ]);
  });

  it('a click on a notice whose session was renewed or signed out since opens the window but asks nothing', async () => {
    const { emit, profileChanged, shownNotices, relogins, opened } = harness();
    profileChanged(EXPIRES);
    emit(endsSoon);
    emit(ended);
    profileChanged(EXPIRES + 3_600_000);
    shownNotices[0]?.click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(opened).toEqual([0]);
    profileChanged(null);
    shownNotices[1]?.click();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(relogins).toEqual([]);
  });

  it('stops listening when stopped', () => {
    const { emit, profileChanged, shownNotices, relogins, stop } = harness();
    stop();
    profileChanged(EXPIRES + 1);
    emit(endsSoon);
    expect(relogins).toEqual([]);
    expect(shownNotices).toEqual([]);
  });
});
