import { expect, it } from 'vitest';
import { fetchSiteIsSameOrigin, hostIsApp, originIsApp, readCookie, sessionCookie } from './request-checks';

it('accepts exactly the app host and origin', () => {
  expect(hostIsApp({ host: '127.0.0.1:4000' }, 4000)).toBe(true);
  for (const host of [
    undefined,
    'localhost:4000',
    '127.0.0.1',
    '127.0.0.1:4001',
    'evil.example:4000',
    '[::1]:4000',
  ]) {
    expect(hostIsApp({ host }, 4000)).toBe(false);
  }
  expect(originIsApp({ origin: 'http://127.0.0.1:4000' }, 4000)).toBe(true);
  for (const origin of [
    undefined,
    'null',
    'http://localhost:4000',
    'https://127.0.0.1:4000',
    'http://127.0.0.1:40',
  ]) {
    expect(originIsApp({ origin }, 4000)).toBe(false);
  }
  expect(fetchSiteIsSameOrigin({})).toBe(true);
  expect(fetchSiteIsSameOrigin({ 'sec-fetch-site': 'same-origin' })).toBe(true);
  expect(fetchSiteIsSameOrigin({ 'sec-fetch-site': 'same-site' })).toBe(false);
  expect(fetchSiteIsSameOrigin({ 'sec-fetch-site': 'none' })).toBe(false);
});

it('reads one cookie, refusing duplicates', () => {
  expect(readCookie({ cookie: 'a=1; keyport_session=abc; b=2' }, 'keyport_session')).toBe('abc');
  expect(
    readCookie({ cookie: 'keyport_session=abc; keyport_session=def' }, 'keyport_session'),
  ).toBeUndefined();
  expect(readCookie({ cookie: 'xkeyport_session=abc' }, 'keyport_session')).toBeUndefined();
  expect(readCookie({}, 'keyport_session')).toBeUndefined();
});

it('sets an HttpOnly, SameSite=Strict session cookie', () => {
  expect(sessionCookie('abc')).toBe('keyport_session=abc; HttpOnly; SameSite=Strict; Path=/');
});
