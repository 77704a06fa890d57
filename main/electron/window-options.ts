// The app window's options. Every webPreferences entry below is stated even where it is Electron's
// default, so a change of default cannot weaken the window, and window-options.test.ts asserts each one
// (Electron security checklist §2-§4, §6, §9-§12).
import { isAbsolute } from 'node:path';
import type { BrowserWindowConstructorOptions } from 'electron';

export interface AppWindowOptions {
  /** Absolute path of dist/preload/preload.cjs. */
  preload: string;
  /** Developer tools: development builds only. */
  devTools: boolean;
}

export function appWindowOptions({ preload, devTools }: AppWindowOptions): BrowserWindowConstructorOptions {
  if (!isAbsolute(preload)) throw new Error(`The preload path must be absolute: ${preload}`);
  return {
    title: 'Keyport Connect',
    width: 1100,
    height: 760,
    minWidth: 720,
    minHeight: 520,
    // Shown on ready-to-show, so the person never sees an empty frame.
    show: false,
    backgroundColor: '#101418',
    webPreferences: {
      preload,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      safeDialogs: true,
      enableWebSQL: false,
      // A middle click must not open a window either (new windows are denied anyway).
      disableBlinkFeatures: 'Auxclick',
      devTools,
    },
  };
}
