// `keyport-connect`'s command line, in process, against a real backend's link socket. Starting the app
// (no app running) is covered end to end by test/deep-link-xdg-e2e.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import { createBackend } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { listenForLinks } from '../backend/link-socket';
import type { LinkSocket } from '../backend/link-socket';
import { main } from './keyport-connect';

const TOKEN = 'web-token_0123456789abcdefghij';
const link = (cluster = 'lab') =>
  `keyport://${cluster}/authorize-web-session?id=req-1&token=${TOKEN}&redirect=%2F`;

let home: string;
let backend: Backend;
let socket: LinkSocket;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'kp-cmd-'));
  const store = new ProfileStore(home);
  await store.trustCluster({
    address: '127.0.0.1:3025',
    name: 'lab',
    caPin: `sha256:${'a'.repeat(64)}`,
    caPem: 'pem',
    trustedAtMs: 1,
  });
  backend = createBackend({ profiles: store, keystoreKind: 'file', env: {}, watchProfiles: false });
  socket = await listenForLinks(home, (text) => backend.openDeepLink(text));
});

afterEach(async () => {
  vi.restoreAllMocks();
  await socket.close();
  await backend.close();
  await rm(home, { recursive: true, force: true });
});

function output() {
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args) => void lines.push(args.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...args) => void lines.push(args.join(' ')));
  return lines;
}

describe('keyport-connect', () => {
  it('open-url hands the link to the running app and exits 0, printing nothing', async () => {
    const lines = output();
    expect(await main(['open-url', link()], { KEYPORT_HOME: home })).toBe(0);
    expect(lines).toEqual([]);
    expect(backend.deepLinks.current()).toMatchObject({ id: 'req-1' });
  });

  it('open-url of a refused link exits 1 with the reason, never the token', async () => {
    const lines = output();
    expect(await main(['open-url', link('elsewhere')], { KEYPORT_HOME: home })).toBe(1);
    expect(lines.join('\n')).toContain('does not know');
    expect(lines.join('\n')).not.toContain(TOKEN);
    expect(backend.deepLinks.current()).toBeNull();
  });

  it('exits 2 with the usage on anything else', async () => {
    const lines = output();
    for (const argv of [['open-url'], ['open'], ['open-url', link(), 'extra'], [link()]]) {
      expect(await main(argv, { KEYPORT_HOME: home }), argv.join(' ')).toBe(2);
    }
    expect(lines.every((line) => line.startsWith('Usage: keyport-connect'))).toBe(true);
    expect(await main(['--help'], { KEYPORT_HOME: home })).toBe(0);
  });
});
