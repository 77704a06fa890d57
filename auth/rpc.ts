// Binds async handlers to grpc-js: every failure leaves as a KeyportError status with its detail, and an
// unexpected exception becomes INTERNAL without leaking its text to the caller.
import { TLSSocket } from 'node:tls';
import type { ServerUnaryCall, sendUnaryData, UntypedHandleCall } from '@grpc/grpc-js';
import { ADMIN_MFA_MAX_BYTES, ADMIN_MFA_METADATA_KEY } from '../proto/admin-mfa';
import { KeyportError, toStatusObject } from '../proto/errors';
import {
  digestOf,
  POP_CERTIFICATE_METADATA_KEY,
  POP_MAX_LENGTH,
  POP_METADATA_KEY,
  PopRefused,
} from '../proto/pop';
import { checkRequestBounds } from './request-bounds';
import type { ServiceDefinition, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';

/** The largest session certificate a call may carry in its metadata (Keyport's are about 1 KiB). */
export const MAX_METADATA_CERTIFICATE_BYTES = 8 * 1024;

export interface CallContext {
  /** The caller's address, for the audit log. */
  clientAddr: string;
  /** The DER client certificate presented over mTLS, when there was one. */
  peerCertificateDer: Buffer | undefined;
  /** The call's method path, as a proof of possession names it ("/keyport.v1.UserService/Ping"). */
  method: string;
  /**
   * base64url SHA-256 of the request's bytes as received (proto/pop.ts digestOf), hashed at the first
   * ask: only a call that carries a proof of possession needs it. Undefined for a request that did not
   * come through `tolerantDefinition`.
   */
  requestDigest(): string | undefined;
  /** The session certificate's DER from metadata `keyport-cert-bin` (a key that cannot do mTLS). */
  metadataCertificateDer: Buffer | undefined;
  /** The proof of possession from metadata `keyport-pop`. */
  proof: string | undefined;
  /** The serialized MFA answer an admin write carries (metadata `keyport-admin-mfa-bin`; auth/admin-mfa.ts). */
  adminMfaResponse: Buffer | undefined;
}

export type Handler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

/** Each decoded request's bytes as received, for the digest a proof of possession signs. */
const receivedBytes = new WeakMap<object, Buffer>();

function callContext(call: ServerUnaryCall<unknown, unknown>): CallContext {
  const peer = call.getAuthContext()?.sslPeerCertificate ?? unverifiedPeerCertificate(call);
  const der =
    peer && 'raw' in peer && Buffer.isBuffer(peer.raw) && peer.raw.length > 0 ? peer.raw : undefined;
  const request = call.request;
  const bytes = typeof request === 'object' && request !== null ? receivedBytes.get(request) : undefined;
  let digest: string | undefined;
  return {
    clientAddr: call.getPeer(),
    peerCertificateDer: der,
    method: call.getPath(),
    requestDigest: () => (digest ??= bytes && digestOf(bytes)),
    ...possessionMetadata(call),
    adminMfaResponse: adminMfaMetadata(call),
  };
}

/** The MFA answer for an admin action, at most one value within its bound, refused before it is decoded. */
function adminMfaMetadata(call: ServerUnaryCall<unknown, unknown>): Buffer | undefined {
  const values = call.metadata.get(ADMIN_MFA_METADATA_KEY);
  const [value] = values;
  if (value === undefined) return undefined;
  if (values.length > 1 || !Buffer.isBuffer(value) || value.length > ADMIN_MFA_MAX_BYTES) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The call's MFA answer (metadata ${ADMIN_MFA_METADATA_KEY}) must be one message of at most ${ADMIN_MFA_MAX_BYTES} bytes.`,
    );
  }
  return value.length > 0 ? value : undefined;
}

/**
 * The session certificate and proof a call carries in its metadata, each at most one value within its
 * bound: anything else is refused before it is parsed, hashed or verified.
 */
function possessionMetadata(
  call: ServerUnaryCall<unknown, unknown>,
): Pick<CallContext, 'metadataCertificateDer' | 'proof'> {
  const certificates = call.metadata.get(POP_CERTIFICATE_METADATA_KEY);
  const proofs = call.metadata.get(POP_METADATA_KEY);
  const [certificate] = certificates;
  const [proof] = proofs;
  if (
    certificates.length > 1 ||
    (certificate !== undefined &&
      (!Buffer.isBuffer(certificate) ||
        certificate.length === 0 ||
        certificate.length > MAX_METADATA_CERTIFICATE_BYTES))
  ) {
    throw new KeyportError(
      'UNAUTHENTICATED',
      `The call's session certificate (metadata ${POP_CERTIFICATE_METADATA_KEY}) must be one DER certificate of at most ${MAX_METADATA_CERTIFICATE_BYTES} bytes.`,
    );
  }
  if (
    proofs.length > 1 ||
    (proof !== undefined && (typeof proof !== 'string' || proof.length > POP_MAX_LENGTH))
  ) {
    throw new PopRefused('malformed');
  }
  return { metadataCertificateDer: certificate, proof: proof === '' ? undefined : proof };
}

/**
 * grpc-js's auth context carries the client certificate only when OpenSSL verified it, so an expired
 * certificate (or one from another CA) on a new connection would look like no certificate at all, and the
 * caller would hear "needs a signed-in client" instead of CERTIFICATE_EXPIRED. The TLS handshake has still
 * proved the client holds the certificate's key; identity.ts verifies the certificate itself (CA, validity,
 * usage) on every call. grpc-js exposes no public accessor for that socket, so this walks its call chain
 * (ServerUnaryCall → intercepting calls → the HTTP/2 stream); if that shape changes, the result is the
 * previous behaviour (no certificate), never a wider trust.
 */
function unverifiedPeerCertificate(call: ServerUnaryCall<unknown, unknown>): { raw?: unknown } | undefined {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && link && typeof link === 'object'; depth++) {
    const socket = (link as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket;
    if (socket instanceof TLSSocket) return socket.getPeerCertificate();
    link = (link as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** What a request that protobuf cannot decode becomes, so the handler can answer it with a typed error. */
class UndecodableRequest {
  constructor(readonly reason: string) {}
}

/**
 * The service definition with deserializers that never throw: grpc-js answers a throwing deserializer with
 * a bare INTERNAL and no keyport-error-bin, so an undecodable request becomes an UndecodableRequest here
 * and `unary` answers it with INVALID_ARGUMENT. Each decoded request keeps its bytes as received (for
 * CallContext.requestDigest).
 */
export function tolerantDefinition<D extends ServiceDefinition>(definition: D): D {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            const decoded: unknown = method.requestDeserialize(bytes);
            if (typeof decoded === 'object' && decoded !== null) receivedBytes.set(decoded, bytes);
            return decoded;
          } catch (error) {
            return new UndecodableRequest(error instanceof Error ? error.message : String(error));
          }
        },
      },
    ]),
  ) as D;
}

/** The request as the handler may see it: decoded, and every field within its bound. */
function checkedRequest<Req>(request: Req | UndecodableRequest): Req {
  if (request instanceof UndecodableRequest) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `The request is not a valid keyport/v1 message (${request.reason.slice(0, 120)}).`,
    );
  }
  checkRequestBounds(request);
  return request;
}

export function unary<Req, Res>(
  handler: Handler<Req, Res>,
  log: (error: unknown) => void,
): UntypedHandleCall {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    Promise.resolve()
      .then(() =>
        handler(checkedRequest(call.request), callContext(call as ServerUnaryCall<unknown, unknown>)),
      )
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          const keyportError =
            error instanceof KeyportError
              ? error
              : new KeyportError('INTERNAL', 'The auth service failed to handle the request; see its log.');
          if (!(error instanceof KeyportError)) log(error);
          callback(toStatusObject(keyportError) as ServiceError, null);
        },
      );
  };
}

/** One handler per method of a generated service definition, typed by its request and response. */
export type HandlersOf<D extends ServiceDefinition> = {
  [K in keyof D]: Handler<ReturnType<D[K]['requestDeserialize']>, Parameters<D[K]['responseSerialize']>[0]>;
};

/** Builds a grpc-js implementation from a handler per method; a missing method fails type-checking. */
export function bindService<D extends ServiceDefinition>(
  _definition: D,
  handlers: HandlersOf<D>,
  log: (error: unknown) => void,
): UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      unary(handler as Handler<unknown, unknown>, log),
    ]),
  );
}
