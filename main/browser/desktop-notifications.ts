// Desktop notifications for the browser host, through the freedesktop Notifications D-Bus API
// (org.freedesktop.Notifications.Notify on the session bus) as libnotify's `notify-send` (Debian's
// libnotify-bin, 0.8) calls it: one process per notification, which offers a "default" action (a click on
// the notification's body, spec "Actions") and waits (--wait), printing the notification's id and then the
// key of each action invoked on stdout. It exits when the notification closes (NotificationClosed), or
// when close() ends it by PID. No npm dependency in the app, no library on the app's side of the bus.
//
// Without a session bus (DBUS_SESSION_BUS_ADDRESS unset: a headless machine, an SSH session) or without
// notify-send, the notifier says so once in the log and shows nothing from then on; the app carries on.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

export const NOTIFY_SEND = 'notify-send';
export const APP_NAME = 'Keyport Connect';
/** The action a click on the notification's body invokes (Desktop Notifications Specification, "Actions"). */
export const DEFAULT_ACTION = 'default';
/** Notifications waiting for a click at once; past this the oldest one's process is ended. */
export const MAX_WAITING = 16;
const STOP_GRACE_MS = 2_000;
/** Summary and body are short lines; anything longer is cut (a server shows a few lines at most). */
const MAX_TEXT = 240;

export interface DesktopNotice {
  summary: string;
  body: string;
  /** The label of the default action, for servers that show actions as buttons. */
  actionLabel: string;
  urgency?: 'normal' | 'critical';
}

export interface DesktopNotifier {
  /** Shows `notice`; `onClick` runs at most once, when the person clicks it. */
  show(notice: DesktopNotice, onClick: () => void): void;
  /** Notifications still waiting (their processes running). */
  readonly waiting: number;
  /** Ends every waiting notification's process (by PID) and shows nothing more. */
  close(): Promise<void>;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** Where "no desktop notifications" and failures are said; once each. */
  log?: (line: string) => void;
  /** The notify-send to run (tests); default `notify-send` on PATH. */
  command?: string;
}

/**
 * Servers that advertise "body-markup" read a subset of HTML in the body (spec "Markup"), so the body is
 * escaped: a cluster or user name is shown as written, never as markup.
 */
export function escapeBody(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT - 1)}…`;
}

/** notify-send's arguments for `notice`: the text after `--`, so no text can be read as an option. */
export function notifySendArguments(notice: DesktopNotice): string[] {
  return [
    `--app-name=${APP_NAME}`,
    `--urgency=${notice.urgency ?? 'normal'}`,
    `--action=${DEFAULT_ACTION}=${clip(notice.actionLabel)}`,
    '--print-id',
    '--wait',
    '--',
    clip(notice.summary),
    escapeBody(clip(notice.body)),
  ];
}

export function notifySendNotifier(options: NotifierOptions = {}): DesktopNotifier {
  const env = options.env ?? process.env;
  const log = options.log ?? (() => {});
  const command = options.command ?? NOTIFY_SEND;
  const waiting: ChildProcess[] = [];
  const said = new Set<string>();
  let off: string | undefined = env.DBUS_SESSION_BUS_ADDRESS
    ? undefined
    : 'no session bus (DBUS_SESSION_BUS_ADDRESS is not set)';
  let closed = false;

  const sayOnce = (line: string) => {
    if (said.has(line)) return;
    said.add(line);
    log(line);
  };

  /** Ends `child` by its PID if it still runs; settles once it has closed (out of `waiting`). */
  function end(child: ChildProcess): Promise<void> {
    if (!waiting.includes(child)) return Promise.resolve();
    // 'close', not 'exit': its output read to the end and the child out of `waiting` (show()'s handler).
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return closed;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    return closed.finally(() => clearTimeout(timer));
  }

  return {
    show(notice, onClick) {
      if (closed) return;
      if (off !== undefined) {
        sayOnce(`Desktop notifications are off: ${off}.`);
        return;
      }
      if (waiting.length >= MAX_WAITING) void end(waiting[0] as ChildProcess);
      const child = spawn(command, notifySendArguments(notice), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      waiting.push(child);
      const done = () => {
        const index = waiting.indexOf(child);
        if (index >= 0) waiting.splice(index, 1);
      };
      let stdout = '';
      let stderr = '';
      let clicked = false;
      child.stdout?.setEncoding('utf8').on('data', (text: string) => {
        stdout += text;
        // Line 1 is the id (--print-id); every later line is the key of an action invoked.
        const lines = stdout.split('\n');
        stdout = lines.pop() ?? '';
        for (const line of lines) {
          if (line.trim() === DEFAULT_ACTION && !clicked) {
            clicked = true;
            onClick();
          }
        }
      });
      child.stderr?.setEncoding('utf8').on('data', (text: string) => {
        stderr = (stderr + text).slice(-1_000);
      });
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') {
          off = `${command} is not installed (Debian: libnotify-bin)`;
          sayOnce(`Desktop notifications are off: ${off}.`);
        } else sayOnce(`A desktop notification failed: ${error.message}`);
      });
      child.once('close', (code) => {
        done();
        // A notification server that is not there (nothing owns org.freedesktop.Notifications) and cannot
        // be started: notify-send says so on stderr and exits 1.
        // A process that never started closes with a negative errno, said by 'error' above.
        if (child.pid !== undefined && code !== null && code !== 0) {
          const why = stderr.trim().split('\n')[0] || `exit status ${code}`;
          sayOnce(`A desktop notification failed: ${why}`);
        }
      });
    },
    get waiting() {
      return waiting.length;
    },
    async close() {
      closed = true;
      await Promise.all(waiting.map(end));
    },
  };
}
