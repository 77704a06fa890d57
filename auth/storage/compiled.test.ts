// Statements compiled once (compiled.ts) on SQLite: the text Kysely makes per call, each call's values in
// their places (an argument used twice included), and a statement that would not place every argument
// refused at its first call. On PostgreSQL the login's compiled statements run in conformance.test.ts.
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Compilable } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compiledStatement } from './compiled';
import type { Database } from './schema';

let sqlite: SQLite.Database;
let db: Kysely<Database>;
const sent: string[] = [];

beforeEach(() => {
  sqlite = new SQLite(':memory:');
  sqlite.exec('create table rate_limits (key text primary key, window_start_ms integer, count integer)');
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((source: string) => {
    sent.push(source);
    return prepare(source);
  }) as typeof sqlite.prepare;
  db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  sent.length = 0;
});

afterEach(async () => {
  await db.destroy();
});

const upsert = (d: Kysely<Database>, key: string, windowStart: number) =>
  d
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

describe('statements compiled once', () => {
  it("sends the text Kysely makes per call, with each call's values, an argument used twice included", async () => {
    const statement = compiledStatement(2, (d, key: string, windowStart: number) =>
      upsert(d as Kysely<Database>, key, windowStart),
    );
    const first = await statement.execute(db, 'a', 1000);
    const again = await statement.execute(db, 'a', 1000);
    const next = await statement.execute(db, 'a', 2000);
    const other = await statement.execute(db, 'b', 1000);
    expect([first, again, next, other].map((r) => r.rows[0])).toEqual([
      { count: 1, window_start_ms: 1000 },
      { count: 2, window_start_ms: 1000 },
      { count: 1, window_start_ms: 2000 },
      { count: 1, window_start_ms: 1000 },
    ]);
    const perCall = upsert(db, 'c', 3000).compile();
    expect(new Set(sent)).toEqual(new Set([perCall.sql]));
  });

  it('refuses a statement that does not place every argument, and runs nothing', async () => {
    // A whole row given as one argument: Kysely would read the placeholder as the row's columns.
    const statement = compiledStatement(
      1,
      (d, row: { key: string; window_start_ms: number; count: number }) =>
        d.insertInto('rate_limits').values(row) as Compilable<unknown>,
    );
    await expect(statement.execute(db, { key: 'a', window_start_ms: 1, count: 1 })).rejects.toThrow(
      /places 0 of its 1 arguments/,
    );
    expect(sent).toEqual([]);
    expect(sqlite.prepare('select count(*) as n from rate_limits').get()).toEqual({ n: 0 });
  });
});
