// The lockout's decisions on a real SQLite store, with a clock the test moves: per (name, address),
// reservations for checks in flight, and what an outsider hears.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from './audit';
import type { ServiceContext } from './context';
import { admitAttempt, clientIp, recordFailure } from './lockout';
import { openSqliteStore } from './storage/store';
import type { Store } from './storage/store';

let dir: string;
let store: Store;
let nowMs: number;
let ctx: ServiceContext;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyport-lockout-'));
  store = await openSqliteStore(dir);
  nowMs = 1_800_000_000_000;
  const now = () => nowMs;
  ctx = {
    store,
    audit: new AuditLog(store, now),
    now,
    lockout: { maxAttempts: 3, windowMs: 30 * 60_000, durationMs: 30 * 60_000 },
    rateLimit: { perAddress: 100, perUser: 100, windowMs: 60_000 },
  } as ServiceContext;
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fail(name: string, address: string) {
  const attempt = await admitAttempt(ctx, name, address);
  return attempt.failed();
}

describe('admitAttempt', () => {
  it('locks out one address for one name, and only that address', async () => {
    expect(await fail('lee', '10.0.0.1')).toBeUndefined();
    expect(await fail('lee', '10.0.0.1')).toBeUndefined();
    expect(await fail('lee', '10.0.0.1')).toMatchObject({
      code: 'LOCKED',
      fields: { lockedUntilMs: nowMs + 30 * 60_000 },
    });
    await expect(admitAttempt(ctx, 'lee', '10.0.0.1')).rejects.toMatchObject({ code: 'LOCKED' });
    // The person at another address still gets a check.
    await (await admitAttempt(ctx, 'lee', '10.0.0.2')).passed();
    // The lockout ends on time, and the address starts again from no failures.
    nowMs += 30 * 60_000;
    const after = await admitAttempt(ctx, 'lee', '10.0.0.1');
    expect(await after.failed()).toBeUndefined();
  });

  it('says the same to every name, and names none', async () => {
    const messages: string[] = [];
    for (const name of ['lee', 'no-such-person']) {
      for (let i = 0; i < 3; i++) await fail(name, '10.0.0.9');
      const refusal = await admitAttempt(ctx, name, '10.0.0.9').catch((error: Error) => error);
      expect(refusal).toMatchObject({ code: 'LOCKED' });
      messages.push((refusal as Error).message);
    }
    expect(messages[0]).toBe(messages[1]);
    expect(messages[0]).not.toMatch(/lee|no-such-person/);
  });

  it('holds a check while the ones in flight would reach the limit, then lets it through', async () => {
    // Three checks in flight fill the limit; a fourth waits until one settles as right.
    const inFlight = await Promise.all([1, 2, 3].map(() => admitAttempt(ctx, 'kim', '10.0.0.3')));
    let admitted = false;
    const fourth = admitAttempt(ctx, 'kim', '10.0.0.3').then((attempt) => {
      admitted = true;
      return attempt;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(admitted).toBe(false);
    await inFlight[0]!.passed();
    await (await fourth).passed();
    expect(admitted).toBe(true);
    // Three wrong ones in flight settle as failures: the next one hears the lockout, unchecked.
    for (const attempt of inFlight.slice(1)) expect(await attempt.failed()).toBeUndefined();
    expect(await recordFailure(ctx, 'kim', '10.0.0.3')).toMatchObject({ code: 'LOCKED' });
    await expect(admitAttempt(ctx, 'kim', '10.0.0.3')).rejects.toMatchObject({ code: 'LOCKED' });
  });

  it('audits a lockout once, when the limit is reached', async () => {
    for (let i = 0; i < 5; i++) await fail('ana', '10.0.0.4').catch(() => undefined);
    const events = await store.listAudit({ type: 'user.lockout' });
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.fields_json)).toMatchObject({ user: 'ana', known_user: false });
  });
});

describe('clientIp', () => {
  it.each([
    ['ipv4:127.0.0.1:50432', '127.0.0.1'],
    ['ipv6:[::1]:50432', '::1'],
    ['ipv6:[2001:db8::7]:443', '2001:db8::7'],
    ['unix:/tmp/sock', 'unix:/tmp/sock'],
  ])('%s → %s', (peer, ip) => {
    expect(clientIp(peer)).toBe(ip);
  });
});
