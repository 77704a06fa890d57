// retryWithRelogin and the session watcher against a real keyport-auth on a lab clock: the test moves the
// cluster's time past the session's expiry, so its calls are refused CERTIFICATE_EXPIRED (resolvable by
// relogin) without waiting for a certificate to expire on the wall clock.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDevices } from '../../client/ceremonies/devices';
import { ProfileStore } from '../../client/profiles';
import { createLabClock } from '../../lab/clock';
import type { LabClock } from '../../lab/clock';
import { startLabCluster } from '../../lab/cluster';
import type { LabCluster } from '../../lab/cluster';
import { folderSnapshot } from '../../lab/folder-snapshot';
import { createHardwareKeyUsers, hardwareKeyUserPassword } from '../../lab/hardware-key-users';
import { KeyportError } from '../../proto/errors';
import type { Prompt, ProfileView, SessionNotice } from '../../preload/contract';
import { createBackend } from './backend';
import { clockTime } from './relogin';
import type { Backend } from './backend';

const USER = 'rita';
const PASSWORD = hardwareKeyUserPassword(USER);

let clock: LabClock;
let cluster: LabCluster;
let work: string;
let home: string;
let profiles: ProfileStore;
let backend: Backend;
let shown: Prompt[] = [];
const notices: SessionNotice[] = [];
/** How a relogin prompt is answered: with the password, cancelled, or left open. */
let answerRelogin: 'password' | 'cancel' | 'wait' = 'password';

async function session(): Promise<ProfileView> {
  const status = await backend.handlers['auth.status']();
  if (!status.ok || !status.value) throw new Error('not signed in');
  return status.value;
}

/** Moves the cluster's time past the session's expiry: its next call is refused CERTIFICATE_EXPIRED. */
async function expireSession(): Promise<void> {
  clock.advance(Math.max(0, (await session()).expiresMs - clock.now()) + 60_000);
}

/** An action as the profile: a real ListDevices call, counting its runs. */
function countedListDevices() {
  const counted = { runs: 0 };
  const action = async () => {
    counted.runs += 1;
    return listDevices(profiles, {});
  };
  return { counted, action };
}

beforeAll(async () => {
  clock = createLabClock();
  work = await mkdtemp(join(tmpdir(), 'keyport-retry-relogin-'));
  home = join(work, 'home');
  cluster = await startLabCluster({
    clusterName: 'retry-relogin',
    configYaml: 'auth_service:\n  authentication:\n    type: local\n    second_factor: "off"\n',
    env: clock.env,
  });
  await createHardwareKeyUsers(cluster, { [USER]: 'none' });
  profiles = new ProfileStore(home);
  backend = createBackend({
    profiles,
    keystoreKind: 'file',
    env: {},
    watchProfiles: false,
    clock: clock.now,
    sessionNotices: { tickMs: 0 },
  });
  backend.on('onSessionNotice', (notice) => notices.push(notice));
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
  const login = await backend.handlers['auth.login']({
    address: cluster.address,
    user: USER,
    password: PASSWORD,
    ttlSeconds: 3600,
  });
  expect(login).toMatchObject({ ok: true, value: { user: USER } });
}, 180_000);

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
  clock?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the session watcher in the backend', () => {
  it('says "ends soon" and "ended" of the signed-in session on the service clock, once each', async () => {
    const { expiresMs } = await session();
    backend.sessions.check();
    expect(notices).toEqual([]);
    clock.advance(expiresMs - clock.now() - 5 * 60_000);
    backend.sessions.check();
    backend.sessions.check();
    expect(notices).toEqual([
      { kind: 'endsSoon', address: cluster.address, user: USER, expiresMs, nowMs: expect.any(Number) },
    ]);
    clock.advance(10 * 60_000);
    backend.sessions.check();
    expect(notices.map((n) => n.kind)).toEqual(['endsSoon', 'ended']);
    // A window that opens now asks what was said: the session ended.
    expect(await backend.handlers['auth.sessionNotices']()).toEqual({
      ok: true,
      value: [{ kind: 'ended', address: cluster.address, user: USER, expiresMs, nowMs: expect.any(Number) }],
    });
  });
});

describe('retryWithRelogin', () => {
  it('one relogin prompt for three waiting actions; each runs again once, and the session is new', async () => {
    await expireSession();
    const before = await session();
    shown = [];
    answerRelogin = 'wait';
    const actions = [countedListDevices(), countedListDevices(), countedListDevices()];
    const results = actions.map(({ action }) => backend.relogin.retryWithRelogin(cluster.address, action));
    // All three are refused and wait for the one prompt; only then is it answered.
    await expect.poll(() => shown.filter((p) => p.kind === 'relogin').length, { timeout: 60_000 }).toBe(1);
    const prompt = shown.find((p) => p.kind === 'relogin');
    expect(prompt).toMatchObject({
      cluster: cluster.address,
      user: USER,
      passwordless: false,
      reason: [expect.stringMatching(/^Your session ended at \d\d:\d\d\.$/)],
    });
    await expect
      .poll(() => actions.every(({ counted }) => counted.runs === 1), { timeout: 60_000 })
      .toBe(true);
    await backend.handlers['prompts.answer']({
      id: prompt!.id,
      value: { kind: 'relogin', password: PASSWORD },
    });
    expect(await Promise.all(results)).toEqual([[], [], []]);
    expect(actions.map(({ counted }) => counted.runs)).toEqual([2, 2, 2]);
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
    const after = await session();
    expect(after.expiresMs).toBeGreaterThan(before.expiresMs);
    // A handler goes through it too: the renewed session answers at once, with no prompt.
    expect(await backend.handlers['mfa.list']()).toEqual({ ok: true, value: [] });
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
  });

  it('a handler refused for an expired session shows the relogin prompt and completes after it', async () => {
    await expireSession();
    shown = [];
    answerRelogin = 'password';
    expect(await backend.handlers['nodes.list']()).toEqual({ ok: true, value: [] });
    expect(shown.map((p) => p.kind)).toEqual(['relogin']);
  });

  it('a cancelled relogin fails all three waiting actions with CANCELLED, and KEYPORT_HOME is as it was', async () => {
    await expireSession();
    const homeBefore = await folderSnapshot(home);
    shown = [];
    answerRelogin = 'wait';
    const actions = [countedListDevices(), countedListDevices(), countedListDevices()];
    const results = actions.map(({ action }) =>
      backend.relogin.retryWithRelogin(cluster.address, action).catch((error: unknown) => error),
    );
    await expect.poll(() => shown.filter((p) => p.kind === 'relogin').length, { timeout: 60_000 }).toBe(1);
    await expect
      .poll(() => actions.every(({ counted }) => counted.runs === 1), { timeout: 60_000 })
      .toBe(true);
    const prompt = shown.find((p) => p.kind === 'relogin');
    await backend.handlers['prompts.cancel']({ id: prompt!.id });
    const errors = await Promise.all(results);
    for (const error of errors) expect(error).toMatchObject({ name: 'KeyportError', code: 'CANCELLED' });
    expect(actions.map(({ counted }) => counted.runs)).toEqual([1, 1, 1]);
    expect(await folderSnapshot(home)).toEqual(homeBefore);
    // The handler's answer to a cancelled relogin is CANCELLED too (not the expiry).
    answerRelogin = 'cancel';
    expect(await backend.handlers['mfa.list']()).toMatchObject({ ok: false, error: { code: 'CANCELLED' } });
  });

  it('an action still running when the relogin is cancelled, refused after it, is CANCELLED too: no second prompt', async () => {
    await expireSession();
    shown = [];
    answerRelogin = 'wait';
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = backend.relogin
      .retryWithRelogin(cluster.address, () => listDevices(profiles, {}))
      .catch((error: unknown) => error);
    let slowRuns = 0;
    const slow = backend.relogin
      .retryWithRelogin(cluster.address, async () => {
        slowRuns += 1;
        await gate;
        return listDevices(profiles, {});
      })
      .catch((error: unknown) => error);
    await expect.poll(() => shown.filter((p) => p.kind === 'relogin').length, { timeout: 60_000 }).toBe(1);
    const prompt = shown.find((p) => p.kind === 'relogin');
    await backend.handlers['prompts.cancel']({ id: prompt!.id });
    expect(await first).toMatchObject({ name: 'KeyportError', code: 'CANCELLED' });
    // The slow action is refused only now, after the cancel: the same answer, and nothing asked again.
    release();
    expect(await slow).toMatchObject({ name: 'KeyportError', code: 'CANCELLED' });
    expect(slowRuns).toBe(1);
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
  });

  it('retries the action exactly once: a second refusal is its answer, with no second prompt', async () => {
    // The session expired in the test before: this relogin renews it; the action is refused again anyway.
    shown = [];
    answerRelogin = 'password';
    let runs = 0;
    const refusal = new KeyportError('CERTIFICATE_EXPIRED', 'Your session has expired.', {
      resolvableByRelogin: true,
    });
    const outcome = await backend.relogin
      .retryWithRelogin(cluster.address, async () => {
        runs += 1;
        throw refusal;
      })
      .catch((error: unknown) => error);
    expect(outcome).toBe(refusal);
    expect(runs).toBe(2);
    expect(shown.filter((p) => p.kind === 'relogin')).toHaveLength(1);
  });

  it('never starts a relogin from an error no relogin resolves', async () => {
    shown = [];
    let runs = 0;
    const denied = new KeyportError('ACCESS_DENIED', 'Not allowed.');
    await expect(
      backend.relogin.retryWithRelogin(cluster.address, async () => {
        runs += 1;
        throw denied;
      }),
    ).rejects.toBe(denied);
    expect(runs).toBe(1);
    expect(shown).toEqual([]);
  });
});

describe('auth.signInAgain (the banner\'s "Sign in again")', () => {
  it('before the end: the relogin prompt says when the session ends, and the session is renewed', async () => {
    const before = await session();
    shown = [];
    answerRelogin = 'password';
    const renewed = await backend.handlers['auth.signInAgain']({ address: cluster.address });
    expect(renewed).toMatchObject({ ok: true, value: { address: cluster.address, user: USER } });
    expect(shown.filter((p) => p.kind === 'relogin')).toEqual([
      expect.objectContaining({
        cluster: cluster.address,
        user: USER,
        reason: [`Your session ends at ${clockTime(before.expiresMs)}.`],
        cause: 'endsSoon',
        passwordless: false,
        secondFactors: [],
        allowPasswordless: false,
      }),
    ]);
    expect(await profiles.getProfile(cluster.address)).toMatchObject({
      validAfterMs: renewed.ok ? renewed.value.validAfterMs : -1,
    });
  });

  it('after the end it says the session ended; a cancel answers CANCELLED and KEYPORT_HOME is as it was', async () => {
    await expireSession();
    const ended = await session();
    const homeBefore = await folderSnapshot(home);
    shown = [];
    answerRelogin = 'cancel';
    expect(await backend.handlers['auth.signInAgain']({ address: cluster.address })).toMatchObject({
      ok: false,
      error: { code: 'CANCELLED' },
    });
    expect(shown.map((p) => (p.kind === 'relogin' ? [p.cause, p.reason] : p.kind))).toEqual([
      ['expired', [`Your session ended at ${clockTime(ended.expiresMs)}.`]],
    ]);
    expect(await folderSnapshot(home)).toEqual(homeBefore);
  });

  it('asks nothing for a cluster with no session, and refuses a malformed address before anything runs', async () => {
    shown = [];
    expect(await backend.handlers['auth.signInAgain']({ address: '127.0.0.1:1' })).toMatchObject({
      ok: false,
    });
    expect(await backend.handlers['auth.signInAgain']({ address: 'https://x' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', details: { fieldPath: 'address' } },
    });
    expect(shown).toEqual([]);
  });
});
