// The statement names the replicas benchmark prints per login (sql-count.ts): a plain statement by its kind
// and table, a statement with CTEs by each of its parts, and how many of them write. The login's
// PostgreSQL statements are compiled here as keyport-auth sends them (Kysely's PostgreSQL compiler, a
// driver that records and answers nothing).
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Database } from './schema';
import { statementName, writesIn } from './sql-count';
import { Store } from './store';

/** The SQL texts `work` sends to a PostgreSQL store. */
async function pgTexts(work: (store: Store) => Promise<unknown>): Promise<string[]> {
  const texts: string[] = [];
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    log: (event) => {
      texts.push(event.query.sql);
    },
  });
  await work(new Store(db)).catch(() => undefined);
  await db.destroy();
  return texts;
}

const challenge = {
  id: 'c',
  user: null,
  scope: 'CHALLENGE_SCOPE_PASSWORDLESS_LOGIN',
  payload_json: '{}',
  created_ms: 1,
  expires_ms: 2,
  used: 0,
};
const event = {
  time_ms: 1,
  type: 'user.login',
  actor: 'a',
  client_addr: '127.0.0.1:1',
  success: 1,
  message: 'passwordless',
  fields_json: '{}',
};

describe('statement names', () => {
  it('names a plain statement by its kind and table, a read by its outer table', () => {
    expect(statementName('insert into "challenges" ("id") values ($1)')).toBe('insert into challenges');
    expect(statementName('UPDATE "users" SET x = 1')).toBe('update users');
    expect(statementName('delete from "pop_nonces" where 1')).toBe('delete from pop_nonces');
    expect(statementName('select d.*, (select value_json from cluster_config) from mfa_devices as d')).toBe(
      'select mfa_devices',
    );
    expect(statementName('select * from users for update')).toBe('select users for update');
    expect(statementName('begin')).toBe('begin');
    expect(writesIn('insert into challenges')).toBe(1);
    expect(writesIn('select mfa_devices')).toBe(0);
  });

  it('names each part of a statement with CTEs, and counts its writes', () => {
    const name = statementName(
      'with a as (update t set x = (select 1) returning *), b (n) as materialized (insert into u select n from a returning n) delete from v where id in (select n from b)',
    );
    expect(name).toBe('update t + insert into u + delete from v');
    expect(writesIn(name)).toBe(3);
    // A final select of a CTE's rows only adds no part.
    expect(statementName('with hit as (insert into r values (1) returning n) select n from hit')).toBe(
      'insert into r',
    );
    // Something it cannot take apart keeps its first characters, as before.
    expect(statementName('with broken as (select')).toBe('with broken as (select');
  });

  it("names the passwordless login's PostgreSQL statements by every write in them", async () => {
    const step1 = await pgTexts((store) =>
      store.login.hitStoringChallenge(
        { key: 'addr:x', nowMs: 1, windowMs: 60_000, limit: 5 },
        'cap',
        challenge,
      ),
    );
    const spend = await pgTexts((store) => store.login.spendReadingPasskey('c', 'cred', 'cap', '127.0.0.1'));
    const end = await pgTexts((store) =>
      store.login.acceptCounterWithAudit({ deviceId: 'k', previous: 1, counter: 2 }, 1, [event, event]),
    );
    expect([...step1, ...spend, ...end].map(statementName)).toEqual([
      'insert into rate_limits + insert into challenges',
      'update challenges + select mfa_devices',
      'update mfa_devices + insert into audit_events',
    ]);
    expect([...step1, ...spend, ...end].map((text) => writesIn(statementName(text)))).toEqual([2, 1, 2]);
  });
});
