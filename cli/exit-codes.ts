// Exit codes of the keyport command (documented in the README).
import type { KeyportErrorCode } from '../proto/errors';

export const EXIT = {
  ok: 0,
  failure: 1,
  invalidInput: 2,
  accessDenied: 3,
  mfa: 4,
  locked: 5,
  expired: 6,
  unreachable: 7,
  keychain: 8,
  notFound: 9,
  cancelled: 130,
} as const;

export function exitCodeOf(code: KeyportErrorCode | string): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
      return EXIT.invalidInput;
    case 'ACCESS_DENIED':
    case 'UNAUTHENTICATED':
      return EXIT.accessDenied;
    case 'MFA_REQUIRED':
    case 'MFA_FAILED':
      return EXIT.mfa;
    case 'LOCKED':
      return EXIT.locked;
    case 'EXPIRED':
    case 'CERTIFICATE_EXPIRED':
      return EXIT.expired;
    case 'UNAVAILABLE':
    case 'CA_PIN_MISMATCH':
      return EXIT.unreachable;
    case 'KEYCHAIN_UNAVAILABLE':
    case 'KEYCHAIN_LOCKED':
    case 'KEY_NOT_FOUND':
    case 'KEYSTORE_IO':
      return EXIT.keychain;
    case 'NOT_FOUND':
    case 'ALREADY_EXISTS':
      return EXIT.notFound;
    case 'CANCELLED':
      return EXIT.cancelled;
    default:
      return EXIT.failure;
  }
}
