// Passwords are stored as argon2id PHC strings (@node-rs/argon2), never in any other form.
import { hash, verify } from '@node-rs/argon2';
import type { Algorithm } from '@node-rs/argon2';
import { KeyportError } from '../proto/errors';

export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

// OWASP's argon2id baseline (m=19 MiB, t=2, p=1).
// Algorithm is an ambient const enum (not importable as a value under verbatimModuleSyntax); 2 is Argon2id.
const ARGON2ID = 2 as Algorithm;
const options = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 };

export function checkPasswordPolicy(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The password is too short: use at least ${MIN_PASSWORD_LENGTH} characters.`,
      { fieldPath: 'password' },
    );
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new KeyportError('INVALID_ARGUMENT', `The password is too long (at most ${MAX_PASSWORD_LENGTH}).`, {
      fieldPath: 'password',
    });
  }
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, options);
}

/** A dummy hash to verify against when the user does not exist, so timing does not reveal that. */
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(storedHash: string | null, password: string): Promise<boolean> {
  if (!storedHash) {
    dummyHash ??= hashPassword('keyport-timing-equaliser');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(storedHash, password).catch(() => false);
}
