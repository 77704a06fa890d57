// Storage for the web UI's sessions (auth/web/sessions.ts decides; this file only reads and writes). A
// session is found by the hash of its cookie's token, together with its user's row in the same statement,
// so every request checks the user's current state (deleted, locked) without a second read.
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { Database, UsersTable, WebSessionsTable } from './schema';

export type WebSessionRow = Selectable<WebSessionsTable>;
export type NewWebSession = Insertable<WebSessionsTable>;

/** A session and its user as they are now (no user: the user was deleted). */
export interface WebSessionWithUser {
  session: WebSessionRow;
  user?: Pick<Selectable<UsersTable>, 'name' | 'spec_json' | 'locked_until_ms' | 'lock_reason'>;
}

export class WebSessionStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async insert(row: NewWebSession): Promise<void> {
    await this.db.insertInto('web_sessions').values(row).execute();
  }

  /** The unexpired session whose token hashes to `tokenHash`, with its user's row, in one statement. */
  async find(tokenHash: string, nowMs: number): Promise<WebSessionWithUser | undefined> {
    const row = await this.db
      .selectFrom('web_sessions')
      .leftJoin('users', 'users.name', 'web_sessions.user')
      .selectAll('web_sessions')
      .select([
        'users.name as user_name',
        'users.spec_json as user_spec_json',
        'users.locked_until_ms as user_locked_until_ms',
        'users.lock_reason as user_lock_reason',
      ])
      .where('web_sessions.token_hash', '=', tokenHash)
      .where('web_sessions.expires_ms', '>', nowMs)
      .executeTakeFirst();
    if (!row) return undefined;
    const { user_name, user_spec_json, user_locked_until_ms, user_lock_reason, ...session } = row;
    return {
      session,
      ...(user_name !== null && user_spec_json !== null
        ? {
            user: {
              name: user_name,
              spec_json: user_spec_json,
              locked_until_ms: user_locked_until_ms,
              lock_reason: user_lock_reason,
            },
          }
        : {}),
    };
  }

  /**
   * Marks an untrusted session trusted by a device (the approval ceremony): true for the one call that
   * found it unexpired and untrusted; a session already trusted keeps its device.
   */
  async trust(id: string, device: { deviceId: string; assetTag: string }, nowMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('web_sessions')
      .set({ device_id: device.deviceId, device_asset_tag: device.assetTag, device_trusted_ms: nowMs })
      .where('id', '=', id)
      .where('device_id', 'is', null)
      .where('expires_ms', '>', nowMs)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Ends one session (sign-out): true when it existed. */
  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('web_sessions').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /** Ends every session of a user (locked or deleted); returns how many there were. */
  async deleteForUser(user: string): Promise<number> {
    const result = await this.db.deleteFrom('web_sessions').where('user', '=', user).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  listForUser(user: string): Promise<WebSessionRow[]> {
    return this.db
      .selectFrom('web_sessions')
      .selectAll()
      .where('user', '=', user)
      .orderBy('created_ms')
      .execute();
  }

  async prune(nowMs: number): Promise<void> {
    await this.db.deleteFrom('web_sessions').where('expires_ms', '<=', nowMs).execute();
  }
}
