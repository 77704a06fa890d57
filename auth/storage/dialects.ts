// The one place where SQLite and PostgreSQL differ in types. Everything else (schema.ts, migrations.ts,
// the stores) is written once for both:
// - bigint: SQLite's integers come back as JS numbers; pg returns int8 (bigint columns, count(*),
//   max(bigint), bigserial ids) as strings by default, so int8 is parsed to a number here, and refused
//   beyond 2^53 rather than silently rounded (milliseconds and counters stay far below it).
// - autoincrement ids: `integer primary key autoincrement` on SQLite, `bigserial primary key` on pg.
// - booleans: 0/1 integers on both (no pg boolean columns), as the schema has always stored them.
// - JSON: text on both (no jsonb), parsed by the callers as before; the one read that looks inside a
//   document (rolesNamedByUserSpec) uses SQLite's json1 or PostgreSQL's json functions.
// - serializing a read-then-write: SQLite runs one transaction at a time; on pg (READ COMMITTED, many
//   connections and replicas) a transaction takes a transaction-scoped advisory lock on a key first.
import { PostgresAdapter, sql } from 'kysely';
import type { ColumnDefinitionBuilder, Kysely, RawBuilder } from 'kysely';
import pg from 'pg';

export type StorageKind = 'sqlite' | 'postgresql';

export function storageKind(db: Kysely<unknown>): StorageKind {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgresql' : 'sqlite';
}

/** The data type of an autoincrement id column; pair it with `idColumn`. */
export function idType(db: Kysely<unknown>): 'integer' | 'bigserial' {
  return storageKind(db) === 'postgresql' ? 'bigserial' : 'integer';
}

/** An autoincrement integer primary key: SQLite's AUTOINCREMENT, or pg's bigserial (a sequence). */
export function idColumn(db: Kysely<unknown>) {
  return (column: ColumnDefinitionBuilder) =>
    storageKind(db) === 'postgresql' ? column.primaryKey() : column.primaryKey().autoIncrement();
}

const INT8_OID = 20;

export function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} is beyond a JS number`);
  return value;
}

/** pg type parsers for a Pool: int8 → number; every other type as pg parses it. */
export function pgTypes(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, parseInt8);
  return types;
}

/** The advisory-lock class of keyport's own keys (pg's two-int key space; the Migrator's lock is one int8). */
const KEYPORT_LOCK_CLASS = 0x6b70;

/**
 * Serializes, until the transaction ends, every transaction that locks the same `key`: a count followed
 * by an insert then holds across connections and replicas. SQLite's transactions are serial already.
 */
export async function lockKeyForTransaction(db: Kysely<unknown>, key: string): Promise<void> {
  if (!db.isTransaction) throw new Error('lockKeyForTransaction: only inside a transaction');
  if (storageKind(db) !== 'postgresql') return;
  await sql`select pg_advisory_xact_lock(${sql.lit(KEYPORT_LOCK_CLASS)}, hashtext(${key}::text))`.execute(db);
}

/**
 * A scalar subquery over the user row aliased `u`: the roles its spec names (`roles`), as one JSON object
 * in text, name → role document; '{}' or NULL when there are none. Lets a login read a user and their roles
 * in one statement. The caller still takes the names from the spec it parses: this is a superset.
 */
export function rolesNamedByUserSpec(db: Kysely<unknown>): RawBuilder<string | null> {
  return storageKind(db) === 'postgresql'
    ? sql<
        string | null
      >`(select json_object_agg(r.name, r.doc_json::json)::text from roles as r where r.name in (select json_array_elements_text(case when json_typeof(u.spec_json::json -> 'roles') = 'array' then u.spec_json::json -> 'roles' else '[]'::json end)))`
    : sql<
        string | null
      >`(select json_group_object(r.name, json(r.doc_json)) from roles as r where r.name in (select value from json_each(u.spec_json, '$.roles')))`;
}
