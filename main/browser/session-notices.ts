// The session watcher's notices (main/backend/session-watcher.ts: "ends soon", "ended") on the desktop, for
// the browser host. A window that shows the app says them itself (the renderer's banner and prompt), so a
// desktop notification goes out only while no window does: every window closed, or every page hidden
// (the bridge's visibility message). At most one per session and kind: the watcher says each notice once,
// and this keeps its own record as well, so no path (a watcher restarted, a notice repeated) notifies twice.
//
// A click on the notification:
//   1. reopens the app window where none shows the app (the host's open-window path);
//   2. asks for a relogin of that cluster (backend.relogin.signInAgain): the relogin prompt, saying why,
//      which the new window shows once it connects (prompts.current), and any open one at once; unless
//      that session was renewed or signed out since (a click on a notification left on the screen).
// The text names the cluster, the user and the time; nothing of the certificates, never a token.
import type { SessionNotice } from '../../preload/contract';
import type { Backend } from '../backend/backend';
import { clockTime } from '../backend/relogin';
import type { DesktopNotice, DesktopNotifier } from './desktop-notifications';

export interface SessionNoticesOptions {
  backend: Pick<Backend, 'on' | 'relogin'>;
  notifier: DesktopNotifier;
  /** How many windows show the app now (host.shownWindows). */
  shownWindows(): number;
  /** Opens the app window (a fresh launch URL); the caller keeps it and closes it at quit. */
  openWindow(): Promise<void>;
  log?: (line: string) => void;
}

/** What the desktop notification says: a summary line and a body, with the time on the person's clock. */
export function desktopNotice(notice: SessionNotice): DesktopNotice {
  const at = clockTime(notice.expiresMs);
  return notice.kind === 'endsSoon'
    ? {
        summary: 'Keyport session ends soon',
        body: `Your session on ${notice.address} as ${notice.user} ends at ${at}. Click to sign in again.`,
        actionLabel: 'Sign in again',
      }
    : {
        summary: 'Keyport session ended',
        body: `Your session on ${notice.address} as ${notice.user} ended at ${at}. Click to sign in again.`,
        actionLabel: 'Sign in again',
        urgency: 'critical',
      };
}

/** Why the relogin prompt asks: the notice the person clicked. */
export function reloginReason(notice: SessionNotice): string[] {
  const at = clockTime(notice.expiresMs);
  return [notice.kind === 'endsSoon' ? `Your session ends at ${at}.` : `Your session ended at ${at}.`];
}

/** Sends the backend's session notices to the desktop while no window shows the app; returns the stop. */
export function deliverSessionNotices(options: SessionNoticesOptions): () => void {
  const { backend, notifier } = options;
  const log = options.log ?? (() => {});
  const notified = new Set<string>();
  /** Each address's session expiry as last reported (null: signed out), to tell a click on a stale notice. */
  const current = new Map<string, number | null>();

  async function clicked(notice: SessionNotice): Promise<void> {
    if (options.shownWindows() === 0) {
      await options.openWindow().catch((error: unknown) => {
        log(`The app window could not be opened: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    const expires = current.get(notice.address);
    if (expires !== undefined && expires !== notice.expiresMs) return;
    try {
      await backend.relogin.signInAgain(notice.address, reloginReason(notice));
    } catch (error) {
      // Cancelled, or the sign-in failed: the prompt said so; the session stays as it was.
      log(`Sign-in from the notification ended: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  const unsubscribes = [
    backend.on('onProfileChanged', ({ address, profile }) =>
      current.set(address, profile?.expiresMs ?? null),
    ),
    backend.on('onSessionNotice', (notice) => {
      if (options.shownWindows() > 0) return;
      const key = `${notice.address}|${notice.user}|${notice.expiresMs}|${notice.kind}`;
      if (notified.has(key)) return;
      notified.add(key);
      notifier.show(desktopNotice(notice), () => void clicked(notice));
    }),
  ];
  return () => {
    for (const unsubscribe of unsubscribes) unsubscribe();
  };
}
