// Desktop notifications from the browser host (issue 13, "The browser host"), with real parts: keyport-auth
// and the backend's session watcher on a lab clock (ticked by the test: backend.sessions.check()), the
// browser host, notify-send, the lab's notification server on a private session bus, and real Chromium app
// windows on a private Xvfb display. While no window shows the app, "ends soon" and "ended" reach the
// notification server, once each; a click there opens the app window again and raises the relogin prompt;
// while a window shows the app, nothing goes to the desktop.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../client/profiles';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { repoRoot, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../lab/hardware-key-users';
import { CLOSED_DISMISSED, startLabNotifications } from '../lab/notifications';
import type { LabNotifications } from '../lab/notifications';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import { clockTime } from '../main/backend/relogin';
import { openAppWindow } from '../main/browser/chromium';
import type { AppWindow } from '../main/browser/chromium';
import { notifySendNotifier } from '../main/browser/desktop-notifications';
import type { DesktopNotifier } from '../main/browser/desktop-notifications';
import { startBrowserHost } from '../main/browser/host';
import type { BrowserHost } from '../main/browser/host';
import { deliverSessionNotices } from '../main/browser/session-notices';
import type { Prompt, SessionNotice } from '../preload/contract';

const USER = 'nora';
const PASSWORD = hardwareKeyUserPassword(USER);
const MINUTE = 60_000;

let lab: LabNotifications;
let xvfb: ChildProcess | undefined;
let display: string;
let clock: LabClock;
let cluster: LabCluster;
let work: string;
let home: string;
let backend: Backend;
let host: BrowserHost;
let notifier: DesktopNotifier;
let stopNotices: () => void;
const windows: AppWindow[] = [];
const prompts: Prompt[] = [];
const notices: SessionNotice[] = [];
const logged: string[] = [];

async function until(what: string, condition: () => boolean): Promise<void> {
  // Generous: a Chromium window starting on a loaded 2-core machine.
  const deadline = Date.now() + 60_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function expiresMs(): Promise<number> {
  const profile = await new ProfileStore(home).getProfile(cluster.address);
  if (!profile) throw new Error('not signed in');
  return profile.expiresMs;
}

/** Moves the lab clock to `at` (forward only) and ticks the session watcher, as its timer would. */
function tickAt(at: number): void {
  clock.advance(Math.max(0, at - clock.now()));
  backend.sessions.check();
}

beforeAll(async () => {
  lab = await startLabNotifications();
  xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  display = await new Promise<string>((resolve, reject) => {
    xvfb?.stdio[3]?.once('data', (data: Buffer) => resolve(`:${data.toString().trim()}`));
    xvfb?.once('exit', () => reject(new Error('Xvfb exited')));
    xvfb?.once('error', reject);
  });
  clock = createLabClock();
  work = await mkdtemp(join(tmpdir(), 'kp-notices-'));
  home = join(work, 'home');
  cluster = await startLabCluster({
    clusterName: 'notices',
    configYaml: 'auth_service:\n  authentication:\n    type: local\n    second_factor: "off"\n',
    env: clock.env,
  });
  await createHardwareKeyUsers(cluster, { [USER]: 'none' });
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: {},
    watchProfiles: false,
    clock: clock.now,
    sessionNotices: { tickMs: 0 },
  });
  backend.on('onPrompt', (prompt) => prompts.push(prompt));
  backend.on('onSessionNotice', (notice) => notices.push(notice));
  host = await startBrowserHost({ backend, distDir: join(repoRoot, 'dist') });
  notifier = notifySendNotifier({ env: { ...process.env, ...lab.env }, log: (line) => logged.push(line) });
  stopNotices = deliverSessionNotices({
    backend,
    notifier,
    shownWindows: () => host.shownWindows,
    // The host's open-window path: a real Chromium app window on a fresh launch URL.
    openWindow: async () => {
      const opened = await openAppWindow(host.newLaunchUrl(), { env: { ...process.env, DISPLAY: display } });
      if (opened) windows.push(opened);
    },
    log: (line) => logged.push(line),
  });
  expect(
    await backend.handlers['clusters.add']({ address: cluster.address, caPin: cluster.caPin }),
  ).toMatchObject({ ok: true });
  expect(
    await backend.handlers['auth.login']({
      address: cluster.address,
      user: USER,
      password: PASSWORD,
      ttlSeconds: 3600,
    }),
  ).toMatchObject({ ok: true });
}, 180_000);

afterAll(async () => {
  stopNotices?.();
  await notifier?.close();
  for (const window of windows) await window.close();
  await host?.close();
  await backend?.close();
  await cluster?.stop();
  clock?.dispose();
  await lab?.stop();
  if (xvfb?.pid !== undefined && xvfb.exitCode === null) process.kill(xvfb.pid, 'SIGTERM');
  if (work) await rm(work, { recursive: true, force: true });
});

describe('desktop notifications from the browser host', () => {
  it('with the window closed, "ends soon" reaches the notification server once; its click reopens the window and raises the relogin prompt', async () => {
    expect(host.connections).toBe(0);
    const expires = await expiresMs();
    tickAt(expires - 10 * MINUTE + 1_000);
    expect(notices.map((n) => n.kind)).toEqual(['endsSoon']);
    const [notification] = await lab.waitForCount(1);
    expect(notification).toMatchObject({
      appName: 'Keyport Connect',
      summary: 'Keyport session ends soon',
      body: `Your session on ${cluster.address} as ${USER} ends at ${clockTime(expires)}. Click to sign in again.`,
      actions: ['default', 'Sign in again'],
    });
    // Later ticks say nothing more of this session and kind: no second notify-send, nothing received.
    tickAt(clock.now() + 1_000);
    tickAt(clock.now() + MINUTE);
    expect(notifier.waiting).toBe(1);
    expect(lab.received).toHaveLength(1);
    expect(windows).toHaveLength(0);
    expect(prompts).toEqual([]);

    lab.click(notification?.id ?? 0);
    await until('the relogin prompt', () => prompts.some((p) => p.kind === 'relogin'));
    expect(prompts.find((p) => p.kind === 'relogin')).toMatchObject({
      kind: 'relogin',
      cluster: cluster.address,
      user: USER,
      reason: [`Your session ends at ${clockTime(expires)}.`],
      passwordless: false,
    });
    // The open-window path ran: a real Chromium window, which connected to the host and shows the app.
    expect(windows).toHaveLength(1);
    await until('the reopened window to connect', () => host.shownWindows === 1);
    await until('notify-send to exit after the click', () => notifier.waiting === 0);
    expect(lab.received[0]?.closedReason).toBe(CLOSED_DISMISSED);
    // The window lists the prompt it opened to (the renderer asks prompts.current when it connects).
    expect(await backend.handlers['prompts.current']()).toMatchObject({
      ok: true,
      value: { kind: 'relogin' },
    });

    const relogin = prompts.find((p) => p.kind === 'relogin');
    expect(
      await backend.handlers['prompts.answer']({
        id: relogin?.id,
        value: { kind: 'relogin', password: PASSWORD },
      }),
    ).toMatchObject({ ok: true });
    let renewed = expires;
    const deadline = Date.now() + 60_000;
    while (renewed === expires && Date.now() < deadline) {
      renewed = await expiresMs();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(renewed).toBeGreaterThan(expires);
    expect(logged).toEqual([]);
  }, 120_000);

  it('with the window shown, the new session\'s notices stay in the app; once it is closed, "ended" goes to the desktop', async () => {
    expect(host.shownWindows).toBe(1);
    const expires = await expiresMs();
    const before = notices.length;
    tickAt(expires - 10 * MINUTE + 1_000);
    expect(notices.slice(before).map((n) => n.kind)).toEqual(['endsSoon']);
    expect(notifier.waiting).toBe(0);
    expect(lab.received).toHaveLength(1);

    await windows[0]?.close();
    await until('the window to disconnect', () => host.connections === 0);
    tickAt(expires + 1_000);
    expect(notices.slice(before).map((n) => n.kind)).toEqual(['endsSoon', 'ended']);
    const [, notification] = await lab.waitForCount(2);
    expect(notification).toMatchObject({
      summary: 'Keyport session ended',
      body: `Your session on ${cluster.address} as ${USER} ended at ${clockTime(expires)}. Click to sign in again.`,
    });
    // The "ends soon" said while the window showed is not said again on the desktop.
    tickAt(clock.now() + MINUTE);
    expect(lab.received.map((n) => n.summary)).toEqual([
      'Keyport session ends soon',
      'Keyport session ended',
    ]);
    expect(notifier.waiting).toBe(1);
  }, 120_000);
});
