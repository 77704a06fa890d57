// Storage for SSO connectors (kind oidc). The client secret is stored sealed, in its own column, so the
// document the admin API prints never holds it; sealing and opening are the caller's (auth/connectors.ts).
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, OidcConnectorsTable } from './schema';

export type OidcConnectorRow = Selectable<OidcConnectorsTable>;

export class ConnectorStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  get(name: string): Promise<OidcConnectorRow | undefined> {
    return this.db.selectFrom('oidc_connectors').selectAll().where('name', '=', name).executeTakeFirst();
  }

  list(): Promise<OidcConnectorRow[]> {
    return this.db.selectFrom('oidc_connectors').selectAll().orderBy('name').execute();
  }

  /** Adds a connector; false when the name is taken. */
  async insert(name: string, docJson: string, sealedSecret: string, nowMs: number): Promise<boolean> {
    const inserted = await this.db
      .insertInto('oidc_connectors')
      .values({ name, doc_json: docJson, client_secret: sealedSecret, created_ms: nowMs, updated_ms: nowMs })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Replaces a connector's document, and its secret when one is given; false when there is none. */
  async replace(
    name: string,
    docJson: string,
    sealedSecret: string | undefined,
    nowMs: number,
  ): Promise<boolean> {
    const updated = await this.db
      .updateTable('oidc_connectors')
      .set({
        doc_json: docJson,
        updated_ms: nowMs,
        ...(sealedSecret === undefined ? {} : { client_secret: sealedSecret }),
      })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  async delete(name: string): Promise<boolean> {
    const deleted = await this.db.deleteFrom('oidc_connectors').where('name', '=', name).executeTakeFirst();
    return Number(deleted.numDeletedRows) > 0;
  }
}
