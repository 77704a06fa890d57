// Named prepared statements (pg-prepared.ts) on a real PostgreSQL: each statement text is parsed once per
// connection, a text the server refuses to reuse after a migration is sent again outside a transaction,
// and inside one the call fails as UNAVAILABLE with nothing written.
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabPostgres } from '../../lab/postgres';
import type { LabPostgres } from '../../lab/postgres';
import { KeyportError } from '../../proto/errors';
import { MAX_NAMED_PER_CONNECTION } from './pg-prepared';
import { postgresDialect } from './postgres';

interface Scratch {
  t: { a: number; b?: number | null };
}

let lab: LabPostgres;

beforeAll(async () => {
  lab = await startLabPostgres();
});

afterAll(async () => {
  await lab?.stop();
});

async function exec(connString: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: connString });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** One pooled connection, so every statement below runs on the same server backend. */
async function oneConnection(): Promise<{ db: Kysely<Scratch>; connString: string }> {
  const connString = await lab.createDatabase();
  await exec(connString, 'create table t (a integer not null)');
  const db = new Kysely<Scratch>({
    dialect: postgresDialect({ connString, poolSize: 1, statementTimeoutMs: 30_000 }).dialect,
  });
  return { db, connString };
}

const prepared = (db: Kysely<Scratch>) =>
  sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`
    .execute(db)
    .then((r) => r.rows);

describe('named prepared statements on PostgreSQL', () => {
  it('parses each statement text once per connection, under one name, and names no DDL or BEGIN', async () => {
    const { db } = await oneConnection();
    try {
      for (let i = 0; i < 3; i++) {
        await db.insertInto('t').values({ a: i }).execute();
        await db.transaction().execute((trx) => trx.selectFrom('t').selectAll().where('a', '=', i).execute());
      }
      const rows = await prepared(db);
      const ours = rows.filter((r) => /^kp0_/.test(r.name));
      const texts = ours.map((r) => r.statement.toLowerCase());
      expect(texts.filter((t) => t.startsWith('insert into "t"'))).toHaveLength(1);
      expect(texts.filter((t) => t.startsWith('select * from "t"'))).toHaveLength(1);
      expect(texts.some((t) => /^(begin|commit|create)/.test(t))).toBe(false);
      expect(await db.selectFrom('t').select('a').orderBy('a').execute()).toEqual([
        { a: 0 },
        { a: 1 },
        { a: 2 },
      ]);
    } finally {
      await db.destroy();
    }
  });

  it('sends a statement again when a migration changed its table, outside a transaction', async () => {
    const { db, connString } = await oneConnection();
    try {
      await db.insertInto('t').values({ a: 1 }).execute();
      expect(await db.selectFrom('t').selectAll().execute()).toEqual([{ a: 1 }]);
      await exec(connString, 'alter table t add column b integer');
      expect(await db.selectFrom('t').selectAll().execute()).toEqual([{ a: 1, b: null }]);
      expect(await db.selectFrom('t').selectAll().execute()).toEqual([{ a: 1, b: null }]);
    } finally {
      await db.destroy();
    }
  });

  it('fails a transaction whose prepared statement the server refused as UNAVAILABLE, writing nothing', async () => {
    const { db, connString } = await oneConnection();
    try {
      await db.selectFrom('t').selectAll().execute();
      await exec(connString, 'alter table t add column b integer');
      const error = await db
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('t').values({ a: 7 }).execute();
          return trx.selectFrom('t').selectAll().execute();
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/table changed/) });
      // Rolled back; the connection's next statements are prepared afresh and succeed.
      expect(await db.selectFrom('t').selectAll().execute()).toEqual([]);
    } finally {
      await db.destroy();
    }
  });

  it(`names at most ${MAX_NAMED_PER_CONNECTION} texts per connection and runs the rest unnamed`, async () => {
    const { db } = await oneConnection();
    try {
      for (let i = 0; i < MAX_NAMED_PER_CONNECTION + 20; i++) {
        await sql.raw(`select ${i} as n`).execute(db);
      }
      const ours = (await prepared(db)).filter((r) => /^kp0_/.test(r.name));
      expect(ours).toHaveLength(MAX_NAMED_PER_CONNECTION);
    } finally {
      await db.destroy();
    }
  });
});
