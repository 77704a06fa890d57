// The confirm URL Keyport Connect opens in the browser: only what the cluster's answer may be (https, the
// confirm path, `id` and `token`), with the link's redirect added; anything else is never opened.
import { describe, expect, it } from 'vitest';
import { confirmUrlWithRedirect } from './web-approval';

const GOOD = 'https://localhost:3080/web/device/confirm?id=abc&token=t0k';

describe('confirmUrlWithRedirect', () => {
  it('adds the redirect to the confirm URL', () => {
    expect(confirmUrlWithRedirect(GOOD, '/home?tab=1')).toBe(
      'https://localhost:3080/web/device/confirm?id=abc&token=t0k&redirect=%2Fhome%3Ftab%3D1',
    );
  });

  it.each([
    'http://localhost:3080/web/device/confirm?id=abc&token=t0k',
    'https://user@localhost:3080/web/device/confirm?id=abc&token=t0k',
    'https://localhost:3080/web/device/other?id=abc&token=t0k',
    'https://localhost:3080/web/device/confirm?id=abc&token=t0k&redirect=//evil',
    'https://localhost:3080/web/device/confirm?id=abc',
    'https://localhost:3080/web/device/confirm?id=abc&token=t0k#x',
    'file:///web/device/confirm?id=abc&token=t0k',
    'javascript:alert(1)',
    'not a url',
  ])('refuses %s', (raw) => {
    expect(() => confirmUrlWithRedirect(raw, '/')).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });
});
