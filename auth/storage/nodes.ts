// Storage for nodes and the single-use certificates of per-session MFA. A single-use certificate is spent
// with one conditional UPDATE … RETURNING: the first connection to offer it is recorded, later calls for
// that same connection pass, and every other connection (or node, or a certificate past its end) gets no
// row back, here or on another replica.
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, NodesTable, SessionCertificatesTable } from './schema';

export type NodeRow = Selectable<NodesTable>;

/**
 * How long an allowed connection is remembered: sshd's two calls for one connection come within its
 * LoginGraceTime (120 s by default), and a PID:STARTTIME does not come back that soon.
 */
export const CONNECTION_KEPT_MS = 10 * 60 * 1000;
export type SessionCertificateRow = Selectable<SessionCertificatesTable>;

export class NodeStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  get(name: string): Promise<NodeRow | undefined> {
    return this.db.selectFrom('nodes').selectAll().where('name', '=', name).executeTakeFirst();
  }

  list(): Promise<NodeRow[]> {
    return this.db.selectFrom('nodes').selectAll().orderBy('name').execute();
  }

  /**
   * Writes a node's document. Without `replace`, false when the name is taken; a replaced document keeps
   * the node's identity unless `identitySerial` gives a new one.
   */
  async put(
    name: string,
    docJson: string,
    options: { replace: boolean; nowMs: number; identitySerial?: string },
  ): Promise<boolean> {
    const { nowMs, identitySerial } = options;
    const inserted = await this.db
      .insertInto('nodes')
      .values({
        name,
        doc_json: docJson,
        identity_serial: identitySerial ?? null,
        created_ms: nowMs,
        updated_ms: nowMs,
      })
      .onConflict((oc) =>
        options.replace
          ? oc.column('name').doUpdateSet({
              doc_json: docJson,
              updated_ms: nowMs,
              ...(identitySerial !== undefined ? { identity_serial: identitySerial } : {}),
            })
          : oc.column('name').doNothing(),
      )
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async delete(name: string): Promise<boolean> {
    const deleted = await this.db.deleteFrom('nodes').where('name', '=', name).executeTakeFirst();
    return Number(deleted.numDeletedRows) > 0;
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('nodes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Records a single-use certificate as it is issued; expired ones are dropped on the way. */
  async insertSessionCertificate(row: Omit<SessionCertificateRow, 'connection' | 'spent_ms'>): Promise<void> {
    await this.db.deleteFrom('session_certificates').where('expires_ms', '<', row.created_ms).execute();
    await this.db
      .insertInto('session_certificates')
      .values({ ...row, connection: null, spent_ms: null })
      .execute();
  }

  /**
   * Spends certificate `serial` for `connection` on `node`: the row when it was unspent (now bound to this
   * connection) or already bound to this very connection; undefined otherwise (unknown, another node,
   * another connection, or expired at `nowMs`).
   */
  spendSessionCertificate(
    serial: string,
    node: string,
    connection: string,
    nowMs: number,
  ): Promise<SessionCertificateRow | undefined> {
    return this.db
      .updateTable('session_certificates')
      .set((eb) => ({ connection, spent_ms: eb.fn.coalesce('spent_ms', eb.val(nowMs)) }))
      .where('serial', '=', serial)
      .where('node', '=', node)
      .where('expires_ms', '>', nowMs)
      .where((eb) => eb.or([eb('connection', 'is', null), eb('connection', '=', connection)]))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Records that `connection` on `node` was allowed: true the first time, false when it already was (sshd's
   * second call for the same connection), here or on another replica. Rows go after CONNECTION_KEPT_MS.
   */
  async firstAllowedCall(node: string, connection: string, nowMs: number): Promise<boolean> {
    const inserted = await this.db
      .insertInto('node_connections')
      .values({ node, connection, first_ms: nowMs })
      .onConflict((oc) => oc.columns(['node', 'connection']).doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Drops connections allowed before `beforeMs` (the store's prune). */
  async pruneConnections(beforeMs: number): Promise<void> {
    await this.db.deleteFrom('node_connections').where('first_ms', '<', beforeMs).execute();
  }

  getSessionCertificate(serial: string): Promise<SessionCertificateRow | undefined> {
    return this.db
      .selectFrom('session_certificates')
      .selectAll()
      .where('serial', '=', serial)
      .executeTakeFirst();
  }
}
