import { describe, expect, it } from 'vitest';
import { AdminServiceService } from '../proto/gen/keyport/v1/admin';
import { AuthServiceService } from '../proto/gen/keyport/v1/auth';
import { DeviceTrustServiceService } from '../proto/gen/keyport/v1/device';
import { NodeAccessServiceService } from '../proto/gen/keyport/v1/node';
import { UserServiceService } from '../proto/gen/keyport/v1/user';
import { WebSessionServiceService } from '../proto/gen/keyport/v1/web_session';
import { formatClusterAddress, parseClusterAddress } from './cluster-trust';
import type { TrustedCluster } from './profiles';
import { callKinds, replicaAddresses, retrySafe, withLastReplica } from './replicas';

const services = {
  auth: AuthServiceService,
  user: UserServiceService,
  admin: AdminServiceService,
  devices: DeviceTrustServiceService,
  nodes: NodeAccessServiceService,
  webSessions: WebSessionServiceService,
};

function cluster(fields: Partial<TrustedCluster> = {}): TrustedCluster {
  return {
    address: 'a.example:3025',
    name: 'lab',
    caPin: `sha256:${'a'.repeat(64)}`,
    caPem: 'pem',
    trustedAtMs: 1,
    ...fields,
  };
}

const order = (trusted: TrustedCluster) => replicaAddresses(trusted).map(formatClusterAddress);

describe('which calls move to another replica (callKinds)', () => {
  it('classifies every RPC of every service the client calls, and nothing else', () => {
    expect(Object.keys(callKinds).sort()).toEqual(Object.keys(services).sort());
    for (const [service, definition] of Object.entries(services)) {
      expect(Object.keys(callKinds[service as keyof typeof callKinds]).sort(), service).toEqual(
        Object.keys(definition).sort(),
      );
    }
  });

  it('retries reads only: never a write, a ceremony step or a method it does not know', () => {
    expect(retrySafe('auth', 'getClusterInfo')).toBe(true);
    expect(retrySafe('user', 'listMfaDevices')).toBe(true);
    expect(retrySafe('admin', 'listAuditEvents')).toBe(true);
    expect(retrySafe('devices', 'getDeviceStatus')).toBe(true);
    expect(retrySafe('nodes', 'listNodes')).toBe(true);
    expect(retrySafe('nodes', 'generateSessionCertificate')).toBe(false);
    expect(retrySafe('admin', 'registerNode')).toBe(false);
    expect(retrySafe('admin', 'lockUser')).toBe(false);
    expect(retrySafe('admin', 'createResources')).toBe(false);
    expect(retrySafe('devices', 'createDeviceEnrollToken')).toBe(false);
    // A step that spends or makes what the next step needs: the ceremony restarts instead.
    expect(retrySafe('auth', 'createAuthenticateChallenge')).toBe(false);
    expect(retrySafe('auth', 'login')).toBe(false);
    expect(retrySafe('user', 'createAuthenticateChallenge')).toBe(false);
    expect(retrySafe('devices', 'completeDeviceEnrollment')).toBe(false);
    expect(retrySafe('webSessions', 'getWebSessionApproval')).toBe(true);
    expect(retrySafe('webSessions', 'approveWebSession')).toBe(false);
    expect(retrySafe('admin', 'toString')).toBe(false);
    expect(retrySafe('admin', 'constructor')).toBe(false);
    expect(retrySafe('nothing', 'getClusterInfo')).toBe(false);
  });
});

describe('replicaAddresses', () => {
  it('is the one address of a cluster without replicas', () => {
    expect(order(cluster())).toEqual(['a.example:3025']);
  });

  it('keeps the stored order while no replica is remembered', () => {
    const replicas = ['a.example:3025', 'b.example:3025', 'c.example:3025'];
    expect(order(cluster({ address: 'order-1:3025', replicas }))).toEqual(replicas);
  });

  it('tries the stored last replica first, and the others in their order', () => {
    const replicas = ['a.example:3025', 'b.example:3025', 'c.example:3025'];
    expect(order(cluster({ address: 'order-2:3025', replicas, lastReplica: 'b.example:3025' }))).toEqual([
      'b.example:3025',
      'a.example:3025',
      'c.example:3025',
    ]);
  });

  it('ignores a stored last replica that is no longer one of the replicas', () => {
    const replicas = ['a.example:3025', 'b.example:3025'];
    expect(order(cluster({ address: 'order-3:3025', replicas, lastReplica: 'gone.example:3025' }))).toEqual(
      replicas,
    );
  });
});

describe('withLastReplica', () => {
  const replicas = ['a.example:3025', 'b.example:3025'];

  it('changes nothing (the same object: nothing to write) when the replica is already tried first', () => {
    const fresh = cluster({ replicas });
    expect(withLastReplica(fresh, parseClusterAddress('a.example:3025'))).toBe(fresh);
    const remembered = cluster({ replicas, lastReplica: 'b.example:3025' });
    expect(withLastReplica(remembered, parseClusterAddress('b.example:3025'))).toBe(remembered);
  });

  it('names another replica that answered, and only one of the cluster’s', () => {
    expect(withLastReplica(cluster({ replicas }), parseClusterAddress('b.example:3025'))).toMatchObject({
      replicas,
      lastReplica: 'b.example:3025',
    });
    expect(
      withLastReplica(cluster({ replicas, lastReplica: 'b.example:3025' }), parseClusterAddress('a.example')),
    ).toMatchObject({ lastReplica: 'a.example:3025' });
    const single = cluster();
    expect(withLastReplica(single, parseClusterAddress('a.example:3025'))).toBe(single);
    const other = cluster({ replicas });
    expect(withLastReplica(other, parseClusterAddress('c.example:3025'))).toBe(other);
  });
});
