// The gRPC client of keyport/v1: TLS verified against the pinned cluster CA only, an optional client
// certificate (mTLS) for authenticated calls, promise-returning methods and KeyportError failures.
import { credentials, Metadata } from '@grpc/grpc-js';
import type { CallOptions, Client, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { fromServiceError, KeyportError } from '../proto/errors';
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
  close(): void;
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
    const presented = await fetchPresentedChain(options.address).catch((probeError: unknown) => probeError);
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
    close() {
      devices.close();
      admin.close();
      user.close();
      auth.close();
    },
  };
}
