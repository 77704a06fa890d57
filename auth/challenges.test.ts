// Challenges on a real SQLite store with a clock the test moves: one purpose each, a typed payload
// checked when it is read back, spent once whatever the outcome.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { challengeRefusal, createChallenge, spendChallenge, spendOrThrow } from './challenges';
import type { ServiceContext } from './context';
import { openSqliteStore } from './storage/store';
import type { Store } from './storage/store';

let dir: string;
let store: Store;
let nowMs: number;
let ctx: ServiceContext;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyport-challenges-'));
  store = await openSqliteStore(dir);
  nowMs = 1_800_000_000_000;
  ctx = { store, now: () => nowMs } as ServiceContext;
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('challenges', () => {
  it('gives back the typed payload of its purpose, once', async () => {
    const { id, expiresMs } = await createChallenge(
      ctx,
      'CHALLENGE_SCOPE_LOGIN',
      'lee',
      { totpAllowed: true, webauthnChallenge: 'abc' },
      { ttlMs: 300_000 },
    );
    expect(expiresMs).toBe(nowMs + 300_000);
    const spent = await spendOrThrow(ctx, id, ['CHALLENGE_SCOPE_LOGIN'], 'lee');
    expect(spent).toEqual({
      id,
      purpose: 'CHALLENGE_SCOPE_LOGIN',
      user: 'lee',
      payload: { totpAllowed: true, webauthnChallenge: 'abc' },
      expiresMs,
    });
    expect(await spendChallenge(ctx, id, ['CHALLENGE_SCOPE_LOGIN'])).toEqual({
      ok: false,
      reason: 'unknown or spent',
      user: null,
    });
  });

  it('refuses another purpose, another user and an expired one, and spends it all the same', async () => {
    const make = () =>
      createChallenge(
        ctx,
        'REGISTER_DEVICE',
        'lee',
        { deviceType: 'totp', totpSecret: 'sealed' },
        { ttlMs: 60_000 },
      );
    const first = await make();
    expect(await spendChallenge(ctx, first.id, ['CHALLENGE_SCOPE_MANAGE_DEVICES'])).toMatchObject({
      ok: false,
      reason: 'another purpose',
      user: 'lee',
    });
    expect(await spendChallenge(ctx, first.id, ['REGISTER_DEVICE'])).toMatchObject({
      reason: 'unknown or spent',
    });
    const second = await make();
    expect(await spendChallenge(ctx, second.id, ['REGISTER_DEVICE'], 'kim')).toMatchObject({
      reason: 'another user',
    });
    const third = await make();
    nowMs += 60_000;
    expect(await spendChallenge(ctx, third.id, ['REGISTER_DEVICE'], 'lee')).toMatchObject({
      reason: 'expired',
    });
    // A ceremony's challenge that ran out asks for the ceremony again, never for a relogin.
    expect(challengeRefusal('expired')).toMatchObject({ code: 'EXPIRED' });
    expect(challengeRefusal('expired').fields.resolvableByRelogin).toBeUndefined();
    expect(challengeRefusal('unknown or spent')).toMatchObject({ code: 'EXPIRED' });
    expect(challengeRefusal('unknown or spent').fields.resolvableByRelogin).toBeUndefined();
    expect(challengeRefusal('another user')).toMatchObject({ code: 'ACCESS_DENIED' });
  });

  it('ends no later than notAfterMs (a signup token that ends sooner)', async () => {
    const { expiresMs } = await createChallenge(
      ctx,
      'SIGNUP_REGISTER_DEVICE',
      'lee',
      { deviceType: 'webauthn', webauthnChallenge: 'abc', passwordless: false, tokenHash: 'h' },
      { ttlMs: 300_000, notAfterMs: nowMs + 1_000 },
    );
    expect(expiresMs).toBe(nowMs + 1_000);
  });

  it('refuses to store a payload that does not fit its purpose, and reads a tampered one as unusable', async () => {
    await expect(
      createChallenge(ctx, 'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN', null, { webauthnChallenge: '' } as never, {
        ttlMs: 60_000,
      }),
    ).rejects.toThrow();
    const { id } = await createChallenge(
      ctx,
      'DEVICE_AUTH',
      'lee',
      { kind: 'auth', deviceId: 'd-1', credentialId: 'cred', nonce: 'bm9uY2U=' },
      { ttlMs: 60_000 },
    );
    // What a row edited behind the service's back looks like: a second connection to the same file.
    const db = new SQLite(join(dir, 'keyport.db'));
    db.prepare('UPDATE challenges SET payload_json = ? WHERE id = ?').run('{"credentialId":42}', id);
    db.close();
    expect(await spendChallenge(ctx, id, ['DEVICE_AUTH'])).toMatchObject({
      ok: false,
      reason: 'another purpose',
    });
  });
});
