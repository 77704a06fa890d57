// Storage for SSO logins in flight (auth/sso/) and the mark of SSO users. Every spend is one conditional
// UPDATE … RETURNING, so a state or a one-time code is spent once however many replicas race for it
// (conformance-tested on SQLite and PostgreSQL).
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { Database, SsoRequestsTable } from './schema';

export type SsoRequestRow = Selectable<SsoRequestsTable>;
export type NewSsoRequest = Omit<
  Insertable<SsoRequestsTable>,
  'stage' | 'code_hash' | 'code_expires_ms' | 'user' | 'identity_json' | 'kind' | 'browser_binding_hash'
> & { kind?: 'cli' | 'web'; browser_binding_hash?: string | null };

export class SsoRequestStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async insert(request: NewSsoRequest): Promise<void> {
    await this.db
      .insertInto('sso_requests')
      .values({
        ...request,
        kind: request.kind ?? 'cli',
        browser_binding_hash: request.browser_binding_hash ?? null,
        stage: 'started',
        code_hash: null,
        code_expires_ms: null,
        user: null,
        identity_json: null,
      })
      .execute();
  }

  get(id: string): Promise<SsoRequestRow | undefined> {
    return this.db.selectFrom('sso_requests').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findByStateHash(stateHash: string): Promise<SsoRequestRow | undefined> {
    return this.db
      .selectFrom('sso_requests')
      .selectAll()
      .where('state_hash', '=', stateHash)
      .executeTakeFirst();
  }

  /**
   * The IdP's callback spends the request its state names, once, before it expires; a web request only in
   * the browser that started it (`browserBindingHash`, from its cookie), so another browser spends nothing.
   */
  spendState(
    stateHash: string,
    nowMs: number,
    browserBindingHash?: string,
  ): Promise<SsoRequestRow | undefined> {
    return this.db
      .updateTable('sso_requests')
      .set({ stage: 'called-back' })
      .where('state_hash', '=', stateHash)
      .where('stage', '=', 'started')
      .where('expires_ms', '>', nowMs)
      .where((eb) =>
        eb.or([eb('kind', '=', 'cli'), eb('browser_binding_hash', '=', browserBindingHash ?? '')]),
      )
      .returningAll()
      .executeTakeFirst();
  }

  /** The callback's outcome: a one-time code (its hash) for the identity it established. */
  async authorize(
    id: string,
    grant: { codeHash: string; codeExpiresMs: number; user: string; identityJson: string },
  ): Promise<boolean> {
    const updated = await this.db
      .updateTable('sso_requests')
      .set({
        stage: 'authorized',
        code_hash: grant.codeHash,
        code_expires_ms: grant.codeExpiresMs,
        user: grant.user,
        identity_json: grant.identityJson,
      })
      .where('id', '=', id)
      .where('kind', '=', 'cli')
      .where('stage', '=', 'called-back')
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /** A web request's outcome: the browser was signed in as `user` (a web session made), once. */
  async signedIn(id: string, grant: { user: string; identityJson: string }): Promise<boolean> {
    const updated = await this.db
      .updateTable('sso_requests')
      .set({ stage: 'signed-in', user: grant.user, identity_json: grant.identityJson })
      .where('id', '=', id)
      .where('kind', '=', 'web')
      .where('stage', '=', 'called-back')
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /** The authorized request a code names, unspent and unexpired (read before the key's proof is checked). */
  findAuthorized(id: string, codeHash: string, nowMs: number): Promise<SsoRequestRow | undefined> {
    return this.db
      .selectFrom('sso_requests')
      .selectAll()
      .where('id', '=', id)
      .where('code_hash', '=', codeHash)
      .where('stage', '=', 'authorized')
      .where('code_expires_ms', '>', nowMs)
      .executeTakeFirst();
  }

  /** Spends the one-time code, once. */
  async redeem(id: string, codeHash: string, nowMs: number): Promise<boolean> {
    const updated = await this.db
      .updateTable('sso_requests')
      .set({ stage: 'redeemed' })
      .where('id', '=', id)
      .where('code_hash', '=', codeHash)
      .where('stage', '=', 'authorized')
      .where('code_expires_ms', '>', nowMs)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) === 1;
  }

  /** Requests kept a day past their expiry (a late callback hears "expired"), then dropped. */
  async prune(beforeMs: number): Promise<void> {
    await this.db.deleteFrom('sso_requests').where('expires_ms', '<', beforeMs).execute();
  }

  /**
   * Creates or updates the SSO user `name` of `connector` and `subject`: false, and nothing written, when
   * the name is a local user's, another connector's, or another subject's (never merged).
   */
  async upsertSsoUser(
    name: string,
    specJson: string,
    sso: { connector: string; subject: string },
    nowMs: number,
  ): Promise<boolean> {
    const written = await this.db
      .insertInto('users')
      .values({
        name,
        spec_json: specJson,
        created_ms: nowMs,
        updated_ms: nowMs,
        password_hash: null,
        sso_connector: sso.connector,
        sso_subject: sso.subject,
      })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ spec_json: specJson, updated_ms: nowMs })
          .where('users.sso_connector', '=', sso.connector)
          .where('users.sso_subject', '=', sso.subject),
      )
      .executeTakeFirst();
    return Number(written.numInsertedOrUpdatedRows ?? 0) === 1;
  }
}
