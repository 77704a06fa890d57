// The audit log: every security-relevant outcome, with time, actor and the client's address.
import type { AuditType } from '../proto/audit-types';
import type { NewAuditEvent, Store } from './storage/store';

export type { AuditType } from '../proto/audit-types';

/**
 * Who acted, as an authenticated call knows them: an SSO user's rows name the connector and the IdP's
 * subject too (seed "Harden your Cluster Against IdP Compromises": each refusal of a compromised identity
 * must say which IdP vouched for whom).
 */
export interface AuditActor {
  user: string;
  sso?: { connector: string; subject: string };
}

/** The audit fields that name an SSO user's connector and IdP subject; none for a local user. */
export function ssoAuditFields(actor: Pick<AuditActor, 'sso'>): Record<string, string> {
  return actor.sso ? { connector: actor.sso.connector, idp_subject: actor.sso.subject } : {};
}

export interface AuditEntry {
  type: AuditType;
  /** A name (a node, `system`, a user not signed in), or the signed-in identity. */
  actor: string | AuditActor;
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
    const actor = typeof entry.actor === 'string' ? { user: entry.actor } : entry.actor;
    const fields = { ...ssoAuditFields(actor), ...entry.fields };
    return {
      time_ms: timeMs,
      type: entry.type,
      actor: actor.user,
      client_addr: entry.clientAddr,
      success: entry.success ? 1 : 0,
      message: entry.message,
      fields_json: JSON.stringify(fields),
    };
  }
}
