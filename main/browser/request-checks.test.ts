import { expect, it } from 'vitest';
import { newSecret } from './secrets';
import { fetchSiteIsSameOrigin, hostIsApp, originIsApp, sessionFromProtocols } from './request-checks';

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

it('reads the session from exactly keyport.v1 and keyport-session.SESSION', () => {
  const session = newSecret();
  const offered = (value: string | undefined) => sessionFromProtocols({ 'sec-websocket-protocol': value });
  expect(offered(`keyport.v1, keyport-session.${session}`)).toBe(session);
  expect(offered(`keyport.v1,keyport-session.${session}`)).toBe(session);
  for (const value of [
    undefined,
    '',
    'keyport.v1',
    `keyport-session.${session}`,
    `keyport-session.${session}, keyport.v1`,
    `keyport.v2, keyport-session.${session}`,
    `keyport.v1, keyport-session.${session}, chat`,
    `keyport.v1, keyport-session.${session}, keyport-session.${session}`,
    `keyport.v1, keyport-session.${session.slice(1)}`,
    `keyport.v1, keyport-session.${session}=`,
    `keyport.v1, keyport-session-${session}`,
    `keyport.v1, ${session}`,
  ]) {
    expect(offered(value), value).toBeUndefined();
  }
  // Cookies are not a way in.
  expect(sessionFromProtocols({ cookie: `keyport_session=${session}` })).toBeUndefined();
});
