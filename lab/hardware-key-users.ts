// Users whose roles require a private-key policy, on a lab cluster: a role `needs-<policy>` per policy
// (require_session_mfa, allow logins root) and each user signed up with a password, no second factor (the
// cluster of hardwareKeyClusterYaml). For tests of hardware-key logins driven by `keyport` processes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectCluster } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import type { HardwareKeyPolicy } from '../proto/resources/schema';
import { connectAsAdmin } from './cluster';
import type { LabCluster } from './cluster';

/** The password createHardwareKeyUsers gives `user`. */
export const hardwareKeyUserPassword = (user: string): string => `${user}-password-123`;

export async function createHardwareKeyUsers(
  cluster: LabCluster,
  users: Record<string, HardwareKeyPolicy>,
): Promise<void> {
  const admin = await connectAsAdmin(cluster);
  const anonymous = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')).caCertPem,
    caPin: cluster.caPin,
  });
  try {
    const roles = [...new Set(Object.values(users))].map((policy) =>
      JSON.stringify({
        kind: 'role',
        version: 'v7',
        metadata: { name: `needs-${policy}` },
        spec: { options: { require_session_mfa: policy }, allow: { logins: ['root'] } },
      }),
    );
    await admin.admin.createResources({ documentsJson: roles, force: false });
    for (const [user, policy] of Object.entries(users)) {
      const { signupToken } = await admin.admin.createUser({
        name: user,
        roles: ['access', `needs-${policy}`],
        traits: {},
      });
      await anonymous.auth.completeSignup({ token: signupToken, password: hardwareKeyUserPassword(user) });
    }
  } finally {
    admin.close();
    anonymous.close();
  }
}
