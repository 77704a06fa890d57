// The column lists the compiled statements take their arguments in (store.ts, login.ts), with each
// column's PostgreSQL type for the statements that pass values through a SELECT (INSERT … SELECT needs
// typed parameters: PostgreSQL infers a parameter's type from the column only in a VALUES list).
import type { AuditEventsTable, ChallengesTable, UsersTable } from './schema';

/** The columns of a challenge, in the order the compiled inserts take them. */
export const CHALLENGE_COLUMNS = [
  'id',
  'user',
  'scope',
  'payload_json',
  'created_ms',
  'expires_ms',
  'used',
] as const satisfies readonly (keyof ChallengesTable)[];

export const CHALLENGE_PG_TYPES: Record<(typeof CHALLENGE_COLUMNS)[number], string> = {
  id: 'text',
  user: 'text',
  scope: 'text',
  payload_json: 'text',
  created_ms: 'bigint',
  expires_ms: 'bigint',
  used: 'integer',
};

/** The columns of an audit event (its id is generated). */
export const AUDIT_COLUMNS = [
  'time_ms',
  'type',
  'actor',
  'client_addr',
  'success',
  'message',
  'fields_json',
] as const satisfies readonly Exclude<keyof AuditEventsTable, 'id'>[];

export const AUDIT_PG_TYPES: Record<(typeof AUDIT_COLUMNS)[number], string> = {
  time_ms: 'bigint',
  type: 'text',
  actor: 'text',
  client_addr: 'text',
  success: 'integer',
  message: 'text',
  fields_json: 'text',
};

/** Every column of `users`: a column added later and not listed here fails the type check below. */
export const OWNER_COLUMNS = [
  'name',
  'spec_json',
  'password_hash',
  'created_ms',
  'updated_ms',
  'locked_until_ms',
  'lock_reason',
  'webauthn_user_handle',
  'sso_connector',
  'sso_subject',
] as const satisfies readonly (keyof UsersTable)[];
type UnlistedUserColumn = Exclude<keyof UsersTable, (typeof OWNER_COLUMNS)[number]>;
const everyUserColumnListed: [UnlistedUserColumn] extends [never] ? true : UnlistedUserColumn = true;
void everyUserColumnListed;

/** A row of `columns` whose values are the arguments from `offset` on. */
export function rowOf<C extends string>(
  columns: readonly C[],
  args: unknown[],
  offset = 0,
): Record<C, never> {
  return Object.fromEntries(columns.map((column, i) => [column, args[offset + i]])) as Record<C, never>;
}
