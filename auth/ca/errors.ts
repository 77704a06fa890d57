export type CaErrorCode = 'UNAUTHENTICATED' | 'CERTIFICATE_EXPIRED' | 'INVALID_ARGUMENT' | 'INTERNAL';

/** Every failure of the CA module. Callers branch on `code`, never on the message text. */
export class CaError extends Error {
  override readonly name: string = 'CaError';

  constructor(
    readonly code: CaErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A CA key file (or the directory holding it) that other users could read or replace. The service refuses
 * to start rather than sign with a key that may already be in someone else's hands.
 */
export class InsecureCaFileError extends CaError {
  override readonly name: string = 'InsecureCaFileError';

  constructor(
    readonly path: string,
    readonly mode: number,
  ) {
    super(
      'INTERNAL',
      `${path} has mode 0${(mode & 0o777).toString(8)}; CA material must not be accessible to group or others ` +
        `(fix with: chmod go-rwx '${path}')`,
    );
  }
}
