// Storage for device trust: the device inventory and enrollment tokens. Each method is one statement or
// one transaction. Enrollment binds a credential only to a device still not enrolled (a conditional
// UPDATE), and a token is spent with `UPDATE … WHERE used = 0 RETURNING`, so two racing enrollments
// cannot both win, here or across replicas.
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { Database, TrustedDevicesTable } from './schema';

export type DeviceRow = Selectable<TrustedDevicesTable>;

export interface EnrolledCredential {
  credentialId: string;
  akPublic: string;
  ekFingerprint: string;
  ekCertificate: string | null;
  owner: string;
}

export class DeviceStore {
  constructor(private readonly db: Kysely<Database> | Transaction<Database>) {}

  /** Inserts a device; false when that (asset tag, OS) is already in the inventory. */
  async insert(row: Insertable<TrustedDevicesTable>): Promise<boolean> {
    const inserted = await this.db
      .insertInto('trusted_devices')
      .values(row)
      .onConflict((oc) => oc.columns(['asset_tag', 'os_type']).doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  list(): Promise<DeviceRow[]> {
    return this.db
      .selectFrom('trusted_devices')
      .selectAll()
      .orderBy('asset_tag')
      .orderBy('os_type')
      .execute();
  }

  get(id: string): Promise<DeviceRow | undefined> {
    return this.db.selectFrom('trusted_devices').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Devices with this asset tag (one per OS at most). */
  byAssetTag(assetTag: string): Promise<DeviceRow[]> {
    return this.db
      .selectFrom('trusted_devices')
      .selectAll()
      .where('asset_tag', '=', assetTag)
      .orderBy('os_type')
      .execute();
  }

  byCredential(credentialId: string): Promise<DeviceRow | undefined> {
    return this.db
      .selectFrom('trusted_devices')
      .selectAll()
      .where('credential_id', '=', credentialId)
      .executeTakeFirst();
  }

  /** Removes the device and its tokens. */
  async delete(id: string): Promise<boolean> {
    return this.transaction(async (tx) => {
      await tx.db.deleteFrom('device_enroll_tokens').where('device_id', '=', id).execute();
      const result = await tx.db.deleteFrom('trusted_devices').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    });
  }

  async setLock(id: string, locked: boolean, reason: string | null, nowMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('trusted_devices')
      .set({ locked: locked ? 1 : 0, lock_reason: locked ? reason : null, updated_ms: nowMs })
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Binds a credential to a device that is not enrolled yet. False when it was enrolled meanwhile (or
   * deleted): the first enrollment wins.
   */
  async enroll(id: string, credential: EnrolledCredential, nowMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('trusted_devices')
      .set({
        enroll_status: 'enrolled',
        owner: credential.owner,
        credential_id: credential.credentialId,
        ak_public: credential.akPublic,
        ek_fingerprint: credential.ekFingerprint,
        ek_certificate: credential.ekCertificate,
        enrolled_ms: nowMs,
        updated_ms: nowMs,
      })
      .where('id', '=', id)
      .where('enroll_status', '=', 'not_enrolled')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async insertToken(tokenHash: string, deviceId: string, nowMs: number, expiresMs: number): Promise<void> {
    await this.db
      .insertInto('device_enroll_tokens')
      .values({
        token_hash: tokenHash,
        device_id: deviceId,
        created_ms: nowMs,
        expires_ms: expiresMs,
        used: 0,
      })
      .execute();
  }

  /** Spends a token; undefined when there is none with this hash or it was spent before. */
  spendToken(tokenHash: string): Promise<{ device_id: string; expires_ms: number } | undefined> {
    return this.db
      .updateTable('device_enroll_tokens')
      .set({ used: 1 })
      .where('token_hash', '=', tokenHash)
      .where('used', '=', 0)
      .returning(['device_id', 'expires_ms'])
      .executeTakeFirst();
  }

  /** Whether an unspent token exists (for a check that must not spend it yet). */
  peekToken(tokenHash: string): Promise<{ device_id: string; expires_ms: number; used: number } | undefined> {
    return this.db
      .selectFrom('device_enroll_tokens')
      .select(['device_id', 'expires_ms', 'used'])
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
  }

  async pruneTokens(nowMs: number): Promise<void> {
    await this.db.deleteFrom('device_enroll_tokens').where('expires_ms', '<', nowMs).execute();
  }

  private async transaction<T>(work: (store: DeviceStore) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return work(this);
    return (this.db as Kysely<Database>).transaction().execute((trx) => work(new DeviceStore(trx)));
  }
}
