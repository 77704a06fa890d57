// Storage for throttling: login attempts per (user name, client address) and fixed-window rate counters.
// Each method is one statement or one transaction, and both tables live in the shared database, so
// several replicas count together.
import type { Kysely, Transaction } from 'kysely';
import { compiledStatement } from './compiled';
import { lockKeyForTransaction } from './dialects';
import type { Database } from './schema';

export interface AttemptCounts {
  /** Wrong passwords or codes within the window. */
  failed: number;
  /** Checks in flight (reservations not yet settled and not expired). */
  pending: number;
  /** When the newest failure was made (0 when none). */
  lastFailureMs: number;
}

export interface Lockout {
  name: string;
  clientAddr: string;
  failed: number;
  untilMs: number;
}

export class ThrottleStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async countAttempts(
    name: string,
    clientAddr: string,
    sinceMs: number,
    nowMs: number,
  ): Promise<AttemptCounts> {
    const rows = await this.db
      .selectFrom('login_attempts')
      .select(['state', 'time_ms', 'expires_ms'])
      .where('name', '=', name)
      .where('client_addr', '=', clientAddr)
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'failed'), eb('time_ms', '>=', sinceMs)]),
          eb.and([eb('state', '=', 'pending'), eb('expires_ms', '>', nowMs)]),
        ]),
      )
      .execute();
    let failed = 0;
    let pending = 0;
    let lastFailureMs = 0;
    for (const row of rows) {
      if (row.state === 'failed') {
        failed++;
        lastFailureMs = Math.max(lastFailureMs, Number(row.time_ms));
      } else pending++;
    }
    return { failed, pending, lastFailureMs };
  }

  /**
   * Inside a transaction, before countAttempts: makes count-then-addPending for (name, address) one step
   * for every connection and replica, so parallel checks never get past the limit together.
   */
  lockAttempts(name: string, clientAddr: string): Promise<void> {
    return lockKeyForTransaction(
      this.db as Kysely<unknown>,
      JSON.stringify(['login_attempts', name, clientAddr]),
    );
  }

  /** Reserves a check in flight; returns its id, to settle it. */
  async addPending(name: string, clientAddr: string, nowMs: number, expiresMs: number): Promise<number> {
    const row = await this.db
      .insertInto('login_attempts')
      .values({ name, client_addr: clientAddr, state: 'pending', time_ms: nowMs, expires_ms: expiresMs })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /** A reservation that turned out wrong becomes a failure. */
  async markFailed(id: number, nowMs: number): Promise<void> {
    await this.db
      .updateTable('login_attempts')
      .set({ state: 'failed', time_ms: nowMs, expires_ms: nowMs })
      .where('id', '=', id)
      .execute();
  }

  async recordFailure(name: string, clientAddr: string, nowMs: number): Promise<void> {
    await this.db
      .insertInto('login_attempts')
      .values({ name, client_addr: clientAddr, state: 'failed', time_ms: nowMs, expires_ms: nowMs })
      .execute();
  }

  async deleteAttempt(id: number): Promise<void> {
    await this.db.deleteFrom('login_attempts').where('id', '=', id).execute();
  }

  /**
   * Forgets the failures of a name at one address after a successful login: a read, and a delete only when
   * there is something to forget (most logins have none, and then write nothing here).
   */
  async forgiveFailures(name: string, clientAddr: string): Promise<void> {
    const failed = await this.db
      .selectFrom('login_attempts')
      .select('id')
      .where('name', '=', name)
      .where('client_addr', '=', clientAddr)
      .where('state', '=', 'failed')
      .limit(1)
      .executeTakeFirst();
    if (failed) await this.clearFailures(name, clientAddr);
  }

  /** Forgets the failures of a name at one address (a right password), or at every address (an unlock). */
  async clearFailures(name: string, clientAddr?: string): Promise<void> {
    let query = this.db.deleteFrom('login_attempts').where('name', '=', name).where('state', '=', 'failed');
    if (clientAddr !== undefined) query = query.where('client_addr', '=', clientAddr);
    await query.execute();
  }

  /** Addresses locked out for `name`: at least `maxFailed` failures within the window, and until when. */
  async lockouts(name: string, sinceMs: number, maxFailed: number, durationMs: number): Promise<Lockout[]> {
    const rows = await this.db
      .selectFrom('login_attempts')
      .select((eb) => ['client_addr', eb.fn.countAll<number>().as('failed'), eb.fn.max('time_ms').as('last')])
      .where('name', '=', name)
      .where('state', '=', 'failed')
      .where('time_ms', '>=', sinceMs)
      .groupBy('client_addr')
      .execute();
    return rows
      .filter((row) => Number(row.failed) >= maxFailed)
      .map((row) => ({
        name,
        clientAddr: row.client_addr,
        failed: Number(row.failed),
        untilMs: Number(row.last) + durationMs,
      }));
  }

  /**
   * Counts one more event for `key` in the current fixed window of `windowMs`, starting a new window when
   * the stored one is over; returns the count and when the window ends. One statement, so concurrent
   * callers (and replicas) never lose a count.
   */
  async hit(
    key: string,
    nowMs: number,
    windowMs: number,
    /**
     * A cluster_config key whose value comes back in the same statement (a passwordless login's first step
     * needs its address counted and the cap read, and nothing else, before it stores its challenge).
     */
    alsoReadConfig?: string,
  ): Promise<{ count: number; windowEndMs: number; configJson?: string }> {
    const windowStart = nowMs - (nowMs % windowMs);
    if (alsoReadConfig === undefined) {
      const [row] = (await hitStatement.execute(this.db, key, windowStart)).rows;
      if (!row) throw new Error('the rate-limit count returned no row');
      return { count: Number(row.count), windowEndMs: Number(row.window_start_ms) + windowMs };
    }
    const [row] = (await hitReadingConfig.execute(this.db, key, windowStart, alsoReadConfig)).rows;
    if (!row) throw new Error('the rate-limit count returned no row');
    return {
      count: Number(row.count),
      windowEndMs: Number(row.window_start_ms) + windowMs,
      ...(row.config_json !== null ? { configJson: row.config_json } : {}),
    };
  }

  /** Drops settled history outside the window, expired reservations and finished rate windows. */
  async prune(nowMs: number, windowMs: number, rateWindowMs: number): Promise<void> {
    await this.db
      .deleteFrom('login_attempts')
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'failed'), eb('time_ms', '<', nowMs - windowMs)]),
          eb.and([eb('state', '=', 'pending'), eb('expires_ms', '<', nowMs)]),
        ]),
      )
      .execute();
    await this.db
      .deleteFrom('rate_limits')
      .where('window_start_ms', '<', nowMs - rateWindowMs)
      .execute();
  }
}

/** One more event for a key in the window starting at `windowStart` (ThrottleStore.hit), compiled once. */
export function counted(db: Kysely<Database> | Transaction<Database>, key: string, windowStart: number) {
  return db
    .insertInto('rate_limits')
    .values({ key, window_start_ms: windowStart, count: 1 })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet((eb) => ({
        count: eb
          .case()
          .when('rate_limits.window_start_ms', '=', windowStart)
          .then(eb(eb.ref('rate_limits.count'), '+', 1))
          .else(1)
          .end(),
        window_start_ms: windowStart,
      })),
    )
    .returning(['count', 'window_start_ms']);
}

const hitStatement = compiledStatement(2, counted);
const hitReadingConfig = compiledStatement(3, (db, key: string, windowStart: number, configKey: string) =>
  counted(db, key, windowStart).returning((eb) =>
    eb.selectFrom('cluster_config').select('value_json').where('key', '=', configKey).as('config_json'),
  ),
);
