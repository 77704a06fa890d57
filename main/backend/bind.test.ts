import { describe, expect, it } from 'vitest';
import { KeyportError } from '../../proto/errors';
import { methodNames } from '../../preload/contract';
import { SIGN_IN_METHODS, handlerBinder } from './bind';
import type { Relogin } from './relogin';

/** A retryWithRelogin that records the cluster of each call and runs the action once. */
function recordingRelogin() {
  const clusters: (string | undefined)[] = [];
  const relogin: Pick<Relogin, 'retryWithRelogin'> = {
    retryWithRelogin: (cluster, action) => {
      clusters.push(cluster);
      return action();
    },
  };
  return { clusters, relogin };
}

describe('handlerBinder', () => {
  it('runs every handler but the sign-in ones through retryWithRelogin, as the cluster its argument names', async () => {
    const { clusters, relogin } = recordingRelogin();
    const bind = handlerBinder(relogin);
    expect(await bind('nodes.list', async () => [])({ cluster: '127.0.0.1:3025' })).toEqual({
      ok: true,
      value: [],
    });
    expect(await bind('mfa.list', async () => [])()).toEqual({ ok: true, value: [] });
    expect(await bind('auth.status', async () => null)({ address: '127.0.0.1:3026' })).toEqual({
      ok: true,
      value: null,
    });
    expect(clusters).toEqual(['127.0.0.1:3025', undefined, '127.0.0.1:3026']);
    expect(await bind('auth.logout', async () => null)()).toEqual({ ok: true, value: null });
    expect(clusters).toHaveLength(3);
    expect([...SIGN_IN_METHODS].sort()).toEqual([
      'auth.login',
      'auth.loginPasswordless',
      'auth.loginSso',
      'auth.logout',
      'auth.signInAgain',
    ]);
    expect(methodNames.filter((m) => !SIGN_IN_METHODS.has(m))).toHaveLength(methodNames.length - 5);
  });

  it('validates before anything runs: a malformed argument reaches neither the handler nor a relogin', async () => {
    const { clusters, relogin } = recordingRelogin();
    let runs = 0;
    const handler = handlerBinder(relogin)('nodes.list', async () => {
      runs += 1;
      return [];
    });
    expect(await handler({ cluster: 'https://auth.example.com' })).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGUMENT', details: { fieldPath: 'cluster' } },
    });
    expect(runs).toBe(0);
    expect(clusters).toEqual([]);
  });

  it("hands the relogin's verdict on as a contract error", async () => {
    const cancelled = new KeyportError('CANCELLED', 'Sign-in cancelled: your session is as it was.');
    const bind = handlerBinder({ retryWithRelogin: () => Promise.reject(cancelled) });
    expect(await bind('mfa.list', async () => [])()).toMatchObject({
      ok: false,
      error: { code: 'CANCELLED', message: cancelled.message },
    });
  });
});
