// Where the built bundles sit relative to the main bundle: dist/electron/main.mjs beside dist/preload/ and
// dist/renderer/ (build-app.mjs), the same inside app.asar; the tray icon in dist/electron/icons/.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AppPaths {
  /** dist/renderer: the only directory app:// serves. */
  renderer: string;
  /** dist/preload/preload.cjs: the sandboxed preload, one self-contained CommonJS file. */
  preload: string;
  /** dist/electron/icons/tray.png (and tray@2x.png): the tray icon, copied there by build-app.mjs. */
  trayIcon: string;
}

export function appPaths(mainModuleUrl: string): AppPaths {
  const dist = dirname(dirname(fileURLToPath(mainModuleUrl)));
  return {
    renderer: join(dist, 'renderer'),
    preload: join(dist, 'preload', 'preload.cjs'),
    trayIcon: join(dist, 'electron', 'icons', 'tray.png'),
  };
}
