// Desktop notifications of the Electron host (issue 13), through Electron's `Notification`: the session
// watcher's "ends soon" and "ended" (a click opens the window and the relogin prompt for that cluster),
// and the one-time word that closing the window keeps the app in the tray (close-to-tray.ts). Texts name
// the cluster, the user and a time: nothing secret.
import type * as electron from 'electron';
import type { SessionNotice } from '../../preload/contract';
import { clockTime } from '../backend/relogin';

export interface NotificationText {
  title: string;
  body: string;
}

export function sessionNoticeText(notice: SessionNotice, clusterName: string): NotificationText {
  const time = clockTime(notice.expiresMs);
  return notice.kind === 'endsSoon'
    ? {
        title: 'Session ends soon',
        body: `Your session on ${clusterName} as ${notice.user} ends at ${time}. Click to sign in again.`,
      }
    : {
        title: 'Session ended',
        body: `Your session on ${clusterName} as ${notice.user} ended at ${time}. Click to sign in again.`,
      };
}

export const CLOSED_TO_TRAY_TEXT: NotificationText = {
  title: 'Keyport Connect is still running',
  body: 'It stays in the tray to tell you when a session ends. To quit, choose Quit in the tray icon’s menu.',
};

export type NotificationClass = Pick<typeof electron.Notification, 'isSupported'> &
  (new (options: electron.NotificationConstructorOptions) => Pick<electron.Notification, 'show' | 'once'>);

export interface Notifier {
  /** Shows `text`; a click runs `onClick`. False where the desktop has no notifications. */
  show(text: NotificationText, onClick?: () => void): boolean;
  /** The notifications still on screen (kept referenced: a collected one loses its click handler). */
  readonly live: number;
}

export function createNotifier(Notification: NotificationClass): Notifier {
  const live = new Set<object>();
  return {
    show(text, onClick) {
      if (!Notification.isSupported()) return false;
      const notification = new Notification({ title: text.title, body: text.body });
      live.add(notification);
      const forget = () => live.delete(notification);
      notification.once('click', () => {
        forget();
        onClick?.();
      });
      notification.once('close', forget);
      notification.show();
      return true;
    },
    get live() {
      return live.size;
    },
  };
}

export interface SessionNotificationOptions {
  notifier: Notifier;
  /** The cluster's name for the text (its address when unknown). */
  clusterName(address: string): string;
  /** The click: the window to the front, and the relogin for `address`. */
  signInAgain(address: string, notice: SessionNotice): void;
}

/**
 * One desktop notification per session and kind. The watcher says each notice once already; this guard
 * keeps it so when the notice reaches the host twice (a second subscription, a window reloaded).
 */
export function sessionNotifications(options: SessionNotificationOptions): (notice: SessionNotice) => void {
  const said = new Set<string>();
  return (notice) => {
    const key = `${notice.kind}|${notice.address}|${notice.expiresMs}`;
    if (said.has(key)) return;
    said.add(key);
    options.notifier.show(sessionNoticeText(notice, options.clusterName(notice.address)), () =>
      options.signInAgain(notice.address, notice),
    );
  };
}
