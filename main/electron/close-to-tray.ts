// Closing the window keeps Keyport Connect running in the tray (issue 13), where the platform does that:
// Windows and Linux with a tray icon hide the window instead of closing it, so the renderer keeps what the
// person was doing (a terminal tab, a form) and the session notices still come. macOS keeps its own
// convention: the window closes, the app stays in the dock, and the dock icon opens it again. Without a
// tray (Electron could not make one) a close is a close, and the last one quits as before.
//
// The first time the window goes to the tray a notification says so; "said once" is kept in the host's
// settings file (host-settings.ts), so it is said once per user, not once per run.
import { readHostSettings, writeHostSettings } from './host-settings';
import type { HostSettings } from './host-settings';
import { CLOSED_TO_TRAY_TEXT } from './notifications';
import type { Notifier } from './notifications';

/** The parts of a BrowserWindow this reads. */
export interface ClosableWindow {
  on(event: 'close', listener: (event: { preventDefault(): void }) => void): unknown;
  hide(): void;
}

export interface CloseToTrayOptions {
  platform: NodeJS.Platform;
  /** Electron's userData folder, where the settings file is. */
  userData: string;
  notifier: Notifier;
  /** Whether a tray icon is up (one could not be made on every desktop). */
  hasTray(): boolean;
  /** Set from 'before-quit': a quit closes the window for real. */
  isQuitting(): boolean;
  /** A click on the notice: the window back. */
  showWindow(): void;
}

export interface CloseToTray {
  /** Makes `window`'s close button hide it, where the platform keeps apps in the tray. */
  attach(window: ClosableWindow): void;
}

export function closesToTray(platform: NodeJS.Platform, hasTray: boolean): boolean {
  return platform !== 'darwin' && hasTray;
}

export function createCloseToTray(options: CloseToTrayOptions): CloseToTray {
  const settings: HostSettings = readHostSettings(options.userData);

  function sayOnce(): void {
    if (settings.closedToTrayNoticeShown) return;
    // Nothing shown (a desktop without notifications): it is not said yet, and the next close tries again.
    if (!options.notifier.show(CLOSED_TO_TRAY_TEXT, options.showWindow)) return;
    settings.closedToTrayNoticeShown = true;
    // Said once per run whatever the write does; a failed write only means it may be said next run too.
    writeHostSettings(options.userData, { ...settings }).catch((error: unknown) =>
      console.warn('Could not save Keyport Connect’s settings:', (error as Error).message),
    );
  }

  return {
    attach(window) {
      window.on('close', (event) => {
        if (options.isQuitting() || !closesToTray(options.platform, options.hasTray())) return;
        event.preventDefault();
        window.hide();
        sayOnce();
      });
    },
  };
}
