// What only PostgreSQL has: concurrent migrators, a pool of connections, connections lost mid-call, the
// statement timeout, credentials in conn strings and passfiles. The methods themselves are in the
// conformance suite (conformance.test.ts), on both databases.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabPostgres } from '../../lab/postgres';
import type { LabPostgres } from '../../lab/postgres';
import { KeyportError } from '../../proto/errors';
import { parseInt8 } from './dialects';
import { migrationProvider } from './migrations';
import { postgresDialect, redactConnString, resolveConnString } from './postgres';
import type { Database } from './schema';
import { openPostgresStore } from './store';
import type { Store } from './store';

let lab: LabPostgres;

beforeAll(async () => {
  lab = await startLabPostgres();
});

afterAll(async () => {
  await lab?.stop();
});

async function query<R extends pg.QueryResultRow>(connString: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: connString });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

const options = (connString: string) => ({ connString, poolSize: 8, statementTimeoutMs: 30_000 });

describe('PostgreSQL store', () => {
  it('applies each migration exactly once when several replicas migrate at the same moment', async () => {
    const connString = await lab.createDatabase();
    const dbs = Array.from(
      { length: 4 },
      () => new Kysely<Database>({ dialect: postgresDialect(options(connString)).dialect }),
    );
    try {
      const runs = await Promise.all(
        dbs.map((db) => new Migrator({ db, provider: migrationProvider }).migrateToLatest()),
      );
      expect(runs.map((run) => run.error)).toEqual([undefined, undefined, undefined, undefined]);
      const applied = runs.flatMap((run) => run.results ?? []).filter((r) => r.status === 'Success');
      const names = Object.keys(await migrationProvider.getMigrations()).sort();
      expect(applied.map((r) => r.migrationName).sort()).toEqual(names);
      const rows = await query<{ name: string }>(
        connString,
        'select name from kysely_migration order by name',
      );
      expect(rows.map((r) => r.name)).toEqual(names);
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
    }
    // Stores opening together on the migrated database, and on a fresh one, all work.
    const fresh = await lab.createDatabase();
    const stores = await Promise.all(
      [connString, connString, fresh, fresh, fresh].map((c) => openPostgresStore(options(c))),
    );
    expect(await Promise.all(stores.map((s) => s.countUsers()))).toEqual([0, 0, 0, 0, 0]);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('spends a challenge once among 50 racing spends on several pooled connections', async () => {
    const connString = await lab.createDatabase();
    const store = await openPostgresStore(options(connString));
    try {
      await store.insertChallenge({
        id: 'c',
        user: 'alice',
        scope: 'LOGIN',
        payload_json: '{}',
        created_ms: 1,
        expires_ms: 2,
        used: 0,
      });
      const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeChallenge('c')));
      expect(results.filter(Boolean)).toHaveLength(1);
      const [row] = await query<{ n: string }>(
        connString,
        `select count(*) as n from pg_stat_activity where application_name = 'keyport-auth' and datname = current_database()`,
      );
      expect(Number(row?.n)).toBeGreaterThan(1);
    } finally {
      await store.close();
    }
  });

  it('waits for another replica’s migration lock longer than statement_timeout, then starts', async () => {
    const connString = await lab.createDatabase();
    // Another replica mid-migration: Kysely's migration lock held on a connection of its own.
    const holder = new pg.Client({ connectionString: connString });
    await holder.connect();
    const lockId = '3853314791062309107'; // kysely's PostgresAdapter LOCK_ID
    await holder.query(`select pg_advisory_lock(${lockId})`);
    let opened: Store | undefined;
    const opening = openPostgresStore({ connString, poolSize: 2, statementTimeoutMs: 100 }).then(
      (store) => (opened = store),
    );
    try {
      // Wait until this replica is queued on the lock, then past several statement timeouts: it still waits.
      for (;;) {
        const [waiting] = await query<{ n: number }>(
          connString,
          `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
        );
        if (waiting?.n === 1) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(opened).toBeUndefined();
    } finally {
      await holder.query(`select pg_advisory_unlock(${lockId})`);
      await holder.end();
    }
    const store = await opening;
    try {
      expect(await store.countUsers()).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('fails a statement past statement_timeout as UNAVAILABLE', async () => {
    const connString = await lab.createDatabase();
    const db = new Kysely<Database>({
      dialect: postgresDialect({ connString, poolSize: 2, statementTimeoutMs: 100 }).dialect,
    });
    try {
      const error = await sql`select pg_sleep(2)`.execute(db).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringMatching(/statement timeout/),
      });
    } finally {
      await db.destroy();
    }
  });

  it('reads a password from a passfile named in the conn string, and never shows one', async () => {
    const url = new URL(lab.connString);
    const dir = await mkdtemp(join(tmpdir(), 'keyport-passfile-'));
    try {
      const passfile = join(dir, 'pgpass');
      await writeFile(
        passfile,
        `# comment\nother:*:*:*:wrong\n127.0.0.1:${url.port}:*:keyport:${url.password}\n`,
        {
          mode: 0o600,
        },
      );
      const password = url.password;
      url.password = '';
      url.searchParams.set('passfile', passfile);
      const store = await openPostgresStore(options(url.toString()));
      expect(await store.countUsers()).toBe(0);
      await store.close();
      expect(resolveConnString(url.toString())).toContain(password);
      url.searchParams.set('passfile', join(dir, 'missing'));
      expect(() => resolveConnString(url.toString())).toThrow(/ENOENT/);
      expect(redactConnString(lab.connString)).not.toContain(password);
      expect(redactConnString(lab.connString)).toMatch(
        /^postgresql:\/\/keyport:\*\*\*@127\.0\.0\.1:\d+\/keyport$/,
      );
      expect(redactConnString('postgresql://h/db?password=secret')).not.toContain('secret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an int8 beyond a JS number rather than rounding it', () => {
    expect(parseInt8('1700000000000')).toBe(1_700_000_000_000);
    expect(() => parseInt8('9007199254740993')).toThrow(RangeError);
  });

  it('says UNAVAILABLE when nothing listens at the conn string', async () => {
    const url = new URL(lab.connString);
    url.port = '1';
    const error = await openPostgresStore(options(url.toString())).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(/database is unreachable/),
    });
  });
});

describe('PostgreSQL going away', () => {
  let own: LabPostgres;
  beforeAll(async () => {
    own = await startLabPostgres();
  });
  afterAll(async () => {
    await own?.stop();
  });

  it('rolls back a transaction whose connection is lost, says UNAVAILABLE, and recovers when the server is back', async () => {
    const lines: string[] = [];
    const store = await openPostgresStore({ ...options(own.connString), log: (line) => lines.push(line) });
    try {
      // Idle connections in the pool, which lose their server too.
      await Promise.all(Array.from({ length: 6 }, () => store.countUsers()));
      const error = await store
        .transaction(async (tx) => {
          await tx.insertUser('carol', '{}', 1);
          await own.kill();
          await tx.putRole('r', '{}', false, 1);
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringMatching(/database is unreachable/),
      });
      // While it is down, calls fail the same way rather than hang or crash the process.
      await expect(store.getUser('carol')).rejects.toMatchObject({ code: 'UNAVAILABLE' });

      await own.start();
      expect(await store.getUser('carol')).toBeUndefined();
      expect(await store.getRoleJson('r')).toBeUndefined();
      expect(await store.insertUser('carol', '{}', 2)).toBe(true);

      // A clean restart with idle connections: pool.on('error') takes their errors; the next calls work.
      await Promise.all(Array.from({ length: 6 }, () => store.countUsers()));
      await own.restart();
      await expect.poll(() => store.countUsers().catch(() => -1)).toBe(1);
      expect(lines.join('\n')).not.toContain(new URL(own.connString).password);
    } finally {
      await store.close();
    }
  });
});
