// A passwordless login's statements, one database round trip per step where PostgreSQL allows it. Each
// write in them is one a person or an auditor needs; none is added here, they are only sent together:
// - step one: the address's rate-limit count, the cap read, and the new challenge (stored only when the
//   count is within the limit): `hitStoringChallenge`;
// - step two, before the assertion is checked: the challenge spent and the passkey read (its owner, lock
//   included, the cap, the owner's roles, failures at the address): `spendReadingPasskey`;
// - step two, once the certificates are made: the key's sign counter moved forward and the login's audit
//   events, written only when the counter moved (a racing assertion with the same counter loses, and its
//   login is refused with nothing written): `acceptCounterWithAudit`.
// On PostgreSQL each is one statement: data-modifying CTEs (`WITH … UPDATE/INSERT … RETURNING`), atomic
// and single use across replicas like the separate statements were (a spend still takes the challenge's row
// lock, and a second spender re-reads `used` after the first commits). SQLite has no data-modifying CTEs and
// runs in process, where a round trip costs a function call: the same steps as separate statements (the
// counter and the audit in one transaction).
import { sql } from 'kysely';
import type { Kysely, QueryCreator, Transaction } from 'kysely';
import { compiledStatement } from './compiled';
import {
  AUDIT_COLUMNS,
  AUDIT_PG_TYPES,
  CHALLENGE_COLUMNS,
  CHALLENGE_PG_TYPES,
  OWNER_COLUMNS,
} from './columns';
import { rolesNamedByUserSpec, storageKind } from './dialects';
import type { Database } from './schema';
import type { ChallengeRow, MfaDeviceRow, NewAuditEvent, PasskeyLogin, Store, UserRow } from './store';
import { counted } from './throttle';

type Db = Kysely<Database> | Transaction<Database>;

/** A verified assertion's new sign counter, to be accepted with the login's audit (acceptCounterWithAudit). */
export interface CounterAdvance {
  deviceId: string;
  previous: number;
  counter: number;
}

export class LoginStore {
  constructor(
    private readonly db: Db,
    private readonly store: Store,
  ) {}

  /**
   * Counts one more call for rate-limit `key` (as ThrottleStore.hit), reads config `configKey`, and
   * inserts `challenge` only when the count is at most `limit`. `stored`: whether it was inserted.
   */
  async hitStoringChallenge(
    rate: { key: string; nowMs: number; windowMs: number; limit: number },
    configKey: string,
    challenge: ChallengeRow,
  ): Promise<{ count: number; windowEndMs: number; configJson?: string; stored: boolean }> {
    if (storageKind(this.db as Kysely<unknown>) === 'sqlite') {
      const hit = await this.store.throttle.hit(rate.key, rate.nowMs, rate.windowMs, configKey);
      if (hit.count > rate.limit) return { ...hit, stored: false };
      await this.store.insertChallenge(challenge);
      return { ...hit, stored: true };
    }
    const windowStart = rate.nowMs - (rate.nowMs % rate.windowMs);
    const [row] = (
      await pgHitStoringChallenge.execute(
        this.db,
        rate.key,
        windowStart,
        rate.limit,
        configKey,
        ...CHALLENGE_COLUMNS.map((column) => challenge[column]),
      )
    ).rows;
    if (!row) throw new Error('the rate-limit count returned no row');
    return {
      count: Number(row.count),
      windowEndMs: Number(row.window_start_ms) + rate.windowMs,
      ...(row.config_json !== null ? { configJson: row.config_json } : {}),
      stored: Number(row.stored) === 1,
    };
  }

  /**
   * Spends challenge `id` whatever its state (as Store.consumeChallenge) and reads the passkey with
   * `credentialId` as Store.getPasskeyLogin does. `challenge`: the spent row, undefined when it was spent
   * before or never existed; `passkey`: undefined when no device has that credential id.
   */
  async spendReadingPasskey(
    id: string,
    credentialId: string,
    configKey: string,
    clientAddr: string,
  ): Promise<{ challenge?: ChallengeRow; passkey?: PasskeyLogin }> {
    if (storageKind(this.db as Kysely<unknown>) === 'sqlite') {
      const challenge = await this.store.consumeChallenge(id);
      const passkey = await this.store.getPasskeyLogin(credentialId, configKey, clientAddr);
      return { ...(challenge ? { challenge } : {}), ...(passkey ? { passkey } : {}) };
    }
    const [row] = (await pgSpendReadingPasskey.execute(this.db, id, credentialId, configKey, clientAddr))
      .rows;
    if (!row) throw new Error('the challenge spend returned no row');
    const fields = row as unknown as Record<string, string | number | null>;
    const challenge =
      typeof fields['challenge_json'] === 'string'
        ? (JSON.parse(fields['challenge_json']) as ChallengeRow)
        : undefined;
    const passkey = typeof fields['device_json'] === 'string' ? passkeyLoginOfJson(fields) : undefined;
    return { ...(challenge ? { challenge } : {}), ...(passkey ? { passkey } : {}) };
  }

  /**
   * Moves the passkey's sign counter from `previous` to `counter` (as Store.acceptWebauthnCounter) and
   * appends `events` (one to three) only if it moved, atomically. False, with nothing written, when another
   * assertion moved the counter first.
   */
  async acceptCounterWithAudit(
    advance: CounterAdvance,
    nowMs: number,
    events: NewAuditEvent[],
  ): Promise<boolean> {
    const statement = pgAcceptCounterWithAudit[events.length - 1];
    if (!statement) throw new Error(`a login writes one to three audit events, not ${events.length}`);
    if (storageKind(this.db as Kysely<unknown>) === 'sqlite') {
      return this.store.transaction(async (tx) => {
        if (!(await tx.acceptWebauthnCounter(advance.deviceId, advance.previous, advance.counter, nowMs))) {
          return false;
        }
        await tx.appendAudit(events);
        return true;
      });
    }
    const result = await statement.execute(
      this.db,
      advance.deviceId,
      advance.previous,
      advance.counter,
      nowMs,
      ...events.flatMap((event) => AUDIT_COLUMNS.map((column) => event[column])),
    );
    return result.rows.length === events.length;
  }
}

/**
 * The passkey read on a select from `mfa_devices as d` left-joined to `users as u`, made by `from` (`db`,
 * or `db` with a CTE before the select). `columns`: the device's and the owner's columns one by one (the
 * owner's prefixed `owner_`); `json`: each of the two rows as one JSON text (PostgreSQL; pg then parses two
 * columns, not two dozen, and a missing owner is a null row).
 */
function passkeyColumns(
  from: QueryCreator<Database>,
  db: Db,
  configKey: string,
  clientAddr: string,
  shape: 'columns' | 'json' = 'columns',
) {
  return from
    .selectFrom('mfa_devices as d')
    .leftJoin('users as u', 'u.name', 'd.user')
    .$if(shape === 'columns', (qb) =>
      qb.selectAll('d').select(OWNER_COLUMNS.map((column) => sql.ref(`u.${column}`).as(`owner_${column}`))),
    )
    .$if(shape === 'json', (qb) =>
      qb.select([
        sql<string>`row_to_json(d)::text`.as('device_json'),
        sql<string | null>`row_to_json(u)::text`.as('owner_json'),
      ]),
    )
    .select((eb) =>
      eb.selectFrom('cluster_config').select('value_json').where('key', '=', configKey).as('config_json'),
    )
    .select(rolesNamedByUserSpec(db as Kysely<unknown>).as('owner_roles_json'))
    .select((eb) =>
      eb
        .selectFrom('login_attempts as a')
        .select(sql<number>`1`.as('one'))
        .whereRef('a.name', '=', 'd.user')
        .where('a.client_addr', '=', clientAddr)
        .where('a.state', '=', 'failed')
        .limit(1)
        .as('failed_here'),
    );
}

/** Store.getPasskeyLogin's one statement (compiled once). */
export const passkeyRead = compiledStatement(
  3,
  (db, credentialId: string, configKey: string, clientAddr: string) =>
    passkeyColumns(db, db, configKey, clientAddr).where('d.webauthn_credential_id', '=', credentialId),
);

/** A passkey read's row (passkeyColumns) as what it names. */
export function passkeyLoginOf(fields: Record<string, unknown>): PasskeyLogin {
  const device = Object.fromEntries(
    Object.entries(fields).filter(
      ([key]) => !key.startsWith('owner_') && key !== 'config_json' && key !== 'failed_here',
    ),
  ) as unknown as MfaDeviceRow;
  const owner =
    fields['owner_name'] === null
      ? undefined
      : (Object.fromEntries(OWNER_COLUMNS.map((column) => [column, fields[`owner_${column}`]])) as UserRow);
  const configJson = (fields['config_json'] as string | null) ?? undefined;
  const ownerRoles = owner
    ? (JSON.parse((fields['owner_roles_json'] as string | null) ?? '{}') as Record<string, unknown>)
    : undefined;
  return {
    device,
    ...(owner && ownerRoles ? { owner, ownerRoles } : {}),
    ...(configJson !== undefined ? { configJson } : {}),
    failedHere: fields['failed_here'] !== null,
  };
}

/** A passkey read's row in the `json` shape (passkeyColumns) as what it names. */
function passkeyLoginOfJson(fields: Record<string, string | number | null>): PasskeyLogin {
  const device = JSON.parse(String(fields['device_json'])) as MfaDeviceRow;
  const owner =
    typeof fields['owner_json'] === 'string' ? (JSON.parse(fields['owner_json']) as UserRow) : undefined;
  const configJson = fields['config_json'];
  return {
    device,
    ...(owner
      ? {
          owner,
          ownerRoles: JSON.parse(String(fields['owner_roles_json'] ?? '{}')) as Record<string, unknown>,
        }
      : {}),
    ...(typeof configJson === 'string' ? { configJson } : {}),
    failedHere: fields['failed_here'] !== null,
  };
}

const typed = (value: unknown, type: string) => sql`cast(${value} as ${sql.raw(type)})`;

/** Step one on PostgreSQL: the count, the cap, and the challenge inserted only within the limit. */
const pgHitStoringChallenge = compiledStatement(
  4 + CHALLENGE_COLUMNS.length,
  (db, key: string, windowStart: number, limit: number, configKey: string, ...challenge: unknown[]) =>
    db
      .with('hit', () => counted(db, key, windowStart))
      .with('stored', (qc) =>
        qc
          .insertInto('challenges')
          .columns(CHALLENGE_COLUMNS)
          .expression((eb) =>
            eb
              .selectFrom('hit')
              .select(
                CHALLENGE_COLUMNS.map((column, i) =>
                  typed(challenge[i], CHALLENGE_PG_TYPES[column]).as(column),
                ),
              )
              .where('hit.count', '<=', limit),
          )
          .returning('id'),
      )
      .selectFrom('hit')
      .select(['hit.count', 'hit.window_start_ms'])
      .select((eb) =>
        eb.selectFrom('cluster_config').select('value_json').where('key', '=', configKey).as('config_json'),
      )
      .select((eb) => eb.selectFrom('stored').select(eb.fn.countAll<number>().as('n')).as('stored')),
);

/**
 * Step two's read on PostgreSQL: the challenge spent (as JSON, null when not spent now) and the passkey's
 * row, in one row whether or not a device has the credential id (right-joined to a one-row relation).
 */
const pgSpendReadingPasskey = compiledStatement(
  4,
  (db, id: string, credentialId: string, configKey: string, clientAddr: string) => {
    const spending = db.with('spent', (qc) =>
      qc.updateTable('challenges').set({ used: 1 }).where('id', '=', id).where('used', '=', 0).returningAll(),
    ) as unknown as QueryCreator<Database>;
    return passkeyColumns(spending, db, configKey, clientAddr, 'json')
      .rightJoin(sql<{ one: number }>`(select 1 as one)`.as('o'), (join) =>
        join.on('d.webauthn_credential_id', '=', credentialId),
      )
      .select(sql<string | null>`(select row_to_json(s)::text from spent as s)`.as('challenge_json'));
  },
);

/**
 * The end of step two on PostgreSQL, for one to three events: the counter moved, and the events inserted
 * once per row the counter's update returned (so none when it did not move).
 */
const pgAcceptCounterWithAudit = [1, 2, 3].map((n) =>
  compiledStatement(
    4 + n * AUDIT_COLUMNS.length,
    (db, deviceId: string, previous: number, counter: number, nowMs: number, ...values: unknown[]) =>
      db
        .with('moved', (qc) =>
          qc
            .updateTable('mfa_devices')
            .set({ webauthn_sign_count: counter, last_used_ms: nowMs })
            .where('id', '=', deviceId)
            .where('webauthn_sign_count', '=', previous)
            .returning('id'),
        )
        .insertInto('audit_events')
        .columns(AUDIT_COLUMNS)
        .expression((eb) => {
          const event = (i: number) =>
            eb
              .selectFrom('moved')
              .select(
                AUDIT_COLUMNS.map((column, c) =>
                  typed(values[i * AUDIT_COLUMNS.length + c], AUDIT_PG_TYPES[column]).as(column),
                ),
              );
          let events = event(0);
          for (let i = 1; i < n; i++) events = events.unionAll(event(i));
          return events;
        })
        .returning('id'),
  ),
);
