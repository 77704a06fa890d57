// Who may try a password or a code now, and what a refused caller hears. Three limits, all kept in the
// store (so replicas share them):
//   - a lockout per (user name, client address): after `max_attempts` wrong passwords or codes from one
//     address within the window, that address may not try that name again for `duration`. An attacker's
//     address is slowed; the person elsewhere is not locked out by it.
//   - checks in flight count as reserved attempts: a check starts only while failures + reservations stay
//     under the limit, and otherwise waits for the ones in flight. Right passwords sent in parallel (a
//     double submit, a retrying client) all succeed; wrong ones sent in parallel never get more than the
//     limit's checks.
//   - rate limits per client address and per user name on the unauthenticated calls (RESOURCE_EXHAUSTED
//     with a retry-after).
// Names of no user are throttled exactly like real ones, and no refusal to an unauthenticated caller names
// the user, so none of this tells an outsider which users exist. An admin's lock (users.locked_until_ms)
// is shown to a caller only after a right password, and names the user there.
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyportError } from '../proto/errors';
import type { Store } from './storage/store';
import type { ServiceContext } from './context';
import { CAP_KIND, capOfStored } from './policy';
import type { ClusterPolicy } from './policy';
import type { UserRow } from './storage/store';

export interface RateLimitPolicy {
  /** Unauthenticated calls one client address may make per window. */
  perAddress: number;
  /** Password attempts one user name may receive per window, from all addresses together. */
  perUser: number;
  windowMs: number;
}

/** How long a check may wait for the checks in flight before it is refused as busy. */
const ADMIT_WAIT_MS = 10_000;
/** A reservation left by a replica that died mid-check stops counting after this. */
const RESERVATION_TTL_MS = 30_000;

export function isLocked(user: Pick<UserRow, 'locked_until_ms'>, nowMs: number): boolean {
  return user.locked_until_ms !== null && user.locked_until_ms > nowMs;
}

/** An admin's lock, told to the user's own certificate or after a right password: it names the user. */
export function lockedError(user: Pick<UserRow, 'name' | 'locked_until_ms'>): KeyportError {
  const until = user.locked_until_ms ?? 0;
  const when =
    until >= Number.MAX_SAFE_INTEGER ? 'until an admin unlocks it' : `until ${new Date(until).toISOString()}`;
  return new KeyportError('LOCKED', `User "${user.name}" is locked ${when}.`, { lockedUntilMs: until });
}

/** The lockout of one (name, address), as an unauthenticated caller hears it: the same for every name. */
export function lockedOutError(untilMs: number): KeyportError {
  return new KeyportError(
    'LOCKED',
    `Too many failed sign-ins for this account from this address. Try again after ${new Date(untilMs).toISOString()}, or ask an administrator to unlock the account.`,
    { lockedUntilMs: untilMs },
  );
}

/** The caller's IP address from a grpc-js peer ("ipv4:127.0.0.1:50432", "ipv6:[::1]:50432"). */
export function clientIp(peer: string): string {
  const text = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return bracketed[1] as string;
  const hostPort = /^([^:]+):\d+$/.exec(text);
  return hostPort ? (hostPort[1] as string) : text;
}

export interface Attempt {
  /** A right password: the reservation is withdrawn (failures stay until the whole login succeeds). */
  passed(): Promise<void>;
  /** A wrong one: the reservation becomes a failure; returns the lockout it caused, if any. */
  failed(): Promise<KeyportError | undefined>;
}

type Decision = { kind: 'locked'; lockedUntil: number } | { kind: 'wait' } | { kind: 'admitted'; id: number };

/**
 * Reserves one password check for `name` from `clientAddr`, waiting while the checks in flight would
 * reach the limit. Throws the lockout when the address is locked out for that name.
 */
export async function admitAttempt(ctx: ServiceContext, name: string, clientAddr: string): Promise<Attempt> {
  const { maxAttempts, windowMs, durationMs } = ctx.lockout;
  const started = performance.now();
  for (;;) {
    const now = ctx.now();
    const decision = await ctx.store.transaction(async (tx): Promise<Decision> => {
      await tx.throttle.lockAttempts(name, clientAddr);
      const counts = await tx.throttle.countAttempts(name, clientAddr, now - windowMs, now);
      const lockedUntil = counts.lastFailureMs + durationMs;
      if (counts.failed >= maxAttempts) {
        if (lockedUntil > now) return { kind: 'locked', lockedUntil };
        // The lockout is over: its failures are served, and the address starts again from none.
        await tx.throttle.clearFailures(name, clientAddr);
        counts.failed = 0;
      }
      if (counts.failed + counts.pending >= maxAttempts) return { kind: 'wait' };
      return {
        kind: 'admitted',
        id: await tx.throttle.addPending(name, clientAddr, now, now + RESERVATION_TTL_MS),
      };
    });
    if (decision.kind === 'locked') throw lockedOutError(decision.lockedUntil);
    if (decision.kind === 'admitted') {
      const id = decision.id;
      return {
        passed: () => ctx.store.throttle.deleteAttempt(id),
        failed: () =>
          lockoutAfterFailure(ctx, name, clientAddr, (tx, now) => tx.throttle.markFailed(id, now)),
      };
    }
    if (performance.now() - started > ADMIT_WAIT_MS) {
      throw new KeyportError(
        'RESOURCE_EXHAUSTED',
        'Too many sign-ins in progress for this account; try again.',
        {
          retryAfterMs: 1000,
        },
      );
    }
    await sleep(20);
  }
}

/** Counts a wrong second factor (no reservation: the password step already passed). */
export async function recordFailure(
  ctx: ServiceContext,
  name: string,
  clientAddr: string,
): Promise<KeyportError | undefined> {
  return lockoutAfterFailure(ctx, name, clientAddr, (tx, now) =>
    tx.throttle.recordFailure(name, clientAddr, now),
  );
}

/**
 * Records a failure and counts, as one step under the (name, address) lock, so each failure sees its own
 * place in the count: the one that reaches the limit (and only it) completes the lockout and audits it,
 * whichever replica or connection records it. Returns that lockout, or the one already in force.
 */
async function lockoutAfterFailure(
  ctx: ServiceContext,
  name: string,
  clientAddr: string,
  record: (tx: Store, now: number) => Promise<void>,
): Promise<KeyportError | undefined> {
  const now = ctx.now();
  const counts = await ctx.store.transaction(async (tx) => {
    await tx.throttle.lockAttempts(name, clientAddr);
    await record(tx, now);
    return tx.throttle.countAttempts(name, clientAddr, now - ctx.lockout.windowMs, now);
  });
  if (counts.failed < ctx.lockout.maxAttempts) return undefined;
  const until = counts.lastFailureMs + ctx.lockout.durationMs;
  if (counts.failed === ctx.lockout.maxAttempts) {
    const known = (await ctx.store.getUser(name)) !== undefined;
    await ctx.audit.record({
      type: 'user.lockout',
      actor: 'system',
      clientAddr,
      success: true,
      message: `${counts.failed} failed sign-ins from ${clientAddr}: that address is locked out for this name`,
      fields: { user: name, known_user: known, locked_until_ms: until },
    });
  }
  return lockedOutError(until);
}

/** After a successful login: the failures of `name` at this address are forgiven (if there are any). */
export async function clearFailures(
  ctx: ServiceContext,
  name: string,
  clientAddr: string,
  /** Whether failures were recorded, as read earlier in this call (passwordless); undefined: read now. */
  recorded?: boolean,
): Promise<void> {
  if (recorded === undefined) return ctx.store.throttle.forgiveFailures(name, clientAddr);
  if (recorded) await ctx.store.throttle.clearFailures(name, clientAddr);
}

/** Counts one call against `key`'s rate limit; past the limit, refuses it (refuseOverLimit). */
export async function rateLimit(
  ctx: ServiceContext,
  key: string,
  limit: number,
  clientAddr: string,
  what: string,
  /** A cluster_config key read in the same statement; its stored value is returned. */
  alsoReadConfig?: string,
): Promise<string | undefined> {
  const now = ctx.now();
  const { count, windowEndMs, configJson } = await ctx.store.throttle.hit(
    key,
    now,
    ctx.rateLimit.windowMs,
    alsoReadConfig,
  );
  if (count > limit)
    await refuseOverLimit(ctx, { key, limit, count, windowEndMs, nowMs: now }, clientAddr, what);
  return configJson;
}

/**
 * A call counted past its limit: refused with RESOURCE_EXHAUSTED and the time until the window ends; the
 * first refusal in a window is audited, the others are not (they are exactly what would grow the audit log
 * without bound).
 */
export async function refuseOverLimit(
  ctx: ServiceContext,
  hit: { key: string; limit: number; count: number; windowEndMs: number; nowMs: number },
  clientAddr: string,
  what: string,
): Promise<never> {
  const { key, limit, count } = hit;
  const retryAfterMs = Math.max(1000, hit.windowEndMs - hit.nowMs);
  if (count === limit + 1) {
    await ctx.audit.record({
      type: 'rate.limited',
      actor: 'system',
      clientAddr,
      success: false,
      message: `more than ${limit} ${what} within ${ctx.rateLimit.windowMs / 1000} s`,
      fields: { key: key.startsWith('user:') ? 'user' : 'address' },
    });
  }
  throw new KeyportError(
    'RESOURCE_EXHAUSTED',
    `Too many ${what}; try again in ${Math.ceil(retryAfterMs / 1000)} s.`,
    { retryAfterMs },
  );
}

/** The per-address limit on unauthenticated calls: its key, limit and words. */
export function addressRate(
  ctx: ServiceContext,
  clientAddr: string,
): { key: string; limit: number; what: string } {
  return {
    key: `addr:${clientIp(clientAddr)}`,
    limit: ctx.rateLimit.perAddress,
    what: 'requests from this address',
  };
}

/** The per-address limit on unauthenticated calls; returns the caller's IP for the lockout's keys. */
export async function limitAddress(ctx: ServiceContext, clientAddr: string): Promise<string> {
  const address = clientIp(clientAddr);
  await rateLimit(ctx, `addr:${address}`, ctx.rateLimit.perAddress, clientAddr, 'requests from this address');
  return address;
}

/**
 * limitAddress, with the cap read in the same statement: a passwordless login's first step needs nothing
 * else before it stores its challenge. The cap is still read per call.
 */
export async function limitAddressReadingCap(
  ctx: ServiceContext,
  clientAddr: string,
): Promise<ClusterPolicy> {
  const address = clientIp(clientAddr);
  return capOfStored(
    await rateLimit(
      ctx,
      `addr:${address}`,
      ctx.rateLimit.perAddress,
      clientAddr,
      'requests from this address',
      CAP_KIND,
    ),
  );
}

/** The per-name limit on password attempts, from every address together. */
export async function limitUserName(ctx: ServiceContext, name: string, clientAddr: string): Promise<void> {
  await rateLimit(
    ctx,
    `user:${name}`,
    ctx.rateLimit.perUser,
    clientAddr,
    'sign-in attempts for this account',
  );
}
