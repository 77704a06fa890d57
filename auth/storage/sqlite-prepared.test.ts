// Prepared statements kept on SQLite (sqlite-prepared.ts): a text prepared once and run again, a busy
// statement (still iterating) never run twice at once, the bound on kept texts, and a kept statement that
// sees a column a migration added.
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keepPreparedStatements, MAX_KEPT_STATEMENTS } from './sqlite-prepared';

let db: SQLite.Database;
let prepared: string[];

beforeEach(() => {
  db = new SQLite(':memory:');
  prepared = [];
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    prepared.push(source);
    return prepare(source);
  }) as typeof db.prepare;
  keepPreparedStatements(db);
  db.exec('create table t (a integer not null)');
});

afterEach(() => db.close());

describe('prepared statements kept on SQLite', () => {
  it('prepares a text once and runs it again with new values', () => {
    for (let i = 0; i < 3; i++) db.prepare('insert into t (a) values (?)').run(i);
    const select = 'select a from t where a >= ? order by a';
    expect(db.prepare(select).all(1)).toEqual([{ a: 1 }, { a: 2 }]);
    expect(db.prepare(select).all(2)).toEqual([{ a: 2 }]);
    expect(prepared).toEqual(['insert into t (a) values (?)', select]);
  });

  it('prepares a fresh statement while the kept one is still iterating', () => {
    db.exec('insert into t (a) values (1), (2)');
    const select = 'select a from t order by a';
    const iterating = db.prepare(select).iterate();
    expect(iterating.next().value).toEqual({ a: 1 });
    expect(db.prepare(select).all()).toEqual([{ a: 1 }, { a: 2 }]);
    expect(iterating.next().value).toEqual({ a: 2 });
    iterating.return?.();
    expect(prepared).toEqual([select, select]);
  });

  it(`keeps at most ${MAX_KEPT_STATEMENTS} texts and prepares the rest per execution`, () => {
    for (let i = 0; i < MAX_KEPT_STATEMENTS + 2; i++) db.prepare(`select ${i} as n`).get();
    prepared.length = 0;
    db.prepare('select 0 as n').get();
    db.prepare(`select ${MAX_KEPT_STATEMENTS + 1} as n`).get();
    db.prepare(`select ${MAX_KEPT_STATEMENTS + 1} as n`).get();
    expect(prepared).toEqual([
      `select ${MAX_KEPT_STATEMENTS + 1} as n`,
      `select ${MAX_KEPT_STATEMENTS + 1} as n`,
    ]);
  });

  it('runs a kept select * with the column a later migration added', () => {
    db.exec('insert into t (a) values (1)');
    expect(db.prepare('select * from t').all()).toEqual([{ a: 1 }]);
    db.exec('alter table t add column b text');
    db.exec("update t set b = 'x'");
    expect(db.prepare('select * from t').all()).toEqual([{ a: 1, b: 'x' }]);
  });
});
