import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { appPaths } from './paths';

describe('appPaths', () => {
  it('finds the preload, the renderer and the tray icon beside dist/electron, inside an asar too', () => {
    const dist = join('/opt', 'Keyport Connect', 'resources', 'app.asar', 'dist');
    const main = pathToFileURL(join(dist, 'electron', 'main.mjs')).href;
    expect(appPaths(main)).toEqual({
      renderer: join(dist, 'renderer'),
      preload: join(dist, 'preload', 'preload.cjs'),
      trayIcon: join(dist, 'electron', 'icons', 'tray.png'),
    });
  });
});
