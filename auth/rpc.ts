// Binds async handlers to grpc-js: every failure leaves as a KeyportError status with its detail, and an
// unexpected exception becomes INTERNAL without leaking its text to the caller.
import { TLSSocket } from 'node:tls';
import type { ServerUnaryCall, sendUnaryData, UntypedHandleCall } from '@grpc/grpc-js';
import { KeyportError, toStatusObject } from '../proto/errors';
import { checkRequestBounds } from './request-bounds';
import type { ServiceDefinition, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';

export interface CallContext {
  /** The caller's address, for the audit log. */
  clientAddr: string;
  /** The DER client certificate presented over mTLS, when there was one. */
  peerCertificateDer: Buffer | undefined;
}

export type Handler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

function callContext(call: ServerUnaryCall<unknown, unknown>): CallContext {
  const peer = call.getAuthContext()?.sslPeerCertificate ?? unverifiedPeerCertificate(call);
  const der =
    peer && 'raw' in peer && Buffer.isBuffer(peer.raw) && peer.raw.length > 0 ? peer.raw : undefined;
  return { clientAddr: call.getPeer(), peerCertificateDer: der };
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
 * and `unary` answers it with INVALID_ARGUMENT.
 */
export function tolerantDefinition<D extends ServiceDefinition>(definition: D): D {
  return Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
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
