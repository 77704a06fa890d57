// Prepared statements kept on SQLite: Kysely's SQLite driver prepares every statement it runs
// (`db.prepare(sql)` per execution), and SQLite's prepare (parse and plan) costs more than running a
// short statement. The same text now gets the same better-sqlite3 Statement back, as PostgreSQL's named
// statements do (pg-prepared.ts). Bounds and safety:
// - at most MAX_KEPT_STATEMENTS texts; later texts are prepared per execution, as before;
// - a Statement still iterating (a streamed query) is busy and cannot run again: that text is prepared
//   afresh for the call that finds it so;
// - SQLite recompiles a kept statement itself when a migration changes the schema under it
//   (sqlite3_prepare_v2), so a kept statement never runs an old plan.
import type SQLite from 'better-sqlite3';

export const MAX_KEPT_STATEMENTS = 256;

/** Makes `db.prepare` return the Statement kept for a text it prepared before (see above). */
export function keepPreparedStatements(db: SQLite.Database): void {
  const prepare = db.prepare.bind(db);
  const kept = new Map<string, SQLite.Statement>();
  db.prepare = ((source: string) => {
    const statement = kept.get(source);
    if (statement && !statement.busy) return statement;
    const fresh = prepare(source);
    if (!statement && kept.size < MAX_KEPT_STATEMENTS) kept.set(source, fresh);
    return fresh;
  }) as typeof db.prepare;
}
