// The tray through the Electron host (main.ts, the Electron double) and the real backend on a temporary
// KEYPORT_HOME, on a lab clock: the exact menu, what each item does, and the menu following sign-in,
// relogin, sign-out and expiry.
import { describe, expect, it, vi } from 'vitest';
import { createLabClock } from '../../lab/clock';
import { clockTime } from '../backend/relogin';
import { EVENT_CHANNEL } from './ipc';
import type { FakeMenuItem, FakeTrayIcon } from './testing/electron-double';
import {
  labHome,
  quitHosts,
  savedProfile,
  startOnLabHome,
  TRAY_ICON,
  trustedCluster,
} from './testing/host-harness';

const electronDouble = await vi.hoisted(() => import('./testing/electron-double'));
vi.mock('electron', () => electronDouble.electronModule);

const LAB = 'lab.example:3025';
const PROD = 'prod.example:3025';
const HOUR = 3_600_000;

const lab = labHome(
  'kp-tray-',
  [trustedCluster(LAB, 'lab'), trustedCluster(PROD, 'prod', 'bob')],
  createLabClock,
);

async function startWithAlice(options: { platform?: NodeJS.Platform } = {}) {
  const expiresMs = lab.clock.now() + 2 * HOUR;
  await lab.store.saveProfile(savedProfile(LAB, 'lab', 'alice', expiresMs));
  const host = await startOnLabHome(lab, options);
  const tray = host.fake.trays[0];
  if (!tray) throw new Error('no tray');
  await expect.poll(() => labels(tray)).toContain(`lab: alice, until ${clockTime(expiresMs)} (disabled)`);
  return { ...host, tray, expiresMs };
}

function items(tray: FakeTrayIcon): FakeMenuItem[] {
  return tray.contextMenu?.template ?? [];
}
function labels(tray: FakeTrayIcon): string[] {
  return items(tray).map((item) =>
    item.type === 'separator' ? '—' : `${item.label}${item.enabled === false ? ' (disabled)' : ''}`,
  );
}
function click(tray: FakeTrayIcon, label: string): void {
  const item = items(tray).find((candidate) => candidate.label === label);
  if (!item?.click) throw new Error(`no menu item "${label}" to click`);
  item.click();
}

describe('the tray icon', () => {
  it('shows every cluster with its user and "until HH:MM" or "signed out", then Open Keyport Connect and Quit', async () => {
    const { fake, tray, expiresMs } = await startWithAlice();
    expect(fake.trays).toHaveLength(1);
    expect(tray.image).toBe(TRAY_ICON);
    expect(tray.toolTip).toBe('Keyport Connect');
    expect(labels(tray)).toEqual([
      `lab: alice, until ${clockTime(expiresMs)} (disabled)`,
      'Sign in again to lab…',
      'prod: bob, signed out (disabled)',
      'Sign in to prod…',
      '—',
      'Open Keyport Connect',
      'Quit',
    ]);
    // The menu names a cluster, a user and a time; nothing of the session's certificates or key.
    const menu = JSON.stringify(items(tray));
    for (const secret of ['SECRET-', 'secret-key-id', 'access']) expect(menu).not.toContain(secret);
  });

  it('"Sign in again…" brings the window back from the tray with the relogin prompt for that cluster', async () => {
    const { fake, window, tray, prompts, backend, expiresMs } = await startWithAlice();
    window.close();
    expect(window.isVisible()).toBe(false);
    const focusedBefore = window.focused;

    click(tray, 'Sign in again to lab…');
    expect(window.isVisible()).toBe(true);
    expect(window.focused).toBe(focusedBefore + 1);
    await expect.poll(() => prompts.length).toBe(1);
    const [prompt] = prompts;
    expect(prompt).toMatchObject({
      kind: 'relogin',
      cluster: LAB,
      user: 'alice',
      reason: [`Your session ends at ${clockTime(expiresMs)}.`],
      passwordless: false,
    });
    // The window's renderer hears it (onPrompt, forwarded to the window that was hidden).
    expect(window.webContents.sent).toContainEqual([EVENT_CHANNEL, 'onPrompt', prompt]);

    // Cancelled: the session is as it was, and a cancel is nothing to warn about.
    const warn = vi.spyOn(console, 'warn');
    await backend.handlers['prompts.cancel']({ id: prompt?.id });
    await expect.poll(() => backend.handlers['prompts.current']()).toEqual({ ok: true, value: null });
    expect((await lab.store.getProfile(LAB))?.expiresMs).toBe(expiresMs);
    expect(warn).not.toHaveBeenCalled();
    expect(fake.windows).toHaveLength(1);
  });

  it('"Sign in…" for a cluster signed out of and "Open Keyport Connect" show the window, and ask nothing', async () => {
    const { window, tray, prompts } = await startWithAlice();
    for (const label of ['Sign in to prod…', 'Open Keyport Connect']) {
      window.close();
      expect(window.isVisible()).toBe(false);
      click(tray, label);
      expect(window.isVisible(), label).toBe(true);
    }
    expect(prompts).toEqual([]);
  });

  it('"Quit" quits: the window closes for real, the tray icon goes, the backend stops', async () => {
    const { fake, window, tray } = await startWithAlice();
    click(tray, 'Quit');
    await expect.poll(() => fake.exit.quitted).toBe(true);
    expect(window.destroyed).toBe(true);
    expect(tray.destroyed).toBe(true);
  });

  it('follows sign-in, relogin and sign-out (the CLI’s, through KEYPORT_HOME) and the expiry', async () => {
    const { tray, backend, expiresMs } = await startWithAlice();
    const until = (ms: number) => `until ${clockTime(ms)}`;

    // `keyport login` to prod.
    const prodExpires = lab.clock.now() + 8 * HOUR;
    await lab.store.saveProfile(savedProfile(PROD, 'prod', 'bob', prodExpires));
    await expect.poll(() => labels(tray)).toContain(`prod: bob, ${until(prodExpires)} (disabled)`);
    expect(labels(tray)).toContain('Sign in again to prod…');

    // A relogin to lab: new certificates, a new expiry.
    const renewed = expiresMs + 3 * HOUR;
    await lab.store.saveProfile(savedProfile(LAB, 'lab', 'alice', renewed));
    await expect.poll(() => labels(tray)).toContain(`lab: alice, ${until(renewed)} (disabled)`);

    // `keyport logout` from prod.
    await lab.store.removeProfile(PROD);
    await expect.poll(() => labels(tray)).toContain('prod: bob, signed out (disabled)');
    expect(labels(tray)).toContain('Sign in to prod…');

    // lab's session ends: the watcher's "ended" updates the menu (no timer of the tray's own).
    lab.clock.advance(renewed - lab.clock.now());
    backend.sessions.check();
    await expect.poll(() => labels(tray)).toContain('lab: alice, signed out (disabled)');
    expect(labels(tray)).toContain('Sign in again to lab…');
  });

  it('on Windows a click on the icon opens the window; elsewhere the click shows the menu only', async () => {
    const windows = await startWithAlice({ platform: 'win32' });
    windows.window.close();
    windows.tray.emit('click');
    expect(windows.window.isVisible()).toBe(true);
    await quitHosts();

    const linux = await startWithAlice();
    expect(linux.tray.listenerCount('click')).toBe(0);
  });
});
