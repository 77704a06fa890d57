// The audit log: every security-relevant outcome, with time, actor and the client's address.
import type { AuditType } from '../proto/audit-types';
import type { NewAuditEvent, Store } from './storage/store';

export type { AuditType } from '../proto/audit-types';

export interface AuditEntry {
  type: AuditType;
  actor: string;
  clientAddr: string;
  success: boolean;
  message: string;
  fields?: Record<string, unknown>;
}

export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  async record(entry: AuditEntry, store: Store = this.store): Promise<void> {
    await store.appendAudit(this.row(entry, this.now()));
  }

  /** Several events of one moment (a login and the certificates it issued), written in one statement. */
  async recordAll(entries: AuditEntry[], store: Store = this.store): Promise<void> {
    await store.appendAudit(this.rowsOf(entries));
  }

  /** The rows of several events of this moment, for a caller that writes them with another write. */
  rowsOf(entries: AuditEntry[]): NewAuditEvent[] {
    const now = this.now();
    return entries.map((entry) => this.row(entry, now));
  }

  private row(entry: AuditEntry, timeMs: number) {
    return {
      time_ms: timeMs,
      type: entry.type,
      actor: entry.actor,
      client_addr: entry.clientAddr,
      success: entry.success ? 1 : 0,
      message: entry.message,
      fields_json: JSON.stringify(entry.fields ?? {}),
    };
  }
}
