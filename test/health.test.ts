// The standard gRPC health check (auth/health.ts): what a load balancer in front of replicas asks, and the
// benchmarks' bare unary call. It answers without a client certificate, for the server and for each keyport
// service, says SERVICE_UNKNOWN for a service it does not serve, and changes nothing stored.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectCluster } from '../client/api';
import type { ClusterApi } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import { openClusterDb, startLabCluster } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';

let cluster: LabCluster;
let api: ClusterApi;

beforeAll(async () => {
  cluster = await startLabCluster({ clusterName: 'health' });
  const identity = JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')) as {
    caCertPem: string;
  };
  // No client certificate: an unauthenticated caller, as a load balancer is.
  api = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: identity.caCertPem,
    caPin: cluster.caPin,
  });
});

afterAll(async () => {
  api?.close();
  await cluster?.stop();
});

function auditCount(): number {
  const db = openClusterDb(cluster);
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

it('says SERVING for the server and for each keyport service, to a caller without a certificate', async () => {
  expect(await api.health()).toBe('SERVING');
  for (const service of [
    'keyport.v1.AuthService',
    'keyport.v1.UserService',
    'keyport.v1.AdminService',
    'keyport.v1.DeviceTrustService',
    'keyport.v1.NodeAccessService',
    'keyport.v1.NodeService',
    'keyport.v1.WebSessionService',
  ]) {
    expect(await api.health(service), service).toBe('SERVING');
  }
});

it("says SERVICE_UNKNOWN (the protocol's NOT_FOUND) for a service it does not serve, and writes nothing", async () => {
  const before = auditCount();
  expect(await api.health('keyport.v1.NoSuchService')).toBe('SERVICE_UNKNOWN');
  expect(await api.health('x'.repeat(10_000))).toBe('SERVICE_UNKNOWN');
  expect(auditCount()).toBe(before);
});
