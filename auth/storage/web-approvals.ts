// Storage for the web-session approval ceremony (auth/web-approval.ts decides; this file only reads and
// writes). Each token is spent by one conditional `UPDATE … WHERE … used = 0 … RETURNING`, atomic across
// connections and replicas on both databases: the web token once, by the device that approves, and the
// confirmation token once, by the browser session that asked.
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { Database, WebSessionApprovalsTable } from './schema';

export type WebApprovalRow = Selectable<WebSessionApprovalsTable>;
export type NewWebApproval = Insertable<WebSessionApprovalsTable>;

/** What spending the web token leaves for the confirmation. */
export interface ApprovalGrant {
  confirmHash: string;
  confirmExpiresMs: number;
  deviceId: string;
  assetTag: string;
}

export class WebApprovalStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  async insert(row: NewWebApproval): Promise<void> {
    await this.db.insertInto('web_session_approvals').values(row).execute();
  }

  get(id: string): Promise<WebApprovalRow | undefined> {
    return this.db.selectFrom('web_session_approvals').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Spends the web token of request `id` (unspent, unexpired, hashing to `tokenHash`) and records the device
   * and the confirmation token's hash, in one statement: the web session's id for the one call that spent
   * it, undefined for every other.
   */
  async spendToken(
    id: string,
    tokenHash: string,
    nowMs: number,
    grant: ApprovalGrant,
  ): Promise<string | undefined> {
    const row = await this.db
      .updateTable('web_session_approvals')
      .set({
        token_used: 1,
        confirm_hash: grant.confirmHash,
        confirm_expires_ms: grant.confirmExpiresMs,
        device_id: grant.deviceId,
        device_asset_tag: grant.assetTag,
      })
      .where('id', '=', id)
      .where('token_hash', '=', tokenHash)
      .where('token_used', '=', 0)
      .where('expires_ms', '>', nowMs)
      .returning('web_session_id')
      .executeTakeFirst();
    return row?.web_session_id;
  }

  /**
   * Spends the confirmation token of request `id` for web session `webSessionId` (unspent, unexpired,
   * hashing to `confirmHash`): the approving device for the one call that spent it. Another session's
   * call spends nothing.
   */
  async spendConfirmation(
    id: string,
    confirmHash: string,
    webSessionId: string,
    nowMs: number,
  ): Promise<{ deviceId: string; assetTag: string } | undefined> {
    const row = await this.db
      .updateTable('web_session_approvals')
      .set({ confirm_used: 1 })
      .where('id', '=', id)
      .where('confirm_hash', '=', confirmHash)
      .where('web_session_id', '=', webSessionId)
      .where('confirm_used', '=', 0)
      .where('confirm_expires_ms', '>', nowMs)
      .returning(['device_id', 'device_asset_tag'])
      .executeTakeFirst();
    if (!row?.device_id) return undefined;
    return { deviceId: row.device_id, assetTag: row.device_asset_tag ?? '' };
  }

  /** Drops requests whose tokens can no longer be spent. */
  async prune(nowMs: number): Promise<void> {
    await this.db
      .deleteFrom('web_session_approvals')
      .where('expires_ms', '<=', nowMs)
      .where((eb) => eb.or([eb('confirm_expires_ms', 'is', null), eb('confirm_expires_ms', '<=', nowMs)]))
      .execute();
  }
}
