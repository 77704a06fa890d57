import type { Certificate, Event, Session, WebContents } from 'electron';
import { describe, expect, it, vi } from 'vitest';
import {
  applySessionPolicy,
  denyCertificateError,
  denyPermissionCheck,
  denyPermissionRequest,
  isAllowedRequestUrl,
} from './session-policy';

// Every permission Electron 45 names (electron.d.ts, setPermissionRequestHandler).
const permissions = [
  'clipboard-read',
  'clipboard-sanitized-write',
  'display-capture',
  'fullscreen',
  'geolocation',
  'hid',
  'idle-detection',
  'smart-card',
  'local-network-access',
  'media',
  'mediaKeySystem',
  'midi',
  'midiSysex',
  'notifications',
  'openExternal',
  'pointerLock',
  'serial',
  'storage-access',
  'top-level-storage-access',
  'usb',
  'window-management',
  'unknown',
];

interface Recorded {
  request?: (contents: WebContents, permission: string, callback: (granted: boolean) => void) => void;
  check?: (...args: unknown[]) => boolean;
  device?: (details: unknown) => boolean;
  beforeRequest?: (details: { url: string }, callback: (response: { cancel?: boolean }) => void) => void;
}

function fakeSession(): { session: Session; recorded: Recorded } {
  const recorded: Recorded = {};
  const session = {
    setPermissionRequestHandler: (handler: Recorded['request']) => (recorded.request = handler),
    setPermissionCheckHandler: (handler: Recorded['check']) => (recorded.check = handler),
    setDevicePermissionHandler: (handler: Recorded['device']) => (recorded.device = handler),
    webRequest: {
      onBeforeRequest: (handler: Recorded['beforeRequest']) => (recorded.beforeRequest = handler),
    },
  };
  return { session: session as unknown as Session, recorded };
}

function cancelled(recorded: Recorded, url: string): boolean | undefined {
  let response: { cancel?: boolean } | undefined;
  recorded.beforeRequest?.({ url }, (r) => (response = r));
  return response?.cancel;
}

describe('session policy', () => {
  it('denies every permission request and check, and every device', () => {
    const { session, recorded } = fakeSession();
    applySessionPolicy(session, { devTools: false });
    for (const permission of permissions) {
      const callback = vi.fn();
      recorded.request?.({} as WebContents, permission, callback);
      expect(callback, permission).toHaveBeenCalledExactlyOnceWith(false);
      expect(recorded.check?.(null, permission, 'app://keyport', {}), permission).toBe(false);
    }
    expect(recorded.device?.({ deviceType: 'hid', origin: 'app://keyport' })).toBe(false);
    expect(recorded.device?.({ deviceType: 'usb', origin: 'app://keyport' })).toBe(false);
  });

  it('exports the same deny-all handlers it installs', () => {
    const { session, recorded } = fakeSession();
    applySessionPolicy(session, { devTools: false });
    expect(recorded.request).toBe(denyPermissionRequest);
    expect(recorded.check).toBe(denyPermissionCheck);
  });

  it('lets only app:// (and data:) requests through in production', () => {
    const { session, recorded } = fakeSession();
    applySessionPolicy(session, { devTools: false });
    expect(cancelled(recorded, 'app://keyport/assets/index.js')).toBe(false);
    expect(cancelled(recorded, 'data:image/png;base64,AAAA')).toBe(false);
    for (const url of [
      'https://keyport.dev/',
      'http://127.0.0.1:3025/',
      'ws://127.0.0.1:3025/',
      'file:///etc/passwd',
      'app://evil/x.js',
      'app://user@keyport/x.js',
      'devtools://devtools/bundled/devtools_app.html',
      'chrome-extension://abc/x.js',
    ]) {
      expect(cancelled(recorded, url), url).toBe(true);
    }
  });

  it('lets the DevTools front end load in development only', () => {
    expect(isAllowedRequestUrl('devtools://devtools/bundled/devtools_app.html', { devTools: true })).toBe(
      true,
    );
    expect(isAllowedRequestUrl('devtools://devtools/bundled/devtools_app.html', { devTools: false })).toBe(
      false,
    );
    expect(isAllowedRequestUrl('https://chrome-devtools-frontend.appspot.com/', { devTools: true })).toBe(
      false,
    );
  });

  it('never trusts a certificate Chromium rejected, and leaves the default handling in place', () => {
    const preventDefault = vi.fn();
    const callback = vi.fn();
    denyCertificateError(
      { preventDefault } as unknown as Event,
      {} as WebContents,
      'https://keyport.dev/',
      'net::ERR_CERT_AUTHORITY_INVALID',
      {} as Certificate,
      callback,
    );
    expect(callback).toHaveBeenCalledExactlyOnceWith(false);
    expect(preventDefault).not.toHaveBeenCalled();
  });
});
