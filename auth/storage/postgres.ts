// The PostgreSQL store: Kysely's PostgreSQL dialect over a `pg` Pool shared by every call of this replica.
// Credentials stay where PostgreSQL users put them (the conn string, sslcert/sslkey/sslrootcert, a
// passfile, PGPASSFILE or ~/.pgpass); the conn string is never logged with its password (redactConnString).
// A connection lost mid-call (the server restarting, the network gone) surfaces as
// KeyportError('UNAVAILABLE') from every store method: the driver below maps pg's connection errors at
// this boundary. A transaction whose connection is lost is rolled back by the server, and the broken
// client leaves the pool, which connects afresh once the server is back.
import { readFileSync } from 'node:fs';
import { PostgresDialect } from 'kysely';
import type { CompiledQuery, DatabaseConnection, Driver, QueryResult, TransactionSettings } from 'kysely';
import pg from 'pg';
import { KeyportError } from '../../proto/errors';
import { pgTypes } from './dialects';
import { isReplanError, prepareStatements } from './pg-prepared';
import { countPoolQueries } from './sql-count';

export interface PostgresStorageOptions {
  /** postgresql://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…&passfile=…] */
  connString: string;
  /** Connections this replica keeps at most. */
  poolSize: number;
  /** A statement running longer is cancelled by the server (0: no limit). */
  statementTimeoutMs: number;
  /** How long to wait for a new connection before the call fails as UNAVAILABLE. */
  connectTimeoutMs?: number;
  /** Where pool errors (idle connections lost) are reported; never with credentials. */
  log?: (line: string) => void;
}

/** The conn string with its password (in the userinfo or a `password` parameter) masked. */
export function redactConnString(connString: string): string {
  try {
    const url = new URL(connString);
    if (url.password) url.password = '***';
    if (url.searchParams.has('password')) url.searchParams.set('password', '***');
    return url.toString();
  } catch {
    return '(an unparsable conn string)';
  }
}

/** Whether `text` is a postgres:// or postgresql:// URL with a host and a database. */
export function validConnString(text: string): boolean {
  try {
    const url = new URL(text);
    return ['postgres:', 'postgresql:'].includes(url.protocol) && url.pathname.length > 1;
  } catch {
    return false;
  }
}

const unescapePgpass = (field: string) => field.replace(/\\(.)/g, '$1');

/** The password for (host, port, database, user) in a libpq passfile (`host:port:db:user:password`). */
export function passfilePassword(
  file: string,
  host: string,
  port: string,
  database: string,
  user: string,
): string | undefined {
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/(?<!\\):/);
    if (fields.length < 5) continue;
    const [h, p, d, u] = fields.slice(0, 4).map(unescapePgpass);
    const password = unescapePgpass(fields.slice(4).join(':'));
    const match = (pattern: string | undefined, value: string) => pattern === '*' || pattern === value;
    if (match(h, host) && match(p, port) && match(d, database) && match(u, user)) return password;
  }
  return undefined;
}

/**
 * The conn string pg is given: a `passfile` parameter (libpq's name) is read here and its password put
 * in the URL pg parses, in memory only.
 */
export function resolveConnString(connString: string): string {
  const url = new URL(connString);
  const passfile = url.searchParams.get('passfile');
  if (!passfile) return connString;
  url.searchParams.delete('passfile');
  if (url.password) return url.toString();
  const host = url.hostname || 'localhost';
  const database = decodeURIComponent(url.pathname.slice(1));
  const user = decodeURIComponent(url.username);
  const password = passfilePassword(passfile, host, url.port || '5432', database, user);
  if (password === undefined) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The passfile ${passfile} has no line for ${user}@${host}:${url.port || '5432'}/${database}.`,
    );
  }
  url.password = encodeURIComponent(password);
  return url.toString();
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
  '53300', // too_many_connections
]);
// "timeout exceeded when trying to connect": pg-pool waited connectionTimeoutMillis for a free connection.
const CONNECTION_MESSAGES =
  /Connection terminated|connection timeout|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed|not queryable|the database system is (starting up|shutting down|in recovery mode)/i;

/** Whether `error` says the database could not be reached or the connection was lost. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  return CONNECTION_MESSAGES.test(error.message);
}

/** pg's connection errors (and the statement timeout) as KeyportError('UNAVAILABLE'); others unchanged. */
export function mapPgError(error: unknown): unknown {
  if (error instanceof KeyportError) return error;
  if (isConnectionError(error)) {
    return new KeyportError(
      'UNAVAILABLE',
      `The database is unreachable (${(error as Error).message}); the call was not completed, try again shortly.`,
    );
  }
  if ((error as { code?: unknown })?.code === '57014') {
    return new KeyportError(
      'UNAVAILABLE',
      'The database did not answer within the statement timeout; the call was not completed, try again shortly.',
    );
  }
  if (isReplanError(error)) {
    return new KeyportError(
      'UNAVAILABLE',
      'A table changed under a prepared statement (a migration by another replica); the call was not completed, try again.',
    );
  }
  return error;
}

async function mapped<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw mapPgError(error);
  }
}

/** A connection whose query errors are mapped; the driver keeps the inner one to release it. */
class MappedConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return mapped(() => this.inner.executeQuery<R>(query));
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/** PostgresDriver with pg's connection errors mapped at the store boundary. */
class MappedDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new MappedConnection(await mapped(() => this.inner.acquireConnection()));
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return mapped(() => this.inner.beginTransaction(unwrap(connection), settings));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return mapped(() => this.inner.commitTransaction(unwrap(connection)));
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return mapped(() => this.inner.rollbackTransaction(unwrap(connection)));
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(unwrap(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

const unwrap = (connection: DatabaseConnection) =>
  connection instanceof MappedConnection ? connection.inner : connection;

class MappedPostgresDialect extends PostgresDialect {
  override createDriver(): Driver {
    return new MappedDriver(super.createDriver());
  }
}

/** The pool and the Kysely dialect over it. */
export function postgresDialect(options: PostgresStorageOptions): {
  dialect: PostgresDialect;
  pool: pg.Pool;
} {
  const pool = new pg.Pool({
    connectionString: resolveConnString(options.connString),
    max: options.poolSize,
    types: pgTypes(),
    // Milliseconds, sent as the session's statement_timeout at connect.
    ...(options.statementTimeoutMs > 0 ? { statement_timeout: options.statementTimeoutMs } : {}),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: 'keyport-auth',
  });
  // An idle client whose server went away emits `error` on the pool; unhandled, it would end the process.
  // The client is dropped from the pool; the next call connects afresh.
  const lost = (error: Error) => options.log?.(`storage: a database connection was lost: ${error.message}`);
  pool.on('error', lost);
  // A client checked out (in a transaction between two statements) has no pool listener: its `error`
  // would be uncaught too. Its next statement fails as UNAVAILABLE; on release the pool drops it.
  pool.on('connect', (client) => client.on('error', lost));
  prepareStatements(pool);
  countPoolQueries(pool);
  return { dialect: new MappedPostgresDialect({ pool }), pool };
}
