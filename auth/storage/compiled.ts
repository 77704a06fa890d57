// The hot paths' statements (a login's, the cap's read) built and compiled by Kysely once per
// database, not per call: building the query tree and compiling it cost more CPU than SQLite takes to run
// such a statement, and about as much as pg takes to send it. A statement is written as usual, as a
// function of its arguments; the first call builds it with a placeholder in place of each argument and
// compiles it, and every call then sends that SQL text with its own values in the placeholders' places.
// The text is the one Kysely would have made per call, so pg-prepared.ts, sqlite-prepared.ts and
// sql-count.ts see the same statements as before. Only for statements whose text does not depend on the
// values (no `in` lists, no optional columns): a statement whose compiled parameters do not hold every
// placeholder exactly where an argument goes is refused at its first call.
import { CompiledQuery } from 'kysely';
import type { Compilable, Kysely, QueryResult, Transaction } from 'kysely';
import type { Database } from './schema';

type Db = Kysely<Database> | Transaction<Database>;

/** Where argument `index` goes in a compiled statement's parameters. */
class Placeholder {
  constructor(readonly index: number) {}
}

export interface CompiledStatement<Args extends unknown[], Row> {
  execute(db: Db, ...args: Args): Promise<QueryResult<Row>>;
}

/** `build` compiled once per database (per Kysely dialect adapter), run with each call's `args`. */
export function compiledStatement<Args extends unknown[], Row>(
  arity: Args['length'],
  build: (db: Db, ...args: Args) => Compilable<Row>,
): CompiledStatement<Args, Row> {
  const byAdapter = new WeakMap<object, { sql: string; parameters: readonly unknown[] }>();
  return {
    async execute(db, ...args) {
      const adapter = db.getExecutor().adapter;
      let compiled = byAdapter.get(adapter);
      if (!compiled) {
        const placeholders = Array.from({ length: arity }, (_, i) => new Placeholder(i)) as unknown as Args;
        compiled = build(db, ...placeholders).compile();
        const placed = new Set(
          compiled.parameters.filter((p): p is Placeholder => p instanceof Placeholder).map((p) => p.index),
        );
        if (placed.size !== arity) {
          throw new Error(
            `a compiled statement places ${placed.size} of its ${arity} arguments: ${compiled.sql}`,
          );
        }
        byAdapter.set(adapter, compiled);
      }
      const parameters = compiled.parameters.map((p) => (p instanceof Placeholder ? args[p.index] : p));
      return db.executeQuery<Row>(CompiledQuery.raw(compiled.sql, parameters) as CompiledQuery<Row>);
    },
  };
}
