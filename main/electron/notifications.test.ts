// Desktop notifications through the Electron host (main.ts, the Electron double): the session watcher's
// "ends soon" and "ended" (real backend, lab clock), a click → the window and the relogin prompt, once per
// session and kind; and closing the window to the tray, with its one-time notice remembered in userData.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { SessionNotice } from '../../preload/contract';
import { createLabClock } from '../../lab/clock';
import { clockTime } from '../backend/relogin';
import { SETTINGS_FILE } from './host-settings';
import { CLOSED_TO_TRAY_TEXT, createNotifier, sessionNoticeText } from './notifications';
import { createFakeElectron } from './testing/electron-double';
import type { FakeNotice } from './testing/electron-double';
import {
  labHome,
  quitHosts,
  savedProfile,
  startOnLabHome,
  startReadyHost,
  tempDir,
  trustedCluster,
} from './testing/host-harness';

const electronDouble = await vi.hoisted(() => import('./testing/electron-double'));
vi.mock('electron', () => electronDouble.electronModule);

const LAB = 'lab.example:3025';
const MINUTE = 60_000;

const lab = labHome('kp-notify-', [trustedCluster(LAB, 'lab')], createLabClock);

const texts = (notices: FakeNotice[]) => notices.map(({ options }) => `${options.title}: ${options.body}`);

describe('session notifications', () => {
  async function startSignedIn(options: { notificationsSupported?: boolean } = {}) {
    const expiresMs = lab.clock.now() + 30 * MINUTE;
    await lab.store.saveProfile(savedProfile(LAB, 'lab', 'alice', expiresMs));
    const host = await startOnLabHome(lab, options);
    // The watcher knows the session (the profile watcher's first read) and the tray knows the cluster's name.
    await expect
      .poll(() => host.fake.trays[0]?.contextMenu?.template[0]?.label)
      .toBe(`lab: alice, until ${clockTime(expiresMs)}`);
    return { ...host, expiresMs };
  }

  it('says "ends soon" 10 minutes before and "ended" at the expiry, once each, with the cluster, user and time', async () => {
    const { fake, backend, expiresMs } = await startSignedIn();
    const time = clockTime(expiresMs);
    backend.sessions.check();
    expect(fake.notifications).toEqual([]);

    lab.clock.advance(expiresMs - 10 * MINUTE - lab.clock.now());
    backend.sessions.check();
    backend.sessions.check();
    expect(texts(fake.notifications)).toEqual([
      `Session ends soon: Your session on lab as alice ends at ${time}. Click to sign in again.`,
    ]);
    expect(fake.notifications[0]?.shown).toBe(1);

    lab.clock.advance(expiresMs - lab.clock.now());
    backend.sessions.check();
    backend.sessions.check();
    expect(texts(fake.notifications)).toEqual([
      `Session ends soon: Your session on lab as alice ends at ${time}. Click to sign in again.`,
      `Session ended: Your session on lab as alice ended at ${time}. Click to sign in again.`,
    ]);
    // Nothing of the certificates or the key in any text.
    expect(JSON.stringify(fake.notifications.map((notice) => notice.options))).not.toContain('SECRET');
  });

  it('a click on "ended" brings the window back from the tray with the relogin prompt for that cluster', async () => {
    const { fake, backend, window, prompts, expiresMs } = await startSignedIn();
    window.close();
    expect(window.isVisible()).toBe(false);
    lab.clock.advance(expiresMs - lab.clock.now() + MINUTE);
    backend.sessions.check();
    const ended = fake.notifications.find((notice) => notice.options.title === 'Session ended');
    if (!ended) throw new Error('no "ended" notification');

    ended.click();
    expect(window.isVisible()).toBe(true);
    await expect.poll(() => prompts.length).toBe(1);
    expect(prompts[0]).toMatchObject({
      kind: 'relogin',
      cluster: LAB,
      user: 'alice',
      reason: [`Your session ended at ${clockTime(expiresMs)}.`],
    });
    await backend.handlers['prompts.cancel']({ id: prompts[0]?.id });
  });

  it('a reloaded or reopened window does not say a notice again', async () => {
    const { fake, backend, window, expiresMs } = await startSignedIn();
    // The renderer reloads (its listeners start afresh); the window is closed for good and a new one opens.
    window.webContents.emit('did-finish-load');
    window.destroy();
    fake.app.emit('activate');
    expect(fake.windows).toHaveLength(2);
    lab.clock.advance(expiresMs - 5 * MINUTE - lab.clock.now());
    backend.sessions.check();
    expect(texts(fake.notifications)).toHaveLength(1);
  });

  it('the host says a notice that reaches it twice only once (a guard of its own besides the watcher’s)', async () => {
    const { fake, backend } = await startReadyHost();
    const notice: SessionNotice = {
      kind: 'endsSoon',
      address: LAB,
      user: 'alice',
      expiresMs: lab.clock.now(),
    };
    backend.emit('onSessionNotice', notice);
    backend.emit('onSessionNotice', { ...notice });
    expect(fake.notifications).toHaveLength(1);
    // Another kind, or another session of the same cluster (a relogin's), is another notice.
    backend.emit('onSessionNotice', { ...notice, kind: 'ended' });
    backend.emit('onSessionNotice', { ...notice, expiresMs: notice.expiresMs + MINUTE });
    expect(fake.notifications).toHaveLength(3);
    // A click asks the backend for the relogin of that cluster.
    fake.notifications[0]?.click();
    expect(backend.relogins).toEqual([
      { cluster: LAB, reason: [`Your session ended at ${clockTime(notice.expiresMs)}.`] },
    ]);
  });

  it('where the desktop has no notifications, nothing is shown and nothing fails', async () => {
    const { fake, backend, expiresMs } = await startSignedIn({ notificationsSupported: false });
    lab.clock.advance(expiresMs - lab.clock.now());
    backend.sessions.check();
    expect(fake.notifications).toEqual([]);
  });

  it('the texts', () => {
    const notice = { address: LAB, user: 'alice', expiresMs: new Date(2026, 11, 7, 14, 2).getTime() };
    expect(sessionNoticeText({ ...notice, kind: 'endsSoon' }, 'lab')).toEqual({
      title: 'Session ends soon',
      body: 'Your session on lab as alice ends at 14:02. Click to sign in again.',
    });
    expect(sessionNoticeText({ ...notice, kind: 'ended' }, 'lab')).toEqual({
      title: 'Session ended',
      body: 'Your session on lab as alice ended at 14:02. Click to sign in again.',
    });
  });

  it('keeps each notification referenced until it is clicked or closed (a collected one loses its click)', () => {
    const fake = createFakeElectron();
    const notifier = createNotifier(fake.api.Notification as never);
    const clicked = vi.fn();
    expect(notifier.show({ title: 'a', body: 'b' }, clicked)).toBe(true);
    expect(notifier.show({ title: 'c', body: 'd' })).toBe(true);
    expect(notifier.live).toBe(2);
    fake.notifications[0]?.click();
    expect(clicked).toHaveBeenCalledOnce();
    fake.notifications[1]?.close();
    expect(notifier.live).toBe(0);
  });
});

describe('closing the window', () => {
  it('on Linux with a tray: hides it (the renderer keeps its state) and says so once, remembered in userData', async () => {
    const userData = tempDir('kp-user-data-');
    const { fake, window } = await startReadyHost({ userData });
    window.close();
    expect(window.destroyed).toBe(false);
    expect(window.isVisible()).toBe(false);
    expect(texts(fake.notifications)).toEqual([`${CLOSED_TO_TRAY_TEXT.title}: ${CLOSED_TO_TRAY_TEXT.body}`]);
    await expect
      .poll(() => readFileSync(join(userData, SETTINGS_FILE), 'utf8'))
      .toContain('"closedToTrayNoticeShown": true');

    // Its click brings the window back; a second close says nothing.
    fake.notifications[0]?.click();
    expect(window.isVisible()).toBe(true);
    window.close();
    expect(window.isVisible()).toBe(false);

    // The next run, for the same user, says nothing either.
    await quitHosts();
    const again = await startReadyHost({ userData });
    again.window.close();
    expect(again.window.isVisible()).toBe(false);
    expect(fake.notifications).toHaveLength(1);
    expect(again.fake.notifications).toEqual([]);
  });

  it('where nothing could be shown, it is not remembered as said', async () => {
    const userData = tempDir('kp-user-data-');
    const silent = await startReadyHost({ userData, notificationsSupported: false });
    silent.window.close();
    expect(silent.window.isVisible()).toBe(false);
    await quitHosts();
    const shown = await startReadyHost({ userData });
    shown.window.close();
    expect(shown.fake.notifications).toHaveLength(1);
  });

  it('on macOS: closes it (the dock convention), keeps the app, and says nothing', async () => {
    const { fake, window } = await startReadyHost({ platform: 'darwin' });
    window.close();
    expect(window.destroyed).toBe(true);
    fake.app.emit('window-all-closed');
    expect(fake.calls).not.toContain('app.quit');
    expect(fake.notifications).toEqual([]);
    fake.app.emit('activate');
    expect(fake.windows).toHaveLength(2);
  });

  it('without a tray icon: closes it, and the last one quits', async () => {
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { fake, window } = await startReadyHost({ trayFails: true });
    window.close();
    expect(window.destroyed).toBe(true);
    expect(fake.notifications).toEqual([]);
  });

  it('a quit closes it for real, from the tray too', async () => {
    const { fake, window } = await startReadyHost();
    fake.app.quit();
    expect(window.destroyed).toBe(true);
    await expect.poll(() => fake.exit.quitted).toBe(true);
    expect(fake.notifications).toEqual([]);
  });
});
