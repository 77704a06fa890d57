// The error contract of keyport/v1, shared by the server (encode) and clients (decode): every failed call
// carries an ErrorDetail in the trailing metadata key "keyport-error-bin", next to a matching gRPC status.
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError, StatusObject } from '@grpc/grpc-js';
import { ErrorCode, ErrorDetail } from './gen/keyport/v1/errors';

export const ERROR_METADATA_KEY = 'keyport-error-bin';

export const errorCodes = [
  'INTERNAL',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'ACCESS_DENIED',
  'UNAUTHENTICATED',
  'MFA_REQUIRED',
  'MFA_FAILED',
  'LOCKED',
  'EXPIRED',
  'PRIVATE_KEY_POLICY_NOT_MET',
  'DEVICE_TRUST_REQUIRED',
  'PASSWORDLESS_DISABLED',
  'PRECONDITION_FAILED',
  'CERTIFICATE_EXPIRED',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'CA_PIN_MISMATCH',
  'CANCELLED',
] as const;
export type KeyportErrorCode = (typeof errorCodes)[number];

export interface KeyportErrorFields {
  fieldPath?: string;
  lockedUntilMs?: number;
  resolvableByRelogin?: boolean;
  /** RESOURCE_EXHAUSTED by a rate limit: wait this long before the next try. */
  retryAfterMs?: number;
  /** PRIVATE_KEY_POLICY_NOT_MET: the policy the session key must meet, e.g. "hardware_key_touch". */
  privateKeyPolicy?: string;
}

/** An error with a stable code; the message tells the person what happened and what to do next. */
export class KeyportError extends Error {
  constructor(
    readonly code: KeyportErrorCode,
    message: string,
    readonly fields: KeyportErrorFields = {},
  ) {
    super(message);
    this.name = 'KeyportError';
  }
}

const grpcStatusOf: Record<KeyportErrorCode, GrpcStatus> = {
  INTERNAL: GrpcStatus.INTERNAL,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  ACCESS_DENIED: GrpcStatus.PERMISSION_DENIED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  MFA_REQUIRED: GrpcStatus.PERMISSION_DENIED,
  MFA_FAILED: GrpcStatus.PERMISSION_DENIED,
  LOCKED: GrpcStatus.PERMISSION_DENIED,
  EXPIRED: GrpcStatus.FAILED_PRECONDITION,
  PRIVATE_KEY_POLICY_NOT_MET: GrpcStatus.PERMISSION_DENIED,
  DEVICE_TRUST_REQUIRED: GrpcStatus.PERMISSION_DENIED,
  PASSWORDLESS_DISABLED: GrpcStatus.FAILED_PRECONDITION,
  PRECONDITION_FAILED: GrpcStatus.FAILED_PRECONDITION,
  CERTIFICATE_EXPIRED: GrpcStatus.UNAUTHENTICATED,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  CA_PIN_MISMATCH: GrpcStatus.UNAVAILABLE,
  CANCELLED: GrpcStatus.CANCELLED,
};

export function toStatusObject(error: KeyportError): Partial<StatusObject> {
  const metadata = new Metadata();
  const detail = ErrorDetail.encode({
    code: ErrorCode[`ERROR_CODE_${error.code}`],
    message: error.message,
    fieldPath: error.fields.fieldPath ?? '',
    lockedUntilMs: error.fields.lockedUntilMs ?? 0,
    resolvableByRelogin: error.fields.resolvableByRelogin ?? false,
    retryAfterMs: error.fields.retryAfterMs ?? 0,
    privateKeyPolicy: error.fields.privateKeyPolicy ?? '',
  }).finish();
  metadata.set(ERROR_METADATA_KEY, Buffer.from(detail));
  return { code: grpcStatusOf[error.code], details: error.message, metadata };
}

/** Turns a failed call into a KeyportError; a transport failure without a detail becomes UNAVAILABLE. */
export function fromServiceError(error: ServiceError): KeyportError {
  const raw = error.metadata?.get(ERROR_METADATA_KEY)[0];
  if (raw instanceof Buffer) {
    try {
      const detail = ErrorDetail.decode(raw);
      const name = ErrorCode[detail.code]?.replace(/^ERROR_CODE_/, '');
      if (name && (errorCodes as readonly string[]).includes(name)) {
        return new KeyportError(name as KeyportErrorCode, detail.message, {
          ...(detail.fieldPath ? { fieldPath: detail.fieldPath } : {}),
          ...(detail.lockedUntilMs ? { lockedUntilMs: detail.lockedUntilMs } : {}),
          ...(detail.resolvableByRelogin ? { resolvableByRelogin: true } : {}),
          ...(detail.retryAfterMs ? { retryAfterMs: detail.retryAfterMs } : {}),
          ...(detail.privateKeyPolicy ? { privateKeyPolicy: detail.privateKeyPolicy } : {}),
        });
      }
    } catch {
      // A garbled detail falls through to the status-based error below.
    }
  }
  const text = error.details || error.message;
  if (error.code === GrpcStatus.UNAVAILABLE || error.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return new KeyportError('UNAVAILABLE', `The cluster is unreachable: ${text}`);
  }
  // Refusals by the gRPC layer itself, before a handler ran, carry no detail: keep what their status says.
  if (error.code === GrpcStatus.RESOURCE_EXHAUSTED) {
    return new KeyportError(
      'RESOURCE_EXHAUSTED',
      `The cluster refused the request as too large or too many: ${text}`,
    );
  }
  if (error.code === GrpcStatus.INVALID_ARGUMENT) {
    return new KeyportError('INVALID_ARGUMENT', `The cluster could not read the request: ${text}`);
  }
  if (error.code === GrpcStatus.CANCELLED)
    return new KeyportError('CANCELLED', `The call was cancelled: ${text}`);
  return new KeyportError('INTERNAL', text);
}
