// The app and the keyport CLI share KEYPORT_HOME: a login in one serves the other, and a change made by
// the CLI behind the app's back reaches the app (onProfileChanged) within a second.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../client/profiles';
import type { Profile } from '../../client/profiles';
import { loginUser, nextTotpCode, runKeyport, signUpUserInProcess, startLabCluster } from '../../lab/cluster';
import type { LabCluster, SignedUpUser } from '../../lab/cluster';
import type { EventPayloads } from '../../preload/contract';
import { createBackend } from './backend';
import type { Backend } from './backend';

let cluster: LabCluster;
let home: string;
let person: SignedUpUser;
/** A second user: alice's next OTP step is spent by the CLI login, and a code never works twice. */
let other: SignedUpUser;
let backend: Backend;
const changes: { atMs: number; change: EventPayloads['onProfileChanged'] }[] = [];

beforeAll(async () => {
  cluster = await startLabCluster({ clusterName: 'shared' });
  home = await mkdtemp(join(tmpdir(), 'keyport-shared-'));
  person = await signUpUserInProcess(cluster, home, 'alice', ['access']);
  other = await signUpUserInProcess(cluster, home, 'bob', ['access']);
  backend = createBackend({ profiles: new ProfileStore(home), keystoreKind: 'file', env: {} });
  await backend.ready;
  backend.on('onProfileChanged', (change) => changes.push({ atMs: Date.now(), change }));
});

afterAll(async () => {
  await backend?.close();
  await cluster?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

/** Waits for the report itself; how soon it comes is measured in bench/profile-watch.bench.ts. */
async function nextChange(sinceIndex: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = changes[sinceIndex];
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no onProfileChanged event');
}

describe('profiles shared with the keyport CLI', () => {
  it('shows a CLI login in the app, and the app can use it', async () => {
    const before = changes.length;
    const login = await loginUser(cluster, home, person, ['--keystore', 'file']);
    expect(login.code, login.stderr).toBe(0);
    const { change } = await nextChange(before);
    expect(change).toMatchObject({ address: cluster.address, profile: { user: 'alice', roles: ['access'] } });
    // The app serves the session the CLI made: an authenticated call with the CLI's certificate.
    expect(await backend.handlers['mfa.list']()).toMatchObject({ ok: true, value: [{ type: 'totp' }] });
    expect(changes.length).toBe(before + 1);
  });

  it('shows a CLI logout in the app', async () => {
    const before = changes.length;
    const logout = await runKeyport(['logout'], { home });
    expect(logout.code, logout.stderr).toBe(0);
    const { change } = await nextChange(before);
    expect(change).toEqual({ address: cluster.address, profile: null });
    expect(await backend.handlers['auth.status']()).toEqual({ ok: true, value: null });
  });

  it('serves a login made in the app to the CLI, and reports the app’s own login once', async () => {
    const before = changes.length;
    const stop = backend.on('onPrompt', (prompt) => {
      if (prompt.kind !== 'otpCode') return;
      void backend.handlers['prompts.answer']({
        id: prompt.id,
        value: { kind: 'otpCode', code: nextTotpCode(other.totpSecret) },
      });
    });
    const login = await backend.handlers['auth.login']({
      address: cluster.address,
      user: other.user,
      password: other.password,
      secondFactor: 'otp',
    });
    stop();
    expect(login, JSON.stringify(login)).toMatchObject({ ok: true, value: { user: 'bob' } });
    const status = await runKeyport(['status'], { home });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('bob');
    // The report itself is waited for; a second one (the app's own write seen again) would come within
    // the watcher's debounce, so a short look after the first is enough to catch it.
    await nextChange(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(changes.slice(before).map((c) => c.change.profile?.user)).toEqual(['bob']);
  });

  it('never shows a half-written profile to a reader while writers race', async () => {
    const stores = [new ProfileStore(home), new ProfileStore(home)];
    const saved = await stores[0]!.getProfile();
    if (!saved) throw new Error('no profile');
    const writes = Array.from({ length: 40 }, (_, i) =>
      stores[i % 2]!.saveProfile({ ...saved, expiresMs: saved.expiresMs - i } satisfies Profile),
    );
    const reads = Array.from({ length: 40 }, () => stores[1]!.getProfile());
    const seen = await Promise.all(reads);
    await Promise.all(writes);
    for (const profile of seen) expect(profile?.user).toBe('bob');
  });
});
