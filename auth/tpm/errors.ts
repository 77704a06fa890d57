// The two errors of auth/tpm/, both KeyportErrors so the RPC edge sends them as they are:
//
// - TpmFormatError (INVALID_ARGUMENT, with the caller's fieldPath, e.g. 'ak_public'): the bytes are not
//   a well-formed TPM structure (short, over-long, trailing bytes, a size over its maximum, an algorithm
//   these parsers do not know). Every parser throws this and nothing else on any input.
// - TpmRefusal (ACCESS_DENIED, with a `reason` callers switch on): the bytes are well-formed but the
//   verification failed or the key is not acceptable. The reasons are listed in TpmRefusalReason.
import { KeyportError } from '../../proto/errors';

export class TpmFormatError extends KeyportError {
  constructor(fieldPath: string, detail: string) {
    super('INVALID_ARGUMENT', `${fieldPath} is not a valid TPM structure: ${detail}`, { fieldPath });
    this.name = 'TpmFormatError';
  }
}

export type TpmRefusalReason =
  /** The AK is not a restricted signing key (restricted+sign, no decrypt, fixedTPM, fixedParent, sensitiveDataOrigin). */
  | 'not-restricted-signing-key'
  /** The key's type, curve, size, scheme or hash is not one Keyport accepts. */
  | 'unsupported-algorithm'
  /** TPMS_ATTEST.magic is not TPM_GENERATED_VALUE (0xff544347): the TPM did not produce it. */
  | 'bad-magic'
  /** TPMS_ATTEST.type is not TPM_ST_ATTEST_QUOTE. */
  | 'not-a-quote'
  /** The signature does not verify with the AK (or its scheme/hash differs from the AK's). */
  | 'bad-signature'
  /** TPMS_ATTEST.extraData differs from the nonce the server issued. */
  | 'nonce-mismatch'
  /** The EK certificate does not chain to an allowed CA, is outside its validity, or has no RSA key. */
  | 'ek-certificate-untrusted';

export class TpmRefusal extends KeyportError {
  constructor(
    readonly reason: TpmRefusalReason,
    message: string,
    fieldPath?: string,
  ) {
    super('ACCESS_DENIED', message, fieldPath === undefined ? {} : { fieldPath });
    this.name = 'TpmRefusal';
  }
}
