// The CLI asks the app to sign in again, with real processes: keyport-auth on a lab clock, the backend in
// this process listening on KEYPORT_HOME's relogin socket, and the keyport CLI as a child process on the
// same clock. An expired `keyport status` waits while the app shows its relogin prompt; the test answers
// it as the person would, and the CLI completes with the new profile.
import { lstatSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askAppToRelogin, reloginSocketPath } from '../client/app-relogin';
import { ProfileStore } from '../client/profiles';
import { createLabClock } from '../lab/clock';
import type { LabClock } from '../lab/clock';
import { runKeyport, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { folderSnapshot } from '../lab/folder-snapshot';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../lab/hardware-key-users';
import type { Prompt } from '../preload/contract';
import { EXIT } from '../cli/exit-codes';
import { createBackend } from '../main/backend/backend';
import type { Backend } from '../main/backend/backend';
import type { LinkSocket } from '../main/backend/link-socket';
import { CLI_RELOGIN_REASON, listenForReloginRequests } from '../main/backend/relogin-socket';

const USER = 'carl';
const PASSWORD = hardwareKeyUserPassword(USER);

let clock: LabClock;
let cluster: LabCluster;
let work: string;
let home: string;
let backend: Backend;
let socket: LinkSocket | undefined;
let shown: Prompt[] = [];
let answerRelogin: 'password' | 'cancel' | 'wait' = 'password';

/** Sends raw bytes to the relogin socket; resolves with the app's answer line. */
function rawRequest(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = connect(reloginSocketPath(home));
    let reply = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => (reply += chunk));
    client.once('error', reject);
    client.once('close', () => resolve(reply));
    client.write(text);
  });
}

async function expiresMs(): Promise<number> {
  const profile = await new ProfileStore(home).getProfile();
  if (!profile) throw new Error('not signed in');
  return profile.expiresMs;
}

beforeAll(async () => {
  clock = createLabClock();
  // A short path: a UNIX socket's path has at most 107 bytes.
  work = await mkdtemp(join(tmpdir(), 'kp-cli-relogin-'));
  home = join(work, 'home');
  cluster = await startLabCluster({
    clusterName: 'cli-relogin',
    configYaml: 'auth_service:\n  authentication:\n    type: local\n    second_factor: "off"\n',
    env: clock.env,
  });
  await createHardwareKeyUsers(cluster, { [USER]: 'none' });
  backend = createBackend({
    profiles: new ProfileStore(home),
    keystoreKind: 'file',
    env: {},
    watchProfiles: false,
    clock: clock.now,
    sessionNotices: { tickMs: 0 },
  });
  backend.on('onPrompt', (prompt) => {
    shown.push(prompt);
    if (prompt.kind !== 'relogin' || answerRelogin === 'wait') return;
    if (answerRelogin === 'cancel') void backend.handlers['prompts.cancel']({ id: prompt.id });
    else
      void backend.handlers['prompts.answer']({
        id: prompt.id,
        value: { kind: 'relogin', password: PASSWORD },
      });
  });
  expect(
    await backend.handlers['clusters.add']({ address: cluster.address, caPin: cluster.caPin }),
  ).toMatchObject({
    ok: true,
  });
  expect(
    await backend.handlers['auth.login']({
      address: cluster.address,
      user: USER,
      password: PASSWORD,
      ttlSeconds: 3600,
    }),
  ).toMatchObject({ ok: true });
}, 180_000);

afterAll(async () => {
  await socket?.close();
  await backend?.close();
  await cluster?.stop();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the relogin socket', () => {
  it('without the app, the CLI is told no app runs and an expired `keyport status` says so as before', async () => {
    await expect(askAppToRelogin(home, cluster.address)).resolves.toBe(false);
    clock.advance((await expiresMs()) - clock.now() + 60_000);
    const result = await runKeyport(['status'], { home, env: clock.env, timeoutMs: 120_000 });
    expect(result.code).toBe(EXIT.expired);
    expect(`${result.stdout}${result.stderr}`).not.toContain('Keyport Connect');
  });

  it('is 0600, and a malformed request is refused INVALID_ARGUMENT with no prompt shown', async () => {
    socket = await listenForReloginRequests(home, backend.relogin);
    expect(lstatSync(socket.path).mode & 0o777).toBe(0o600);
    shown = [];
    for (const text of [
      'not json\n',
      '{"cluster":"a b"}\n',
      '{"cluster":"127.0.0.1:1","x":1}\n',
      `${'x'.repeat(2000)}`,
    ]) {
      const reply = JSON.parse(await rawRequest(text)) as { ok: boolean; code: string };
      expect(reply, text.slice(0, 40)).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' });
    }
    // A cluster without a session: NOT signed in, and nothing asked of the person.
    await expect(askAppToRelogin(home, '127.0.0.1:1')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(shown).toEqual([]);
  });

  it('an expired `keyport status` asks the app, waits for the sign-in there, and completes with the new profile', async () => {
    shown = [];
    answerRelogin = 'wait';
    const before = await expiresMs();
    expect(before).toBeLessThanOrEqual(clock.now());
    let settled = false;
    const running = runKeyport(['status'], { home, env: clock.env, timeoutMs: 120_000 }).finally(
      () => (settled = true),
    );
    // The app shows its prompt; the CLI waits for the person.
    await expect.poll(() => shown.filter((p) => p.kind === 'relogin').length, { timeout: 60_000 }).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    const prompt = shown.find((p) => p.kind === 'relogin')!;
    expect(
      await backend.handlers['prompts.answer']({
        id: prompt.id,
        value: { kind: 'relogin', password: PASSWORD },
      }),
    ).toEqual({
      ok: true,
      value: null,
    });
    const result = await running;
    expect(result.code).toBe(EXIT.ok);
    // The CLI says where to sign in (on stderr, as its prompts), and no error.
    expect(result.stderr.trim()).toBe(
      `Sign in to ${cluster.address} again in Keyport Connect; this command goes on after it (--no-app-relogin signs in here).`,
    );
    expect(result.stdout).toContain('Signed in again in Keyport Connect.');
    expect(shown.filter((p) => p.kind === 'relogin')).toEqual([
      expect.objectContaining({ cluster: cluster.address, user: USER, reason: [CLI_RELOGIN_REASON] }),
    ]);
    expect(await expiresMs()).toBeGreaterThan(clock.now());
    // The CLI typed no password: its standard input was empty, and the app's prompt took it.
    expect(`${result.stdout}${result.stderr}`).not.toMatch(/password/i);
  });

  it('a relogin cancelled in the app ends the CLI with CANCELLED, and KEYPORT_HOME is as it was', async () => {
    clock.advance((await expiresMs()) - clock.now() + 60_000);
    const homeBefore = await folderSnapshot(home);
    shown = [];
    answerRelogin = 'cancel';
    const result = await runKeyport(['status'], { home, env: clock.env, timeoutMs: 120_000 });
    expect(result.code).toBe(EXIT.cancelled);
    expect(result.stderr).toMatch(/cancelled/i);
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
    expect(await folderSnapshot(home)).toEqual(homeBefore);
  });

  it('--no-app-relogin never asks the app', async () => {
    shown = [];
    const result = await runKeyport(['status', '--no-app-relogin'], {
      home,
      env: clock.env,
      timeoutMs: 120_000,
    });
    expect(result.code).toBe(EXIT.expired);
    expect(shown).toEqual([]);
  });

  it('an expired `keyport ls` asks the app too, and lists the nodes after the sign-in there', async () => {
    expect(await expiresMs()).toBeLessThanOrEqual(clock.now());
    shown = [];
    answerRelogin = 'password';
    const result = await runKeyport(['ls'], { home, env: clock.env, timeoutMs: 120_000 });
    expect(result.code).toBe(EXIT.ok);
    expect(result.stdout).toMatch(/^Node\s+Address\s+Labels\s+Logins/);
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
  });
});
