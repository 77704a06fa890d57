// Statement counts for bench/ (KEYPORT_SQL_COUNT=1), like the step timings of auth/perf.ts: every
// statement the store sends to its driver is counted by name ("insert into challenges", "select users",
// "begin"), and on SIGUSR2 the process writes its totals so far as one `keyport-sql {json}` line to
// standard error; the benchmark signals before and after a measured batch and takes the difference.
// PostgreSQL: each `query` on a pooled client is one round trip (BEGIN and COMMIT included). SQLite: each
// statement run in-process (Kysely asks better-sqlite3 for the statement at every execution, and
// sqlite-prepared.ts hands back the one it kept, so asking is counting). Without
// KEYPORT_SQL_COUNT, nothing is wrapped and no handler is installed.
import type SQLite from 'better-sqlite3';
import type pg from 'pg';

export interface SqlCountRecord {
  pid: number;
  /** Calls into the driver: statements, BEGIN, COMMIT and ROLLBACK alike. */
  round_trips: number;
  /** By statement name (statementName). */
  statements: Record<string, number>;
}

const counts = new Map<string, number>();
let roundTrips = 0;
let installed = false;

const countingOn = () => process.env['KEYPORT_SQL_COUNT'] === '1';

/**
 * A statement's kind and table: `insert into challenges`, `update users`, `select mfa_devices`, `begin`. A
 * statement with CTEs (`with a as (…) …`) names each part, its CTEs first, joined by " + ":
 * `update challenges + select mfa_devices`; a final select of a CTE's rows only is not a part of its own.
 */
export function statementName(sql: string): string {
  const text = sql.replace(/"/g, '').replace(/\s+/g, ' ').trim().toLowerCase();
  return partsOf(text).join(' + ');
}

/** How many of a named statement's parts write (statementName). */
export function writesIn(name: string): number {
  return name.split(' + ').filter((part) => /^(insert into|update|delete from) /.test(part)).length;
}

function partsOf(text: string): string[] {
  if (!text.startsWith('with ')) return [simpleName(text)];
  const parts: string[] = [];
  const ctes = new Set<string>();
  let rest = text.slice('with '.length).replace(/^recursive /, '');
  for (;;) {
    const head = /^(\w+)(?: \([^)]*\))? as (?:(?:not )?materialized )?\(/.exec(rest);
    const close = head ? closingParen(rest, head[0].length - 1) : -1;
    if (!head?.[1] || close < 0) return [...parts, text.slice(0, 48)];
    ctes.add(head[1]);
    parts.push(...partsOf(rest.slice(head[0].length, close).trim()));
    rest = rest.slice(close + 1).trim();
    if (!rest.startsWith(',')) break;
    rest = rest.slice(1).trim();
  }
  const main = partsOf(rest).filter((part) => !ctes.has(part.replace(/^select /, '')));
  return [...parts, ...main];
}

/** The index of the parenthesis closing the one at `open`, or -1. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

function simpleName(text: string): string {
  const written = /^(insert into|update|delete from) (\w+)/.exec(text);
  if (written) return `${written[1]} ${written[2]}`;
  const control = /^(begin|commit|rollback|savepoint|release|start transaction)\b/.exec(text);
  if (control?.[1]) return control[1];
  // The table a read is from, not one of its scalar subqueries' (`select d.*, (select … from x) …`):
  // every parenthesised group goes, innermost first.
  let outer = text;
  for (let previous = ''; previous !== outer;) {
    previous = outer;
    outer = outer.replace(/\([^()]*\)/g, '');
  }
  const read = /^select .*? from (\w+)/.exec(outer);
  if (read) return `select ${read[1]}${/ for (update|share)\b/.test(text) ? ' for update' : ''}`;
  return text.slice(0, 48);
}

/** Names by SQL text: a login sends the same few texts again and again, so each is named once. */
const names = new Map<string, string>();
const MAX_NAMED_TEXTS = 1000;

function record(sql: unknown): void {
  roundTrips++;
  const text = typeof sql === 'string' ? sql : String((sql as { text?: unknown } | null)?.text ?? '?');
  let name = names.get(text);
  if (name === undefined) {
    name = statementName(text);
    if (names.size < MAX_NAMED_TEXTS) names.set(text, name);
  }
  counts.set(name, (counts.get(name) ?? 0) + 1);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('SIGUSR2', () => {
    const line: SqlCountRecord = {
      pid: process.pid,
      round_trips: roundTrips,
      statements: Object.fromEntries(counts),
    };
    process.stderr.write(`keyport-sql ${JSON.stringify(line)}\n`);
  });
}

/** Counts what Kysely runs on this better-sqlite3 database. */
export function countSqliteStatements(db: SQLite.Database): void {
  if (!countingOn()) return;
  install();
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    record(source);
    return prepare(source);
  }) as typeof db.prepare;
}

/** Counts the queries of every client of this pool. */
export function countPoolQueries(pool: pg.Pool): void {
  if (!countingOn()) return;
  install();
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      record(args[0]);
      return query(...args);
    };
  });
}
