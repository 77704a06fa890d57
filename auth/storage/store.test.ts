import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from './store';
import type { Store } from './store';

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyport-store-'));
  store = await openSqliteStore(dir);
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Store', () => {
  it('spends a signup token once, even when two spends race', async () => {
    await store.insertUser('alice', '{"roles":["access"]}', 1);
    await store.insertSignupToken({
      token_hash: 'h',
      user: 'alice',
      created_ms: 1,
      expires_ms: 10_000,
      used: 0,
    });
    const results = await Promise.all([store.consumeSignupToken('h', 5), store.consumeSignupToken('h', 5)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.consumeSignupToken('h', 5)).toBeUndefined();
  });

  it('refuses an expired signup token and leaves it unspent', async () => {
    await store.insertSignupToken({
      token_hash: 'old',
      user: 'alice',
      created_ms: 1,
      expires_ms: 100,
      used: 0,
    });
    expect(await store.consumeSignupToken('old', 100)).toBeUndefined();
    expect((await store.getSignupToken('old'))?.used).toBe(0);
  });

  it('accepts each TOTP time step once and never an older one', async () => {
    await store.insertUser('alice', '{"roles":["access"]}', 1);
    const device = { id: 'd1', user: 'alice', name: 'otp', type: 'totp' as const, added_ms: 1, passkey: 0 };
    expect(await store.insertDevice(device)).toBe(true);
    expect(await store.acceptTotpStep('d1', 100, 1)).toBe(true);
    expect(await store.acceptTotpStep('d1', 100, 2)).toBe(false);
    expect(await store.acceptTotpStep('d1', 99, 3)).toBe(false);
    expect(await store.acceptTotpStep('d1', 101, 4)).toBe(true);
  });

  it('keeps device names unique per user', async () => {
    await store.insertUser('alice', '{"roles":["access"]}', 1);
    const device = { id: 'd1', user: 'alice', name: 'otp', type: 'totp' as const, added_ms: 1, passkey: 0 };
    expect(await store.insertDevice(device)).toBe(true);
    expect(await store.insertDevice({ ...device, id: 'd2' })).toBe(false);
    expect(await store.insertDevice({ ...device, id: 'd3', user: 'bob' })).toBe(true);
  });

  it('spends a challenge once', async () => {
    await store.insertChallenge({
      id: 'c',
      user: 'alice',
      scope: 'LOGIN',
      payload_json: '{}',
      created_ms: 1,
      expires_ms: 2,
      used: 0,
    });
    const [first, second] = await Promise.all([store.consumeChallenge('c'), store.consumeChallenge('c')]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
  });

  it('rolls a failed transaction back whole', async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.insertUser('carol', '{"roles":["access"]}', 1);
        await tx.putRole('r', '{}', false, 1);
        throw new Error('crash in the middle');
      }),
    ).rejects.toThrow('crash in the middle');
    expect(await store.getUser('carol')).toBeUndefined();
    expect(await store.getRoleJson('r')).toBeUndefined();
  });

  it('writes a role only with replace when it exists', async () => {
    expect(await store.putRole('r', '{"v":1}', false, 1)).toBe(true);
    expect(await store.putRole('r', '{"v":2}', false, 2)).toBe(false);
    expect(await store.getRoleJson('r')).toBe('{"v":1}');
    expect(await store.putRole('r', '{"v":3}', true, 3)).toBe(true);
    expect(await store.getRoleJson('r')).toBe('{"v":3}');
  });

  it('counts failures per (name, address) within a window, and reservations until they expire', async () => {
    const throttle = store.throttle;
    for (const time of [10, 20, 30]) await throttle.recordFailure('alice', '10.0.0.1', time);
    await throttle.recordFailure('alice', '10.0.0.2', 30);
    const pending = await throttle.addPending('alice', '10.0.0.1', 30, 100);
    expect(await throttle.countAttempts('alice', '10.0.0.1', 15, 50)).toEqual({
      failed: 2,
      pending: 1,
      lastFailureMs: 30,
    });
    // An expired reservation (a replica that died mid-check) no longer counts.
    expect((await throttle.countAttempts('alice', '10.0.0.1', 15, 100)).pending).toBe(0);
    await throttle.markFailed(pending, 40);
    expect(await throttle.lockouts('alice', 0, 4, 1000)).toEqual([
      { name: 'alice', clientAddr: '10.0.0.1', failed: 4, untilMs: 1040 },
    ]);
    await throttle.clearFailures('alice', '10.0.0.1');
    expect((await throttle.countAttempts('alice', '10.0.0.1', 0, 50)).failed).toBe(0);
    expect((await throttle.countAttempts('alice', '10.0.0.2', 0, 50)).failed).toBe(1);
    await throttle.clearFailures('alice');
    expect((await throttle.countAttempts('alice', '10.0.0.2', 0, 50)).failed).toBe(0);
  });

  it('counts rate-limit hits in fixed windows, atomically under concurrency', async () => {
    const hits = await Promise.all(
      Array.from({ length: 20 }, () => store.throttle.hit('addr:x', 61_000, 60_000)),
    );
    expect(hits.map((h) => h.count).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(hits[0]!.windowEndMs).toBe(120_000);
    expect(await store.throttle.hit('addr:x', 125_000, 60_000)).toEqual({ count: 1, windowEndMs: 180_000 });
  });

  it('migrates an existing database again without harm and keeps its data private', async () => {
    await store.insertUser('alice', '{"roles":["access"]}', 1);
    await store.close();
    store = await openSqliteStore(dir);
    expect((await store.getUser('alice'))?.name).toBe('alice');
    expect((await stat(join(dir, 'keyport.db'))).mode & 0o077).toBe(0);
  });
});
