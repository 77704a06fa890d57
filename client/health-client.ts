// The standard gRPC health check (grpc.health.v1.Health/Check, auth/health.ts on the server) as a client
// on an existing channel. Loaded only when asked: the proto loader reads health.proto at import.
import { makeClientConstructor, Metadata, status } from '@grpc/grpc-js';
import type { CallOptions, ChannelCredentials, Client, ServiceDefinition } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { service } from 'grpc-health-check';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

type HealthClient = Client & {
  check(
    request: { service: string },
    metadata: Metadata,
    options: CallOptions,
    callback: (error: ServiceError | null, response?: { status: ServingStatus }) => void,
  ): void;
};

const HealthClientConstructor = makeClientConstructor(
  service as unknown as ServiceDefinition,
  'grpc.health.v1.Health',
) as unknown as new (target: string, credentials: ChannelCredentials, options: object) => HealthClient;

export interface HealthCheck {
  /** The status of `serviceName` ('' = the server as a whole); SERVICE_UNKNOWN for one it does not serve. */
  check(serviceName: string, deadline: Date): Promise<ServingStatus>;
  close(): void;
}

export function healthClient(target: string, credentials: ChannelCredentials, channel: unknown): HealthCheck {
  // grpc-js reuses `channel` (another client's, the same connection) when it is handed over as is.
  const client = new HealthClientConstructor(target, credentials, { channelOverride: channel });
  return {
    check: (serviceName, deadline) =>
      new Promise((resolve, reject) =>
        client.check({ service: serviceName }, new Metadata(), { deadline }, (error, response) => {
          // The protocol's answer for a service the server does not know is the status NOT_FOUND.
          if (error?.code === status.NOT_FOUND) resolve('SERVICE_UNKNOWN');
          else if (error) reject(error);
          else resolve(response?.status ?? 'UNKNOWN');
        }),
      ),
    close: () => client.close(),
  };
}
