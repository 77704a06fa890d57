// Users whose roles require a private-key policy, on a lab cluster: a role `needs-<policy>` per policy
// (require_session_mfa, allow logins root) and each user signed up with a password, no second factor (the
// cluster of hardwareKeyClusterYaml). A user given `none` holds RAISABLE_ROLE, which requires nothing until
// raiseHardwareKeyPolicy raises it, as an admin would after the user signed in. For tests of hardware-key
// logins and relogins.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectCluster } from '../client/api';
import { parseClusterAddress } from '../client/cluster-trust';
import type { HardwareKeyPolicy } from '../proto/resources/schema';
import { connectAsAdmin } from './cluster';
import type { LabCluster } from './cluster';

/** The password createHardwareKeyUsers gives `user`. */
export const hardwareKeyUserPassword = (user: string): string => `${user}-password-123`;

/** The role of the users created with the policy `none`. */
export const RAISABLE_ROLE = 'critical';

function roleDocument(name: string, policy?: HardwareKeyPolicy): string {
  return JSON.stringify({
    kind: 'role',
    version: 'v7',
    metadata: { name },
    spec: { options: policy ? { require_session_mfa: policy } : {}, allow: { logins: ['root'] } },
  });
}

const roleFor = (policy: HardwareKeyPolicy | 'none') =>
  policy === 'none' ? RAISABLE_ROLE : `needs-${policy}`;

export async function createHardwareKeyUsers(
  cluster: LabCluster,
  users: Record<string, HardwareKeyPolicy | 'none'>,
): Promise<void> {
  const admin = await connectAsAdmin(cluster);
  const anonymous = connectCluster({
    address: parseClusterAddress(cluster.address),
    caPem: JSON.parse(await readFile(join(cluster.dataDir, 'admin-identity.json'), 'utf8')).caCertPem,
    caPin: cluster.caPin,
  });
  try {
    const roles = [...new Set(Object.values(users))].map((policy) =>
      roleDocument(roleFor(policy), policy === 'none' ? undefined : policy),
    );
    await admin.admin.createResources({ documentsJson: roles, force: false });
    for (const [user, policy] of Object.entries(users)) {
      const { signupToken } = await admin.admin.createUser({
        name: user,
        roles: ['access', roleFor(policy)],
        traits: {},
      });
      await anonymous.auth.completeSignup({ token: signupToken, password: hardwareKeyUserPassword(user) });
    }
  } finally {
    admin.close();
    anonymous.close();
  }
}

/** Makes RAISABLE_ROLE require `policy`: its users' sessions made before no longer meet it. */
export async function raiseHardwareKeyPolicy(cluster: LabCluster, policy: HardwareKeyPolicy): Promise<void> {
  const admin = await connectAsAdmin(cluster);
  try {
    await admin.admin.createResources({ documentsJson: [roleDocument(RAISABLE_ROLE, policy)], force: true });
  } finally {
    admin.close();
  }
}
