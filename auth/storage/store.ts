// Storage behind keyport-auth: Kysely over better-sqlite3 (WAL), or over PostgreSQL (`pg`, postgres.ts)
// for several replicas sharing one database. Every method is one statement or one transaction, so a crash
// or kill never leaves half-written state. Single-use things are spent with
// `UPDATE … WHERE used = 0 … RETURNING`, which stays atomic across connections and replicas.
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import type { Insertable, Selectable, Transaction } from 'kysely';
import { migrationProvider } from './migrations';
import { postgresDialect } from './postgres';
import type { PostgresStorageOptions } from './postgres';
import { compiledStatement } from './compiled';
import { AUDIT_COLUMNS, CHALLENGE_COLUMNS, rowOf } from './columns';
import { LoginStore, passkeyLoginOf, passkeyRead } from './login';
import { countSqliteStatements } from './sql-count';
import { keepPreparedStatements } from './sqlite-prepared';
import { KeyportError } from '../../proto/errors';
import { SEALED_FAMILY } from '../secrets';
import { DeviceStore } from './devices';
import { ConnectorStore } from './connectors';
import { SsoRequestStore } from './sso-requests';
import { CONNECTION_KEPT_MS, NodeStore } from './nodes';
import { ThrottleStore } from './throttle';
import { WebApprovalStore } from './web-approvals';
import { WebSessionStore } from './web-sessions';
import type {
  AuditEventsTable,
  ChallengesTable,
  ClusterAuthoritiesTable,
  Database,
  MfaDevicesTable,
  SignupTokensTable,
  UsersTable,
} from './schema';

export type UserRow = Selectable<UsersTable>;
export type MfaDeviceRow = Selectable<MfaDevicesTable>;
export type ChallengeRow = Selectable<ChallengesTable>;
export type SignupTokenRow = Selectable<SignupTokensTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type NewAuditEvent = Omit<Insertable<AuditEventsTable>, 'id'>;

/** A passkey, its owner and one config value, read together (getPasskeyLogin). */
export interface PasskeyLogin {
  device: MfaDeviceRow;
  /** Undefined when the device's user is gone. */
  owner?: UserRow;
  /** The stored roles the owner's spec names, parsed, by name (a role since deleted is absent). */
  ownerRoles?: Record<string, unknown>;
  configJson?: string;
  /** Whether failed sign-ins of the device's user from the given address are recorded. */
  failedHere: boolean;
}

export async function openSqliteStore(dataDir: string): Promise<Store> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'keyport.db');
  const sqlite = new SQLite(path);
  // Password hashes and OTP secrets live here: owner only, whatever the umask.
  chmodSync(path, 0o600);
  sqlite.pragma('journal_mode = WAL');
  for (const file of [`${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  keepPreparedStatements(sqlite);
  countSqliteStatements(sqlite);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db);
  return new Store(db);
}

export type StorageOptions = { type: 'sqlite' } | ({ type: 'postgresql' } & PostgresStorageOptions);

/** The store the config names: SQLite in the data dir (the default), or PostgreSQL. */
export function openStore(storage: StorageOptions, dataDir: string): Promise<Store> {
  return storage.type === 'postgresql' ? openPostgresStore(storage) : openSqliteStore(dataDir);
}

/**
 * Opens a pool on the database and applies the migrations it lacks (once, whoever else starts too). The
 * migrations run on a connection of their own without statement_timeout: a replica waiting for another's
 * migration lock (or running a long migration) waits as long as it takes, not the per-statement bound.
 */
export async function openPostgresStore(options: PostgresStorageOptions): Promise<Store> {
  const migrating = new Kysely<Database>({
    dialect: postgresDialect({ ...options, poolSize: 1, statementTimeoutMs: 0 }).dialect,
  });
  try {
    await migrate(migrating);
  } finally {
    await migrating.destroy();
  }
  return new Store(new Kysely<Database>({ dialect: postgresDialect(options).dialect }));
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error instanceof KeyportError) throw error;
  if (error || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}

export class Store {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  /** Runs `work` in one transaction; everything it writes lands together or not at all. */
  async transaction<T>(work: (store: Store) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return work(this);
    return (this.db as Kysely<Database>).transaction().execute((trx) => work(new Store(trx)));
  }

  async close(): Promise<void> {
    if (!this.db.isTransaction) await (this.db as Kysely<Database>).destroy();
  }

  // Users

  getUser(name: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
  }

  listUsers(): Promise<UserRow[]> {
    return this.db.selectFrom('users').selectAll().orderBy('name').execute();
  }

  async countUsers(): Promise<number> {
    const row = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Inserts a user; returns false when the name is taken. */
  async insertUser(name: string, specJson: string, nowMs: number): Promise<boolean> {
    const inserted = await this.db
      .insertInto('users')
      .values({ name, spec_json: specJson, created_ms: nowMs, updated_ms: nowMs, password_hash: null })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Replaces a user's spec, keeping password, devices and lock. Returns false when there is no such user. */
  async updateUserSpec(name: string, specJson: string, nowMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set({ spec_json: specJson, updated_ms: nowMs })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async deleteUser(name: string): Promise<boolean> {
    return this.transaction(async (tx) => {
      await tx.db.deleteFrom('mfa_devices').where('user', '=', name).execute();
      await tx.db.deleteFrom('signup_tokens').where('user', '=', name).execute();
      await tx.db.deleteFrom('challenges').where('user', '=', name).execute();
      await tx.db.deleteFrom('login_attempts').where('name', '=', name).execute();
      await tx.db.deleteFrom('web_sessions').where('user', '=', name).execute();
      await tx.db.deleteFrom('web_session_approvals').where('user', '=', name).execute();
      const result = await tx.db.deleteFrom('users').where('name', '=', name).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    });
  }

  /** The user's WebAuthn user handle, made (random, stable) on first use. */
  async webauthnUserHandle(name: string, fresh: () => string): Promise<string> {
    await this.db
      .updateTable('users')
      .set({ webauthn_user_handle: fresh() })
      .where('name', '=', name)
      .where('webauthn_user_handle', 'is', null)
      .execute();
    const row = await this.db
      .selectFrom('users')
      .select('webauthn_user_handle')
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row?.webauthn_user_handle) throw new Error(`no user "${name}"`);
    return row.webauthn_user_handle;
  }

  getUserByWebauthnHandle(handle: string): Promise<UserRow | undefined> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('webauthn_user_handle', '=', handle)
      .executeTakeFirst();
  }

  async setPasswordHash(name: string, hash: string, nowMs: number): Promise<void> {
    await this.db
      .updateTable('users')
      .set({ password_hash: hash, updated_ms: nowMs })
      .where('name', '=', name)
      .execute();
  }

  async setLock(
    name: string,
    lockedUntilMs: number | null,
    reason: string | null,
    nowMs: number,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set({ locked_until_ms: lockedUntilMs, lock_reason: reason, updated_ms: nowMs })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // Roles and cluster configuration

  /** The stored documents of the named roles that exist, in one statement. */
  async getRoleJsons(names: readonly string[]): Promise<Map<string, string>> {
    if (names.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('roles')
      .select(['name', 'doc_json'])
      .where('name', 'in', [...names])
      .execute();
    return new Map(rows.map((row) => [row.name, row.doc_json]));
  }

  async getRoleJson(name: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('roles')
      .select('doc_json')
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.doc_json;
  }

  async listRoleJson(): Promise<string[]> {
    const rows = await this.db.selectFrom('roles').select('doc_json').orderBy('name').execute();
    return rows.map((r) => r.doc_json);
  }

  async countRoles(): Promise<number> {
    const row = await this.db
      .selectFrom('roles')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Writes a role. Without `replace`, returns false and writes nothing when the role exists. */
  async putRole(name: string, docJson: string, replace: boolean, nowMs: number): Promise<boolean> {
    const result = await this.db
      .insertInto('roles')
      .values({ name, doc_json: docJson, created_ms: nowMs, updated_ms: nowMs })
      .onConflict((oc) =>
        replace
          ? oc.column('name').doUpdateSet({ doc_json: docJson, updated_ms: nowMs })
          : oc.column('name').doNothing(),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async deleteRole(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('roles').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async getConfig(key: string): Promise<string | undefined> {
    const { rows } = await hot.getConfig.execute(this.db, key);
    return rows[0]?.value_json;
  }

  async putConfig(key: string, valueJson: string, nowMs: number): Promise<void> {
    await this.db
      .insertInto('cluster_config')
      .values({ key, value_json: valueJson, updated_ms: nowMs })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value_json: valueJson, updated_ms: nowMs }))
      .execute();
  }

  // The cluster's CAs (sealed private keys) and the super-admin serials replicas issued

  listAuthorities(): Promise<Selectable<ClusterAuthoritiesTable>[]> {
    return this.db.selectFrom('cluster_authorities').selectAll().orderBy('kind').execute();
  }

  /**
   * Inserts each CA row whose kind is absent, in one transaction, and returns how many it inserted. The
   * primary key on `kind` settles a race: a second first start waits on the first one's rows (PostgreSQL)
   * or on its write lock (SQLite), then inserts nothing, and every replica loads the rows that won.
   */
  async insertAuthoritiesIfAbsent(rows: Insertable<ClusterAuthoritiesTable>[]): Promise<number> {
    return this.transaction(async (tx) => {
      let inserted = 0;
      for (const row of rows) {
        const result = await tx.db
          .insertInto('cluster_authorities')
          .values(row)
          .onConflict((oc) => oc.column('kind').doNothing())
          .executeTakeFirst();
        inserted += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return inserted;
    });
  }

  /** Records `replica`'s current super-admin serial, replacing its previous one; drops expired ones. */
  async putBuiltinAdmin(replica: string, serial: string, issuedMs: number, expiresMs: number): Promise<void> {
    await this.transaction(async (tx) => {
      await tx.db.deleteFrom('builtin_admins').where('expires_ms', '<', issuedMs).execute();
      await tx.db
        .insertInto('builtin_admins')
        .values({ replica, serial, issued_ms: issuedMs, expires_ms: expiresMs })
        .onConflict((oc) =>
          oc.column('replica').doUpdateSet({ serial, issued_ms: issuedMs, expires_ms: expiresMs }),
        )
        .execute();
    });
  }

  /** Whether `serial` is some replica's current super-admin certificate. */
  async isBuiltinAdmin(serial: string, nowMs: number): Promise<boolean> {
    const row = await this.db
      .selectFrom('builtin_admins')
      .select('replica')
      .where('serial', '=', serial)
      .where('expires_ms', '>=', nowMs)
      .executeTakeFirst();
    return row !== undefined;
  }

  // Signup tokens (stored as hashes only)

  async insertSignupToken(row: Insertable<SignupTokensTable>): Promise<void> {
    await this.db.insertInto('signup_tokens').values(row).execute();
  }

  getSignupToken(tokenHash: string): Promise<SignupTokenRow | undefined> {
    return this.db
      .selectFrom('signup_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
  }

  /**
   * The token's pending TOTP secret: `fresh` when it has none yet, else the one offered before, so every
   * StartSignup for one token shows the same secret (also when two race). Undefined for a spent token.
   */
  async pendingTotpSecret(tokenHash: string, fresh: string): Promise<string | undefined> {
    await this.db
      .updateTable('signup_tokens')
      .set({ pending_totp_secret: fresh })
      .where('token_hash', '=', tokenHash)
      .where('used', '=', 0)
      .where('pending_totp_secret', 'is', null)
      .execute();
    const row = await this.getSignupToken(tokenHash);
    return row && !row.used ? (row.pending_totp_secret ?? undefined) : undefined;
  }

  /** Rows from before seeds were sealed (auth/secrets.ts sealPlainTotpSeeds). */
  async listSignupTokensWithPlainSeeds(): Promise<
    { token_hash: string; user: string; pending_totp_secret: string }[]
  > {
    const rows = await this.db
      .selectFrom('signup_tokens')
      .select(['token_hash', 'user', 'pending_totp_secret'])
      .where('pending_totp_secret', 'is not', null)
      .where('pending_totp_secret', 'not like', `${SEALED_FAMILY}%`)
      .execute();
    return rows as { token_hash: string; user: string; pending_totp_secret: string }[];
  }

  async setSignupTotpSeed(tokenHash: string, sealed: string): Promise<void> {
    await this.db
      .updateTable('signup_tokens')
      .set({ pending_totp_secret: sealed })
      .where('token_hash', '=', tokenHash)
      .execute();
  }

  async listTotpDevicesWithPlainSeeds(): Promise<{ id: string; user: string; totp_secret: string }[]> {
    const rows = await this.db
      .selectFrom('mfa_devices')
      .select(['id', 'user', 'totp_secret'])
      .where('type', '=', 'totp')
      .where('totp_secret', 'is not', null)
      .where('totp_secret', 'not like', `${SEALED_FAMILY}%`)
      .execute();
    return rows as { id: string; user: string; totp_secret: string }[];
  }

  async setTotpSeed(deviceId: string, sealed: string): Promise<void> {
    await this.db
      .updateTable('mfa_devices')
      .set({ totp_secret: sealed })
      .where('id', '=', deviceId)
      .execute();
  }

  /** The secret now lives with the device only. */
  async clearPendingTotpSecret(tokenHash: string): Promise<void> {
    await this.db
      .updateTable('signup_tokens')
      .set({ pending_totp_secret: null })
      .where('token_hash', '=', tokenHash)
      .execute();
  }

  /** Spends an unused, unexpired token; undefined when it was already spent, expired or never existed. */
  consumeSignupToken(tokenHash: string, nowMs: number): Promise<SignupTokenRow | undefined> {
    return this.db
      .updateTable('signup_tokens')
      .set({ used: 1 })
      .where('token_hash', '=', tokenHash)
      .where('used', '=', 0)
      .where('expires_ms', '>', nowMs)
      .returningAll()
      .executeTakeFirst();
  }

  // MFA devices

  listDevices(user: string): Promise<MfaDeviceRow[]> {
    return this.db
      .selectFrom('mfa_devices')
      .selectAll()
      .where('user', '=', user)
      .orderBy('added_ms')
      .execute();
  }

  /** Adds a device; returns false when the user already has a device with that name. */
  async insertDevice(row: Insertable<MfaDevicesTable>): Promise<boolean> {
    const result = await this.db
      .insertInto('mfa_devices')
      .values(row)
      .onConflict((oc) => oc.columns(['user', 'name']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  getDeviceByCredentialId(credentialId: string): Promise<MfaDeviceRow | undefined> {
    return this.db
      .selectFrom('mfa_devices')
      .selectAll()
      .where('webauthn_credential_id', '=', credentialId)
      .executeTakeFirst();
  }

  /**
   * Passwordless login's one read: the WebAuthn device with `credentialId`, the user it belongs to (as
   * read now, lock included), the stored value of config `configKey` (the cap the login is checked
   * against) and whether failed sign-ins of that user from `clientAddr` are recorded (the lockout's, for a
   * success to forgive), in one statement. Undefined when no device has that credential id.
   */
  async getPasskeyLogin(
    credentialId: string,
    configKey: string,
    clientAddr: string,
  ): Promise<PasskeyLogin | undefined> {
    const [row] = (await passkeyRead.execute(this.db, credentialId, configKey, clientAddr)).rows;
    return row ? passkeyLoginOf(row as unknown as Record<string, unknown>) : undefined;
  }

  /**
   * Records a verified assertion: the new sign counter and the time of use. Only moves the counter
   * forward (or keeps 0 = 0 for keys without a counter), so two racing assertions cannot both pass.
   */
  async acceptWebauthnCounter(
    deviceId: string,
    previous: number,
    counter: number,
    nowMs: number,
  ): Promise<boolean> {
    const result = await hot.acceptWebauthnCounter.execute(this.db, deviceId, previous, counter, nowMs);
    return Number(result.numAffectedRows) === 1;
  }

  async deleteDevice(user: string, name: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('mfa_devices')
      .where('user', '=', user)
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /**
   * Records that a TOTP code of time step `step` was used. Only a step later than every step accepted
   * before passes, so a code (or an older one) is never accepted twice, even by two racing calls.
   */
  async acceptTotpStep(deviceId: string, step: number, nowMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('mfa_devices')
      .set({ totp_last_step: step, last_used_ms: nowMs })
      .where('id', '=', deviceId)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  // Challenges

  async insertChallenge(row: Insertable<ChallengesTable>): Promise<void> {
    await hot.insertChallenge.execute(
      this.db,
      ...CHALLENGE_COLUMNS.map((column) => (column === 'user' ? (row.user ?? null) : row[column])),
    );
  }

  /** Removes a challenge just stored for a call that was then refused (nothing of it stays). */
  async deleteChallenge(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('challenges').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /** Spends a challenge whatever its state; the caller checks expiry, scope and user on the returned row. */
  async consumeChallenge(id: string): Promise<ChallengeRow | undefined> {
    return (await hot.consumeChallenge.execute(this.db, id)).rows[0];
  }

  // Proof-of-possession nonces

  /**
   * Spends the nonce of a proof of possession: true only for the one call that inserted it, or that took
   * over a row already expired at `nowMs` (its proof is stale everywhere by then). One statement, so 50
   * calls racing with one nonce, through any replicas, get one true.
   */
  async spendPopNonce(nonce: string, expiresMs: number, nowMs: number): Promise<boolean> {
    const spent = await this.db
      .insertInto('pop_nonces')
      .values({ nonce, expires_ms: expiresMs })
      .onConflict((oc) =>
        oc.column('nonce').doUpdateSet({ expires_ms: expiresMs }).where('pop_nonces.expires_ms', '<', nowMs),
      )
      .returning('nonce')
      .executeTakeFirst();
    return spent !== undefined;
  }

  // A passwordless login's statements, sent together where the database allows: storage/login.ts

  get login(): LoginStore {
    return new LoginStore(this.db, this);
  }

  // Throttling (login attempts, rate limits): storage/throttle.ts

  get throttle(): ThrottleStore {
    return new ThrottleStore(this.db);
  }

  // Device trust (inventory, enrollment tokens): storage/devices.ts

  get devices(): DeviceStore {
    return new DeviceStore(this.db);
  }

  // Nodes and single-use SSH certificates: storage/nodes.ts

  get nodes(): NodeStore {
    return new NodeStore(this.db);
  }

  // The web UI's sessions: storage/web-sessions.ts

  get webSessions(): WebSessionStore {
    return new WebSessionStore(this.db);
  }

  // The web-session approval ceremony's requests: storage/web-approvals.ts

  get webApprovals(): WebApprovalStore {
    return new WebApprovalStore(this.db);
  }

  // SSO connectors (kind oidc): storage/connectors.ts

  get connectors(): ConnectorStore {
    return new ConnectorStore(this.db);
  }

  // SSO logins in flight and SSO users: storage/sso-requests.ts

  get sso(): SsoRequestStore {
    return new SsoRequestStore(this.db);
  }

  // Audit log

  /** Appends events in one statement (several rows: one round trip, one write). */
  async appendAudit(events: NewAuditEvent | NewAuditEvent[]): Promise<void> {
    const list = Array.isArray(events) ? events : [events];
    if (list.length === 0) return;
    const statement = hot.appendAudit[list.length - 1];
    if (statement) {
      await statement.execute(
        this.db,
        ...list.flatMap((event) => AUDIT_COLUMNS.map((column) => event[column])),
      );
    } else await this.db.insertInto('audit_events').values(list).execute();
  }

  listAudit(filter: { sinceMs?: number; type?: string; limit?: number }): Promise<AuditEventRow[]> {
    let query = this.db.selectFrom('audit_events').selectAll();
    if (filter.sinceMs) query = query.where('time_ms', '>=', filter.sinceMs);
    if (filter.type) query = query.where('type', '=', filter.type);
    return query
      .orderBy('id', 'desc')
      .limit(filter.limit && filter.limit > 0 ? filter.limit : 1000)
      .execute()
      .then((rows) => rows.reverse());
  }

  /** Drops spent and expired single-use rows and old attempts; run periodically. */
  async prune(nowMs: number, failureWindowMs: number): Promise<void> {
    await this.db
      .deleteFrom('challenges')
      .where((eb) => eb.or([eb('used', '=', 1), eb('expires_ms', '<', nowMs)]))
      .execute();
    // Expired tokens stay a day, so a late signup hears "expired" rather than "invalid".
    await this.db
      .deleteFrom('signup_tokens')
      .where('expires_ms', '<', nowMs - 24 * 60 * 60 * 1000)
      .execute();
    await this.db.deleteFrom('pop_nonces').where('expires_ms', '<', nowMs).execute();
    await this.throttle.prune(nowMs, failureWindowMs, 60 * 60 * 1000);
    await this.devices.pruneTokens(nowMs - 24 * 60 * 60 * 1000);
    await this.nodes.pruneConnections(nowMs - CONNECTION_KEPT_MS);
    await this.webSessions.prune(nowMs);
    await this.webApprovals.prune(nowMs);
    await this.sso.prune(nowMs - 24 * 60 * 60 * 1000);
  }
}

/** The statements of a login and of every cap read, compiled once (compiled.ts). */
const hot = {
  getConfig: compiledStatement(1, (db, key: string) =>
    db.selectFrom('cluster_config').select('value_json').where('key', '=', key),
  ),
  acceptWebauthnCounter: compiledStatement(
    4,
    (db, deviceId: string, previous: number, counter: number, nowMs: number) =>
      db
        .updateTable('mfa_devices')
        .set({ webauthn_sign_count: counter, last_used_ms: nowMs })
        .where('id', '=', deviceId)
        .where('webauthn_sign_count', '=', previous),
  ),
  insertChallenge: compiledStatement(CHALLENGE_COLUMNS.length, (db, ...values: unknown[]) =>
    db.insertInto('challenges').values(rowOf(CHALLENGE_COLUMNS, values)),
  ),
  consumeChallenge: compiledStatement(1, (db, id: string) =>
    db.updateTable('challenges').set({ used: 1 }).where('id', '=', id).where('used', '=', 0).returningAll(),
  ),
  /** One to three events in one statement (a login writes two). */
  appendAudit: [1, 2, 3].map((n) =>
    compiledStatement(n * AUDIT_COLUMNS.length, (db, ...values: unknown[]) =>
      db
        .insertInto('audit_events')
        .values(Array.from({ length: n }, (_, i) => rowOf(AUDIT_COLUMNS, values, i * AUDIT_COLUMNS.length))),
    ),
  ),
};
