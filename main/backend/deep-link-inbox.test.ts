// The backend's side of keyport:// links, on a real backend over a real profile store, on a lab clock.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import type { DeepLinkEvent } from '../../preload/contract';
import { clockFromEnv } from '../../proto/clock';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { createBackend } from './backend';
import type { Backend } from './backend';
import { DEEP_LINK_TTL_MS } from './deep-link-inbox';

const TOKEN = 'web-token_0123456789abcdefghij';
const OTHER_TOKEN = 'other-token_0123456789abcdefgh';
const link = (id = 'req-1', token = TOKEN, cluster = 'lab') =>
  `keyport://${cluster}/authorize-web-session?id=${id}&token=${token}&redirect=%2Fweb%2Fhome`;

let home: string;
let clock: LabClock;
let backend: Backend;
let events: DeepLinkEvent[];

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'keyport-deep-links-'));
  const store = new ProfileStore(home);
  await store.trustCluster({
    address: '127.0.0.1:3025',
    name: 'lab',
    caPin: `sha256:${'a'.repeat(64)}`,
    caPem: 'pem',
    trustedAtMs: 1,
  });
  clock = createLabClock();
  backend = createBackend({
    profiles: store,
    keystoreKind: 'file',
    env: clock.env,
    clock: clockFromEnv(clock.env),
    watchProfiles: false,
  });
  events = [];
  backend.on('onDeepLink', (event) => events.push(event));
});

afterEach(async () => {
  await backend.close();
  clock.dispose();
  await rm(home, { recursive: true, force: true });
});

async function snapshot() {
  const files = (await readdir(home, { recursive: true })).sort();
  return Promise.all(files.map(async (f) => [f, await readFile(join(home, f), 'utf8').catch(() => 'dir')]));
}

describe('keyport:// links in the backend', () => {
  it('announces the request with its view only, and holds the token for its screen', async () => {
    const before = await snapshot();
    const event = await backend.openDeepLink(link());
    const view = {
      kind: 'authorizeWebSession',
      cluster: { address: '127.0.0.1:3025', name: 'lab' },
      id: 'req-1',
      receivedMs: expect.any(Number),
      expiresMs: expect.any(Number),
    };
    expect(event).toEqual(view);
    expect(events).toEqual([view]);
    if (event.kind !== 'authorizeWebSession') throw new Error('refused');
    expect(event.expiresMs - event.receivedMs).toBe(DEEP_LINK_TTL_MS);
    // Nothing that crosses to the renderer carries the token or the redirect.
    const current = await backend.handlers['deepLinks.current']();
    expect(current).toEqual({ ok: true, value: view });
    expect(JSON.stringify([events, current])).not.toContain(TOKEN);
    expect(JSON.stringify([events, current])).not.toContain('/web/home');
    // A link only fills in a screen: nothing is written.
    expect(await snapshot()).toEqual(before);
  });

  it('hands the token out once, to the request with that id', async () => {
    await backend.openDeepLink(link());
    expect(backend.deepLinks.take('req-2')).toBeUndefined();
    expect(backend.deepLinks.take('req-1')).toMatchObject({
      id: 'req-1',
      token: TOKEN,
      redirect: '/web/home',
    });
    expect(backend.deepLinks.take('req-1')).toBeUndefined();
    expect(await backend.handlers['deepLinks.current']()).toEqual({ ok: true, value: null });
  });

  it('drops the request when it expires on the service clock', async () => {
    await backend.openDeepLink(link());
    clock.advance(DEEP_LINK_TTL_MS - 1_000);
    expect(await backend.handlers['deepLinks.current']()).toMatchObject({ ok: true, value: { id: 'req-1' } });
    clock.advance(1_000);
    expect(await backend.handlers['deepLinks.current']()).toEqual({ ok: true, value: null });
    expect(backend.deepLinks.take('req-1')).toBeUndefined();
  });

  it('drops the request when another link arrives, a refused one too', async () => {
    await backend.openDeepLink(link());
    await backend.openDeepLink(link('req-2', OTHER_TOKEN));
    expect(backend.deepLinks.take('req-1')).toBeUndefined();
    expect(backend.deepLinks.current()).toMatchObject({ id: 'req-2' });

    const refused = await backend.openDeepLink(link('req-3', TOKEN, 'unknown'));
    expect(refused).toMatchObject({
      kind: 'refused',
      error: { code: 'NOT_FOUND', details: { deepLink: 'unknown-cluster', fieldPath: 'cluster' } },
    });
    expect(backend.deepLinks.current()).toBeNull();
    expect(backend.deepLinks.take('req-2')).toBeUndefined();
  });

  it('drops the request on Cancel (deepLinks.dismiss), but not a newer one', async () => {
    await backend.openDeepLink(link());
    expect(await backend.handlers['deepLinks.dismiss']({ id: 'req-0' })).toEqual({ ok: true, value: null });
    expect(backend.deepLinks.current()).toMatchObject({ id: 'req-1' });
    expect(await backend.handlers['deepLinks.dismiss']({ id: 'req-1' })).toEqual({ ok: true, value: null });
    expect(backend.deepLinks.take('req-1')).toBeUndefined();
  });

  it('refuses bad links with a typed error that repeats no token, holding nothing and writing nothing', async () => {
    const before = await snapshot();
    const bad: [unknown, string][] = [
      [42, 'malformed'],
      ['https://lab/authorize-web-session', 'malformed'],
      [link('req-1', 'short'), 'malformed'],
      [link().replace('%2Fweb%2Fhome', '%2F%2Fevil.example'), 'malformed'],
      [link().replace('/authorize-web-session', '/delete-everything'), 'unsupported-path'],
      [link('req-1', TOKEN, 'nowhere'), 'unknown-cluster'],
    ];
    for (const [text, reason] of bad) {
      const event = await backend.openDeepLink(text);
      expect(event, String(text)).toMatchObject({
        kind: 'refused',
        error: { details: { deepLink: reason } },
      });
    }
    expect(events).toHaveLength(bad.length);
    expect(JSON.stringify(events)).not.toContain(TOKEN);
    expect(backend.deepLinks.current()).toBeNull();
    expect(await snapshot()).toEqual(before);
  });
});
