// Binds async handlers to grpc-js: every failure leaves as a KeyportError status with its detail, and an
// unexpected exception becomes INTERNAL without leaking its text to the caller.
import type { ServerUnaryCall, sendUnaryData, UntypedHandleCall } from '@grpc/grpc-js';
import { KeyportError, toStatusObject } from '../proto/errors';
import type { ServiceDefinition, ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';

export interface CallContext {
  /** The caller's address, for the audit log. */
  clientAddr: string;
  /** The DER client certificate presented over mTLS, when there was one. */
  peerCertificateDer: Buffer | undefined;
}

export type Handler<Req, Res> = (request: Req, context: CallContext) => Promise<Res>;

function callContext(call: ServerUnaryCall<unknown, unknown>): CallContext {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  const der =
    peer && 'raw' in peer && Buffer.isBuffer(peer.raw) && peer.raw.length > 0 ? peer.raw : undefined;
  return { clientAddr: call.getPeer(), peerCertificateDer: der };
}

export function unary<Req, Res>(
  handler: Handler<Req, Res>,
  log: (error: unknown) => void,
): UntypedHandleCall {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    handler(call.request, callContext(call as ServerUnaryCall<unknown, unknown>)).then(
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
