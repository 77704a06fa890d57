// The socket `keyport-connect open-url` hands links over, against a real backend on a real profile store.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import type { DeepLinkEvent } from '../../preload/contract';
import { createBackend } from './backend';
import type { Backend } from './backend';
import { MAX_DEEP_LINK_LENGTH } from './deep-link';
import { linkSocketPath, listenForLinks, sendLink } from './link-socket';
import type { LinkSocket } from './link-socket';

const TOKEN = 'web-token_0123456789abcdefghij';
const LINK = `keyport://lab/authorize-web-session?id=req-1&token=${TOKEN}&redirect=%2F`;

let home: string;
let backend: Backend;
let events: DeepLinkEvent[];
let socket: LinkSocket | undefined;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'kp-links-'));
  const store = new ProfileStore(home);
  await store.trustCluster({
    address: '127.0.0.1:3025',
    name: 'lab',
    caPin: `sha256:${'a'.repeat(64)}`,
    caPem: 'pem',
    trustedAtMs: 1,
  });
  backend = createBackend({ profiles: store, keystoreKind: 'file', env: {}, watchProfiles: false });
  events = [];
  backend.on('onDeepLink', (event) => events.push(event));
});

afterEach(async () => {
  await socket?.close();
  socket = undefined;
  await backend.close();
  await rm(home, { recursive: true, force: true });
});

/** Writes raw bytes to the socket and returns what the app answers before it closes. */
function raw(path: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = connect(path, () => client.write(data));
    let reply = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (reply += chunk));
    client.on('error', reject);
    client.on('close', () => resolve(reply));
  });
}

describe('the link socket', () => {
  it('is 0600 in a 0700 directory in KEYPORT_HOME, and hands a link to the backend', async () => {
    socket = await listenForLinks(home, (link) => backend.openDeepLink(link));
    expect(socket.path).toBe(linkSocketPath(home));
    expect(socket.path.startsWith(home)).toBe(true);
    expect((await stat(socket.path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, 'connect'))).mode & 0o777).toBe(0o700);

    expect(await sendLink(home, LINK)).toEqual({ delivered: true });
    expect(events).toEqual([expect.objectContaining({ kind: 'authorizeWebSession', id: 'req-1' })]);
    expect(backend.deepLinks.take('req-1')?.token).toBe(TOKEN);
  });

  it('answers a refused link with its reason, and no token', async () => {
    socket = await listenForLinks(home, (link) => backend.openDeepLink(link));
    const result = await sendLink(home, LINK.replace('keyport://lab', 'keyport://elsewhere'));
    expect(result).toEqual({
      delivered: false,
      answer: { ok: false, code: 'NOT_FOUND', reason: 'unknown-cluster', message: expect.any(String) },
    });
    expect(JSON.stringify(result)).not.toContain(TOKEN);
    expect(backend.deepLinks.current()).toBeNull();
  });

  it('refuses a message longer than a link without handing anything on', async () => {
    socket = await listenForLinks(home, (link) => backend.openDeepLink(link));
    const reply = await raw(socket.path, 'k'.repeat(MAX_DEEP_LINK_LENGTH + 10));
    expect(JSON.parse(reply)).toMatchObject({ ok: false, reason: 'malformed' });
    const long = await raw(socket.path, `${'k'.repeat(MAX_DEEP_LINK_LENGTH + 1)}\n`);
    expect(JSON.parse(long)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(events).toEqual([]);
    // One link per connection: what follows the first line is not read.
    const two = await raw(socket.path, `${LINK}\n${LINK.replace('req-1', 'req-2')}\n`);
    expect(JSON.parse(two)).toEqual({ ok: true });
    expect(events).toHaveLength(1);
  });

  it('says "no app" when none listens, and replaces a stale socket but not a live one', async () => {
    expect(await sendLink(home, LINK)).toEqual({ delivered: false });
    socket = await listenForLinks(home, (link) => backend.openDeepLink(link));
    await expect(listenForLinks(home, (link) => backend.openDeepLink(link))).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
    await socket.close();
    socket = undefined;
    expect(await sendLink(home, LINK)).toEqual({ delivered: false });

    // A socket left behind by an app that was killed: a process listens, and dies by SIGKILL.
    const path = linkSocketPath(home);
    const dying = spawn(
      process.execPath,
      ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve) => dying.stdout!.once('data', resolve));
    const gone = new Promise((resolve) => dying.once('exit', resolve));
    dying.kill('SIGKILL');
    await gone;
    expect((await stat(path)).isSocket()).toBe(true);
    socket = await listenForLinks(home, (link) => backend.openDeepLink(link));
    expect(await sendLink(home, LINK)).toEqual({ delivered: true });
    expect(socket.path).toBe(path);
  });

  it('refuses a KEYPORT_HOME too long for a UNIX socket path, with a clear error', async () => {
    await expect(
      listenForLinks(join(home, 'x'.repeat(120)), async () => ({
        kind: 'refused' as const,
        error: { code: 'INTERNAL' as const, message: '', details: {} },
      })),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('shorter KEYPORT_HOME'),
    });
  });

  it('refuses to listen where the folder is open to others or the path is not a socket', async () => {
    await mkdir(join(home, 'connect'), { mode: 0o755 });
    await chmod(join(home, 'connect'), 0o755);
    await expect(listenForLinks(home, (link) => backend.openDeepLink(link))).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
    });
    await chmod(join(home, 'connect'), 0o700);
    await writeFile(linkSocketPath(home), 'not a socket');
    await expect(listenForLinks(home, (link) => backend.openDeepLink(link))).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
    });
  });
});
