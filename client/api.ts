// The gRPC client of keyport/v1: TLS verified against the pinned cluster CA only, an optional client
// certificate (mTLS) for authenticated calls, promise-returning methods and KeyportError failures.
import { connectivityState, credentials, Metadata } from '@grpc/grpc-js';
import type { CallOptions, Client, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { ERROR_METADATA_KEY, fromServiceError, KeyportError } from '../proto/errors';
import { AdminServiceClient } from '../proto/gen/keyport/v1/admin';
import { AuthServiceClient } from '../proto/gen/keyport/v1/auth';
import { UserServiceClient } from '../proto/gen/keyport/v1/user';
import { DeviceTrustServiceClient } from '../proto/gen/keyport/v1/device';
import { fetchPresentedChain, formatClusterAddress, pinMismatchError } from './cluster-trust';
import type { ClusterAddress } from './cluster-trust';

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

export type Promisified<C> = {
  [K in keyof C as C[K] extends UnaryMethod<never, unknown> ? K : never]: C[K] extends UnaryMethod<
    infer Req,
    infer Res
  >
    ? (request: Req) => Promise<Res>
    : never;
};

export interface ConnectOptions {
  address: ClusterAddress;
  caPem: string;
  caPin: string;
  /** PEM private key and certificate from login; without them only AuthService calls work. */
  clientKeyPem?: string;
  clientCertPem?: string;
  deadlineMs?: number;
  /** Counts calls, so tests and benchmarks can assert the number of round trips. */
  onCall?: (method: string) => void;
}

export interface ClusterApi {
  auth: Promisified<AuthServiceClient>;
  user: Promisified<UserServiceClient>;
  admin: Promisified<AdminServiceClient>;
  devices: Promisified<DeviceTrustServiceClient>;
  /** The replica this channel talks to. */
  address: ClusterAddress;
  /**
   * Connects now, and settles once the channel is up (TLS against the pinned CA done), or fails with a
   * transport UNAVAILABLE as soon as the connection fails or `timeoutMs` passes. A CA that no longer
   * matches the pin is said loudly (CA_PIN_MISMATCH), never taken for an unreachable replica.
   */
  waitForConnection(timeoutMs: number): Promise<void>;
  close(): void;
}

const transportFailures = new WeakSet<object>();

/**
 * True for an UNAVAILABLE the transport made (connection refused or reset, no connection by the deadline),
 * not one the auth service sent (a database it cannot reach): only that one says another replica may do.
 */
export function isTransportFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && transportFailures.has(error);
}

function transportFailure(failure: KeyportError): KeyportError {
  transportFailures.add(failure);
  return failure;
}

export function connectCluster(options: ConnectOptions): ClusterApi {
  const target = formatClusterAddress(options.address);
  const channelCredentials = credentials.createSsl(
    Buffer.from(options.caPem),
    options.clientKeyPem ? Buffer.from(options.clientKeyPem) : null,
    options.clientCertPem ? Buffer.from(options.clientCertPem) : null,
  );
  const channelOptions = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
  const auth = new AuthServiceClient(target, channelCredentials, channelOptions);
  // One channel for all four services: the others reuse the first client's channel.
  const shared = { channelOverride: auth.getChannel() };
  const user = new UserServiceClient(target, channelCredentials, shared);
  const admin = new AdminServiceClient(target, channelCredentials, shared);
  const devices = new DeviceTrustServiceClient(target, channelCredentials, shared);

  /** A transport failure may be a changed CA: look at what the cluster presents and say so loudly. */
  async function explain(error: ServiceError): Promise<KeyportError> {
    const failure = fromServiceError(error);
    if (failure.code !== 'UNAVAILABLE') return failure;
    // The service's own UNAVAILABLE carries its error detail; the transport's carries none.
    if (error.metadata?.get(ERROR_METADATA_KEY).length) return failure;
    return probe(transportFailure(failure));
  }

  async function probe(failure: KeyportError, timeoutMs?: number): Promise<KeyportError> {
    const presented = await fetchPresentedChain(options.address, timeoutMs).catch(
      (probeError: unknown) => probeError,
    );
    if (presented instanceof KeyportError) return presented.code === 'UNAVAILABLE' ? failure : presented;
    if (
      presented &&
      typeof presented === 'object' &&
      'caPin' in presented &&
      presented.caPin !== options.caPin
    ) {
      return pinMismatchError(options.address, options.caPin, String(presented.caPin));
    }
    return failure;
  }

  function promisify<C extends Client>(client: C, service: string): Promisified<C> {
    return new Proxy({} as Promisified<C>, {
      get(_target, method: string) {
        const fn = (client as unknown as Record<string, UnaryMethod<unknown, unknown>>)[method];
        if (typeof fn !== 'function') return undefined;
        return (request: unknown) =>
          new Promise((resolve, reject) => {
            options.onCall?.(`${service}.${method}`);
            const deadline = new Date(Date.now() + (options.deadlineMs ?? 15_000));
            fn.call(client, request, new Metadata(), { deadline }, (error, response) => {
              if (error) explain(error).then(reject, reject);
              else resolve(response);
            });
          });
      },
    });
  }

  return {
    auth: promisify(auth, 'auth'),
    user: promisify(user, 'user'),
    admin: promisify(admin, 'admin'),
    devices: promisify(devices, 'devices'),
    address: options.address,
    waitForConnection(timeoutMs: number) {
      const channel = auth.getChannel();
      const deadline = Date.now() + timeoutMs;
      const unreachable = (why: string) =>
        probe(
          transportFailure(new KeyportError('UNAVAILABLE', `Cannot reach ${target}: ${why}.`)),
          timeoutMs,
        );
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          const state = channel.getConnectivityState(true);
          if (state === connectivityState.READY) return resolve();
          if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN) {
            return void unreachable('the connection failed').then(reject, reject);
          }
          channel.watchConnectivityState(state, deadline, (error) => {
            if (error) void unreachable(`no connection within ${timeoutMs} ms`).then(reject, reject);
            else check();
          });
        };
        check();
      });
    },
    close() {
      devices.close();
      admin.close();
      user.close();
      auth.close();
    },
  };
}
