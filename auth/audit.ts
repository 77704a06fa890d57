// The audit log: every security-relevant outcome, with time, actor and the client's address.
import type { Store } from './storage/store';

export type AuditType =
  | 'user.login'
  | 'user.signup'
  | 'user.create'
  | 'user.delete'
  | 'user.update'
  | 'user.lock'
  | 'user.unlock'
  /** One client address reached the failed sign-in limit for one user name, and is locked out for it. */
  | 'user.lockout'
  /** A client address or a user name went over its rate limit (recorded once per window). */
  | 'rate.limited'
  | 'cert.issued'
  | 'resource.create'
  | 'resource.update'
  | 'resource.delete'
  | 'mfa.add'
  | 'mfa.delete'
  /** A security key's sign counter did not rise: possibly a cloned key. The assertion is refused. */
  | 'mfa.counter_regression'
  | 'auth.denied';

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
    await store.appendAudit({
      time_ms: this.now(),
      type: entry.type,
      actor: entry.actor,
      client_addr: entry.clientAddr,
      success: entry.success ? 1 : 0,
      message: entry.message,
      fields_json: JSON.stringify(entry.fields ?? {}),
    });
  }
}
