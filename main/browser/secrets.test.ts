import { describe, expect, it } from 'vitest';
import { LaunchTokens, looksLikeSecret, newSecret, Sessions } from './secrets';

describe('secrets', () => {
  it('are 32 random bytes in base64url', () => {
    const a = newSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newSecret()).not.toBe(a);
    expect(looksLikeSecret(a)).toBe(true);
    for (const bad of [undefined, 42, '', `${a}=`, a.slice(1), `${a.slice(1)}+`, { a }]) {
      expect(looksLikeSecret(bad)).toBe(false);
    }
  });

  it('launch tokens work once, only before they expire', () => {
    let now = 1_000;
    const tokens = new LaunchTokens({ ttlMs: 100, now: () => now });
    const first = tokens.issue();
    const second = tokens.issue();
    expect(tokens.consume(newSecret())).toBe(false);
    expect(tokens.consume(first)).toBe(true);
    expect(tokens.consume(first)).toBe(false);
    now += 100;
    expect(tokens.consume(second)).toBe(false);
    expect(tokens.size).toBe(0);
  });

  it('prunes expired launch tokens at the next issue', () => {
    let now = 0;
    const tokens = new LaunchTokens({ ttlMs: 10, now: () => now });
    tokens.issue();
    tokens.issue();
    now = 50;
    tokens.issue();
    expect(tokens.size).toBe(1);
  });

  it('knows only the sessions it issued, until they expire or are revoked', () => {
    let now = 0;
    const sessions = new Sessions({ ttlMs: 100, now: () => now });
    const session = sessions.issue();
    const found = sessions.find(session);
    expect(found).toBeDefined();
    expect(sessions.find(session)).toBe(found);
    expect(sessions.has(session)).toBe(true);
    expect(sessions.has(newSecret())).toBe(false);
    expect(sessions.has(undefined)).toBe(false);
    expect(sessions.has(`${session}=`)).toBe(false);
    expect(new Sessions({ ttlMs: 100 }).has(session)).toBe(false);
    expect(sessions.remainingMs(found!)).toBe(100);

    // A fixed lifetime: using a session does not extend it.
    now = 99;
    expect(sessions.has(session)).toBe(true);
    expect(sessions.isLive(found!)).toBe(true);
    now = 100;
    expect(sessions.isLive(found!)).toBe(false);
    expect(sessions.remainingMs(found!)).toBe(0);
    expect(sessions.has(session)).toBe(false);
    expect(sessions.size).toBe(0);

    const other = sessions.issue();
    const otherFound = sessions.find(other)!;
    sessions.revokeAll();
    expect(sessions.has(other)).toBe(false);
    expect(sessions.isLive(otherFound)).toBe(false);
    expect(sessions.size).toBe(0);
  });

  it('prunes expired sessions at the next issue', () => {
    let now = 0;
    const sessions = new Sessions({ ttlMs: 10, now: () => now });
    sessions.issue();
    sessions.issue();
    now = 50;
    sessions.issue();
    expect(sessions.size).toBe(1);
  });
});
