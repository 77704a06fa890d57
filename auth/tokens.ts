// One-time tokens (signup today; device enrollment next): 256 random bits shown once, stored only as their
// SHA-256, spent atomically, expiring. Their refusals live here so every service words them alike.
import { createHash, randomBytes } from 'node:crypto';
import { KeyportError } from '../proto/errors';
import type { SignupTokenRow, Store } from './storage/store';

/** A new token: 32 random bytes, base64url. Shown to the admin once; only its hash is stored. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export const invalidSignupToken = () =>
  new KeyportError(
    'ACCESS_DENIED',
    'The signup token is invalid or was already used; ask an admin for a new one.',
  );

export const expiredSignupToken = () =>
  new KeyportError('EXPIRED', 'The signup token has expired; ask an admin for a new one.');

/** The signup token's row when it can still be spent; otherwise the refusal a person should see. */
export async function usableSignupToken(
  store: Store,
  tokenHash: string,
  nowMs: number,
): Promise<SignupTokenRow> {
  const row = await store.getSignupToken(tokenHash);
  if (!row || row.used) throw invalidSignupToken();
  if (row.expires_ms <= nowMs) throw expiredSignupToken();
  return row;
}
