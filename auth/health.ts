// The standard gRPC health service (grpc.health.v1.Health), through grpc-health-check, the grpc-node
// project's own implementation: what a load balancer in front of several replicas asks, and the bare
// unary call the benchmarks take as their floor. It needs no client certificate, reads no storage and
// says nothing but SERVING or NOT_SERVING, for the server as a whole ("") and for each keyport service.
import type { Server } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

export interface Health {
  /** Says NOT_SERVING from now on (a replica that is stopping). */
  stopping(): void;
}

export function addHealthService(server: Server, serviceNames: readonly string[]): Health {
  const names = ['', ...serviceNames];
  const health = new HealthImplementation(
    Object.fromEntries(names.map((name) => [name, 'SERVING' as const])),
  );
  health.addToServer(server);
  return {
    stopping() {
      for (const name of names) health.setStatus(name, 'NOT_SERVING');
    },
  };
}
