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

  it('counts login failures within a window', async () => {
    for (const time of [10, 20, 30]) await store.recordLoginFailure('alice', time);
    expect(await store.countLoginFailures('alice', 15)).toBe(2);
    await store.clearLoginFailures('alice');
    expect(await store.countLoginFailures('alice', 0)).toBe(0);
  });

  it('migrates an existing database again without harm and keeps its data private', async () => {
    await store.insertUser('alice', '{"roles":["access"]}', 1);
    await store.close();
    store = await openSqliteStore(dir);
    expect((await store.getUser('alice'))?.name).toBe('alice');
    expect((await stat(join(dir, 'keyport.db'))).mode & 0o077).toBe(0);
  });
});
