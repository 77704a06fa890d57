import { EventEmitter } from 'node:events';
import type { HandlerDetails, WebContents, WindowOpenHandlerResponse } from 'electron';
import { describe, expect, it, vi } from 'vitest';
import {
  EXTERNAL_HOSTS,
  externalUrl,
  guardWebContents,
  httpsOpener,
  isAllowedExternalUrl,
} from './navigation';

describe('isAllowedExternalUrl', () => {
  it.each([
    'https://keyport.dev/',
    'https://keyport.dev/docs/security-keys?x=1#pin',
    'https://docs.keyport.dev/',
    'https://github.com/keyport/keyport/issues',
    'https://KEYPORT.DEV/',
    'https://keyport.dev:443/',
  ])('allows %s', (url) => {
    expect(isAllowedExternalUrl(url)).toBe(true);
  });

  it.each([
    ['plain http', 'http://keyport.dev/'],
    ['javascript:', 'javascript:alert(1)'],
    ['javascript: with a host-looking path', 'javascript://keyport.dev/%0aalert(1)'],
    ['file:', 'file:///etc/passwd'],
    ['data:', 'data:text/html,<script>alert(1)</script>'],
    ['a custom scheme', 'keyport://login'],
    ['the app origin', 'app://keyport/index.html'],
    ['a host not on the list', 'https://evil.example/'],
    ['user info naming an allowed host', 'https://keyport.dev@evil.example/'],
    ['user info with a password', 'https://keyport.dev:x@evil.example/'],
    ['user info on an allowed host', 'https://user@keyport.dev/'],
    ['an allowed host as a subdomain of another', 'https://keyport.dev.evil.example/'],
    ['a suffix match', 'https://evilkeyport.dev/'],
    ['an unlisted subdomain', 'https://gist.github.com/'],
    ['a trailing dot', 'https://keyport.dev./'],
    ['a non-default port', 'https://keyport.dev:8443/'],
    ['an IDN look-alike (Cyrillic е)', 'https://keyport.d\u0435v/'],
    ['an IDN look-alike (Cyrillic о)', 'https://keyp\u043ert.dev/'],
    ['a full-width dot onto another host', 'https://keyport\uff0eevil/'],
    ['backslashes folding to another host', 'https:\\\\evil.example\\keyport.dev'],
    ['an IP address', 'https://127.0.0.1/'],
    ['a relative URL', '/docs'],
    ['an empty string', ''],
    ['a very long URL', `https://keyport.dev/${'a'.repeat(3000)}`],
  ])('refuses %s', (_name, url) => {
    expect(isAllowedExternalUrl(url)).toBe(false);
  });

  it('refuses what is not a string', () => {
    for (const value of [undefined, null, 42, { toString: () => 'https://keyport.dev/' }]) {
      expect(isAllowedExternalUrl(value)).toBe(false);
    }
  });

  it('returns the parser-normalised URL, not the raw string', () => {
    expect(externalUrl('https://KEYPORT.dev:443/a/../b c')).toBe('https://keyport.dev/b%20c');
    expect(externalUrl('  https://keyport.dev/\n')).toBe('https://keyport.dev/');
    // IDNA maps a full-width dot to '.': the same host, and the normalised form is what gets opened.
    expect(externalUrl('https://keyport\uff0edev/')).toBe('https://keyport.dev/');
  });

  it('lists exact, lower-case host names only', () => {
    for (const host of EXTERNAL_HOSTS) expect(host).toMatch(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
  });
});

class FakeWebContents extends EventEmitter {
  openHandler?: (details: HandlerDetails) => WindowOpenHandlerResponse;
  setWindowOpenHandler(handler: (details: HandlerDetails) => WindowOpenHandlerResponse) {
    this.openHandler = handler;
  }
}

function guarded() {
  const contents = new FakeWebContents();
  const openExternal = vi.fn(async (_url: string) => {});
  guardWebContents(contents as unknown as WebContents, openExternal);
  const navigate = (event: string, url: string) => {
    const preventDefault = vi.fn();
    contents.emit(event, { preventDefault, url });
    return preventDefault.mock.calls.length > 0;
  };
  const open = (url: string) => contents.openHandler?.({ url } as HandlerDetails);
  return { contents, openExternal, navigate, open };
}

describe('guardWebContents', () => {
  it.each(['will-navigate', 'will-redirect', 'will-frame-navigate'])(
    'lets %s stay on the app origin and stops it anywhere else',
    (event) => {
      const { navigate } = guarded();
      expect(navigate(event, 'app://keyport/index.html#/clusters')).toBe(false);
      for (const url of [
        'https://keyport.dev/',
        'http://127.0.0.1:8080/',
        'file:///etc/passwd',
        'app://evil/index.html',
        'app://user@keyport/',
        'javascript:alert(1)',
        'about:blank',
      ]) {
        expect(navigate(event, url), url).toBe(true);
      }
    },
  );

  it('denies every new window and opens only allowed https links externally', () => {
    const { open, openExternal } = guarded();
    expect(open('https://keyport.dev/docs')).toEqual({ action: 'deny' });
    expect(open('https://keyport.dev@evil.example/')).toEqual({ action: 'deny' });
    expect(open('app://keyport/index.html')).toEqual({ action: 'deny' });
    expect(open('file:///etc/passwd')).toEqual({ action: 'deny' });
    expect(openExternal.mock.calls).toEqual([['https://keyport.dev/docs']]);
  });

  it('survives an openExternal that fails', async () => {
    const contents = new FakeWebContents();
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    guardWebContents(contents as unknown as WebContents, () => Promise.reject(new Error('no browser')));
    expect(contents.openHandler?.({ url: 'https://github.com/' } as HandlerDetails)).toEqual({
      action: 'deny',
    });
    await vi.waitFor(() => expect(error).toHaveBeenCalled());
    error.mockRestore();
  });

  it('refuses to attach a webview', () => {
    const { navigate } = guarded();
    expect(navigate('will-attach-webview', 'app://keyport/index.html')).toBe(true);
  });

  it('cancels a Web Bluetooth device chooser', () => {
    const { contents } = guarded();
    const preventDefault = vi.fn();
    const callback = vi.fn();
    contents.emit(
      'select-bluetooth-device',
      { preventDefault },
      [{ deviceId: 'a', deviceName: 'Key' }],
      callback,
    );
    expect(preventDefault).toHaveBeenCalled();
    expect(callback).toHaveBeenCalledWith('');
  });
});

describe("httpsOpener (the backend's way to the browser: approval confirm URLs, SSO sign-in pages)", () => {
  it('hands an https URL to openExternal, normalised', async () => {
    const openExternal = vi.fn(async (_url: string) => {});
    await httpsOpener(openExternal)('https://IdP.example.com:8443/auth?state=abc');
    expect(openExternal.mock.calls).toEqual([['https://idp.example.com:8443/auth?state=abc']]);
  });

  it.each([
    'http://idp.example.com/auth',
    'file:///etc/passwd',
    'smb://share/x',
    'javascript:alert(1)',
    'https://idp.example.com@evil.example/',
    'https://a:b@idp.example.com/',
    'not a url',
    `https://idp.example.com/${'a'.repeat(9000)}`,
  ])('refuses %s with PRECONDITION_FAILED and opens nothing', async (url) => {
    const openExternal = vi.fn(async (_url: string) => {});
    await expect(httpsOpener(openExternal)(url)).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect(openExternal).not.toHaveBeenCalled();
  });
});
