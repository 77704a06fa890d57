// Named prepared statements on PostgreSQL: every select, insert, update, delete (and `with …`) that Kysely
// sends is given a name derived from its text, so each pooled connection parses and plans it once and
// then only binds and executes it (the server's parse/plan is a large part of a short statement's CPU, and
// the driver skips the Parse message too). The text decides the name, so the same statement always gets
// the same name and different texts never share one. SQLite's counterpart is sqlite-prepared.ts (a kept
// better-sqlite3 statement per text). Bounds and the one failure it adds:
// - at most MAX_NAMED_PER_CONNECTION names per connection; later texts run unnamed, as before;
// - a migration that changes a table's columns while this replica runs (a rolling upgrade) makes the
//   server refuse a prepared `select *`/`returning *` once ("cached plan must not change result type").
//   Outside a transaction the statement is sent again under a new name at once, invisibly; inside one
//   the transaction is already aborted, so the call fails (as UNAVAILABLE, to be retried), and the
//   connection's later statements use new names.
import { createHash } from 'node:crypto';
import type pg from 'pg';

export const MAX_NAMED_PER_CONNECTION = 256;

const NAMED = /^\s*(select|insert|update|delete|with)\b/i;
const OPENS = /^\s*(begin|start transaction)\b/i;
const CLOSES = /^\s*(commit|rollback|end|abort)\s*;?\s*$/i;
const REPLANNED = /cached plan must not change result type/i;

type Query = (...args: unknown[]) => unknown;

interface Naming {
  /** Bumped when the server refused a prepared plan: every text gets a fresh name. */
  generation: number;
  names: Map<string, string>;
  inTransaction: boolean;
}

/** Whether `error` is the server refusing a prepared statement whose table changed under it. */
export function isReplanError(error: unknown): boolean {
  return (
    (error as { code?: unknown } | null)?.code === '0A000' &&
    error instanceof Error &&
    REPLANNED.test(error.message)
  );
}

function nameOf(naming: Naming, text: string): string | undefined {
  const known = naming.names.get(text);
  if (known !== undefined) return known;
  if (naming.names.size >= MAX_NAMED_PER_CONNECTION || !NAMED.test(text)) return undefined;
  const name = `kp${naming.generation}_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`;
  naming.names.set(text, name);
  return name;
}

/** Gives the hot statements of every client of this pool a name (see above). */
export function prepareStatements(pool: pg.Pool): void {
  pool.on('connect', (client) => {
    const naming: Naming = { generation: 0, names: new Map(), inTransaction: false };
    const query = client.query.bind(client) as Query;
    const named: Query = (...args) => {
      const [text, values, callback] = args;
      if (typeof text !== 'string' || !Array.isArray(values) || callback !== undefined) {
        return query(...args);
      }
      if (OPENS.test(text)) naming.inTransaction = true;
      else if (CLOSES.test(text)) naming.inTransaction = false;
      const name = nameOf(naming, text);
      if (name === undefined) return query(text, values);
      const sent = query({ name, text, values }) as Promise<unknown>;
      return sent.catch((error: unknown) => {
        if (!isReplanError(error)) throw error;
        naming.generation++;
        naming.names.clear();
        if (naming.inTransaction) throw error;
        return query(text, values);
      });
    };
    (client as unknown as { query: Query }).query = named;
  });
}
