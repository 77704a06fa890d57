import { describe, expect, it } from 'vitest';
import type { ProfileView } from '../../../preload/contract';
import { cluster, fail, ok, profile } from '../testing/fakeKeyport';
import { appReducer, initialAppState } from './appState';
import type { AppState } from './appState';

const a = cluster({ address: 'a.example.com:3025', name: 'a' });
const b = cluster({ address: 'b.example.com:3025', name: 'b' });

function started(clusters = [a, b], status: ProfileView | null = null): AppState {
  return appReducer(initialAppState, {
    type: 'started',
    info: fail('INTERNAL'),
    clusters: ok(clusters),
    status: ok(status),
  });
}

describe('appReducer', () => {
  it('starts on the account when a profile exists', () => {
    const state = started([a, b], profile({ address: b.address }));
    expect(state.screen).toEqual({ name: 'account' });
  });

  it('starts on the login of the first cluster without a profile, and on the clusters without any', () => {
    expect(started().screen).toEqual({ name: 'login', address: a.address });
    expect(started([]).screen).toEqual({ name: 'clusters' });
  });

  it('keeps the first startup error to show it', () => {
    const state = appReducer(initialAppState, {
      type: 'started',
      info: ok({
        name: 'x',
        version: '1',
        platform: 'p',
        keystore: 'file',
        keyportHome: '/',
        labSecurityKey: false,
      }),
      clusters: ok([a]),
      status: fail('PRECONDITION_FAILED', 'locked', { keystoreCode: 'KEYCHAIN_LOCKED' }),
    });
    expect(state.startupError?.code).toBe('PRECONDITION_FAILED');
    expect(state.screen).toEqual({ name: 'login', address: a.address });
  });

  it("goes from the account to its cluster's login when its profile is signed out", () => {
    const state = started([a, b], profile({ address: b.address }));
    const next = appReducer(state, { type: 'profileChanged', address: b.address, profile: null });
    expect(next.profile).toBeNull();
    expect(next.screen).toEqual({ name: 'login', address: b.address });
    expect(next.lastUser).toBe('alice');
  });

  it('ignores a sign-out of another cluster than the one shown', () => {
    const state = started([a, b], profile({ address: b.address }));
    expect(appReducer(state, { type: 'profileChanged', address: a.address, profile: null })).toBe(state);
  });

  it('leaves the clusters screen alone on a sign-out', () => {
    let state = started([a, b], profile({ address: b.address }));
    state = appReducer(state, { type: 'navigate', screen: { name: 'clusters' } });
    const next = appReducer(state, { type: 'profileChanged', address: b.address, profile: null });
    expect(next.screen).toEqual({ name: 'clusters' });
  });

  it('leaves a login whose cluster was removed for the clusters screen', () => {
    const state = started();
    expect(appReducer(state, { type: 'clustersLoaded', clusters: [b] }).screen).toEqual({ name: 'clusters' });
  });

  it('does not navigate to the servers without a profile; a sign-out leaves them for the login', () => {
    expect(appReducer(started(), { type: 'navigate', screen: { name: 'servers' } }).screen).not.toEqual({
      name: 'servers',
    });
    let state = started([a, b], profile({ address: b.address }));
    state = appReducer(state, { type: 'navigate', screen: { name: 'servers' } });
    expect(state.screen).toEqual({ name: 'servers' });
    const next = appReducer(state, { type: 'profileChanged', address: b.address, profile: null });
    expect(next.screen).toEqual({ name: 'login', address: b.address });
  });

  it('keeps the servers on show when their session is renewed, not when another cluster signs in', () => {
    let state = started([a, b], profile({ address: b.address }));
    state = appReducer(state, { type: 'navigate', screen: { name: 'servers' } });
    const renewed = profile({ address: b.address, expiresMs: Date.now() + 7_200_000 });
    expect(
      appReducer(state, { type: 'profileChanged', address: b.address, profile: renewed }).screen,
    ).toEqual({
      name: 'servers',
    });
    const other = profile({ address: a.address });
    expect(appReducer(state, { type: 'profileChanged', address: a.address, profile: other }).screen).toEqual({
      name: 'account',
    });
  });

  it('keeps any screen on show when its session is renewed (a relogin), but a sign-in from the login moves on', () => {
    let state = started([a, b], profile({ address: b.address }));
    const renewed = profile({ address: b.address, expiresMs: Date.now() + 7_200_000 });
    state = appReducer(state, { type: 'navigate', screen: { name: 'clusters' } });
    expect(
      appReducer(state, { type: 'profileChanged', address: b.address, profile: renewed }).screen,
    ).toEqual({ name: 'clusters' });
    state = appReducer(state, { type: 'navigate', screen: { name: 'login', address: b.address } });
    expect(
      appReducer(state, { type: 'profileChanged', address: b.address, profile: renewed }).screen,
    ).toEqual({ name: 'account' });
  });

  it('does not navigate to the account without a profile', () => {
    const state = started();
    expect(appReducer(state, { type: 'navigate', screen: { name: 'account' } })).toBe(state);
  });
});
