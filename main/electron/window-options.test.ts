import { describe, expect, it } from 'vitest';
import { appWindowOptions } from './window-options';

const preload = '/opt/keyport/resources/app.asar/dist/preload/preload.cjs';

describe('appWindowOptions', () => {
  it('states every security setting of the app window', () => {
    const { webPreferences } = appWindowOptions({ preload, devTools: false });
    expect(webPreferences).toEqual({
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
      disableBlinkFeatures: 'Auxclick',
      devTools: false,
    });
  });

  it('keeps the checklist settings in development and packaged builds alike', () => {
    for (const devTools of [false, true]) {
      expect(appWindowOptions({ preload, devTools }).webPreferences).toMatchObject({
        sandbox: true,
        contextIsolation: true,
        nodeIntegration: false,
        webSecurity: true,
        nodeIntegrationInWorker: false,
        nodeIntegrationInSubFrames: false,
        allowRunningInsecureContent: false,
        webviewTag: false,
        devTools,
      });
    }
  });

  it('enables no Blink feature and sets no insecure option', () => {
    const { webPreferences } = appWindowOptions({ preload, devTools: true });
    expect(webPreferences).not.toHaveProperty('enableBlinkFeatures');
    expect(webPreferences).not.toHaveProperty('additionalArguments');
    expect(webPreferences).not.toHaveProperty('partition');
    expect(webPreferences?.devTools).toBe(true);
  });

  it('waits for ready-to-show and names the window', () => {
    const options = appWindowOptions({ preload, devTools: false });
    expect(options).toMatchObject({ show: false, title: 'Keyport Connect', backgroundColor: '#101418' });
    expect(options.width).toBeGreaterThanOrEqual(options.minWidth ?? 0);
    expect(options.height).toBeGreaterThanOrEqual(options.minHeight ?? 0);
  });

  it('refuses a relative preload path', () => {
    expect(() => appWindowOptions({ preload: 'dist/preload/preload.cjs', devTools: false })).toThrow(
      /absolute/,
    );
  });
});
