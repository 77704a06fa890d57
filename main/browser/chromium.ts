// Opens the browser host's launch URL in a Chromium app window (`--app=`: no tabs, no address bar), with a
// fresh private profile so that no other Chromium instance, extension or stored state shares the window,
// and the session the launch token became (in the window's sessionStorage) dies with the profile when the
// window closes.
//
// The launch URL holds the one-time token, and a command line is readable by every local user
// (/proc/PID/cmdline, ps), who could race the window to spend it. So the token never goes on the command
// line: Chromium opens a launch page in the same private 0700 folder as the profile, and that page
// redirects (meta refresh, which keeps the fragment) to the launch URL.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';
const STOP_GRACE_MS = 3000;

export interface AppWindowOptions {
  env?: NodeJS.ProcessEnv;
}

export interface AppWindow {
  child: ChildProcess;
  /** The private folder (0700) holding the launch page and the profile; removed by close(). */
  dir: string;
  /** The profile (--user-data-dir), inside `dir`. */
  profileDir: string;
  /** The launch page (0600) the window opens first, inside `dir`. */
  launchFile: string;
  /** Settles when Chromium exits, whoever ended it (the person closing the window, or close()). */
  exited: Promise<void>;
  /** Ends Chromium (its process group, by PID) and removes `dir`. */
  close(): Promise<void>;
}

/** KEYPORT_CHROMIUM, else Debian's Chromium. */
export function chromiumExecutable(env: NodeJS.ProcessEnv = process.env): string {
  return env.KEYPORT_CHROMIUM || DEFAULT_CHROMIUM;
}

/** Whether a window can be shown: an X11 or Wayland display. Without one the caller prints the URL. */
export function hasDisplay(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

/** A page that sends the window on to `url` (the launch URL), so the URL stays off the command line. */
export function launchPage(url: string): string {
  const attribute = url
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
  return [
    '<!doctype html>',
    '<meta charset="utf-8">',
    '<meta name="referrer" content="no-referrer">',
    `<meta http-equiv="refresh" content="0;url=${attribute}">`,
    '<title>Keyport Connect</title>',
    '',
  ].join('\n');
}

/** `appUrl` is what the window opens first: the launch page's file: URL, never the launch URL. */
export function chromiumArguments(
  appUrl: string,
  options: { profileDir: string; runningAsRoot: boolean },
): string[] {
  return [
    `--app=${appUrl}`,
    // A fresh profile per window: a fresh Chromium process rather than a tab handed to one already running.
    `--user-data-dir=${options.profileDir}`,
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    // Hides the "unsupported command-line flag" bar that --no-sandbox would otherwise show.
    '--test-type',
    // Chromium refuses to start as root with its sandbox on; only then is it turned off (the lab machines
    // and containers run as root). A normal user keeps the sandbox.
    ...(options.runningAsRoot ? ['--no-sandbox'] : []),
  ];
}

/** Signals Chromium's process group, or (`alone`) the browser process where no group can be signalled. */
function signalGroup(pid: number, signal: NodeJS.Signals, alone = true): void {
  try {
    process.kill(-pid, signal);
  } catch {
    if (!alone) return;
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * SIGTERM to Chromium's process group, SIGKILL after a grace period; then SIGKILL to what is left of the
 * group (helpers such as the zygote can outlive the browser process for a moment). Only while the browser
 * process has not been reaped: until then its PID, and so the group id, cannot belong to anyone else.
 * After the person closed the window, its helpers exit on their own.
 */
async function stopGroup(pid: number, leaderRunning: () => boolean, exited: Promise<void>): Promise<void> {
  if (!leaderRunning()) return;
  signalGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  signalGroup(pid, 'SIGKILL', false);
}

function checkLaunchUrl(url: string): void {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' || parsed.hostname !== '127.0.0.1') {
    throw new Error(`The app window opens only the loopback host, not ${parsed.origin}.`);
  }
}

/** Opens the app window, or returns undefined when there is no display to open it on. */
export async function openAppWindow(
  url: string,
  options: AppWindowOptions = {},
): Promise<AppWindow | undefined> {
  const env = options.env ?? process.env;
  if (!hasDisplay(env)) return undefined;
  checkLaunchUrl(url);
  const executable = chromiumExecutable(env);
  const dir = await mkdtemp(join(tmpdir(), 'keyport-chromium-'));
  await chmod(dir, 0o700);
  const profileDir = join(dir, 'profile');
  const launchFile = join(dir, 'launch.html');
  await mkdir(profileDir, { mode: 0o700 });
  await writeFile(launchFile, launchPage(url), { mode: 0o600 });
  const args = chromiumArguments(pathToFileURL(launchFile).href, {
    profileDir,
    runningAsRoot: process.getuid?.() === 0,
  });
  // Its own process group (detached), so that close() ends the browser and every helper process it
  // started (zygote, renderers, GPU) with one signal to the group, not just the browser process.
  const child = spawn(executable, args, { env, stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot start Chromium (${executable}): ${reason}. Set KEYPORT_CHROMIUM to its path.`, {
      cause: error,
    });
  }

  let closing: Promise<void> | undefined;
  return {
    child,
    dir,
    profileDir,
    launchFile,
    exited,
    close() {
      closing ??= (async () => {
        const { pid } = child;
        if (pid !== undefined) {
          await stopGroup(pid, () => child.exitCode === null && child.signalCode === null, exited);
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
