// The nodes a signed-in person may reach (NodeAccessService.ListNodes): keyport-auth applies the roles'
// allow.logins × allow.node_labels (deny wins) and answers each node with the logins allowed there. Used
// by `keyport ls`, `keyport ssh-config` and Keyport Connect's Servers view.
import type { ReachableNode } from '../../proto/gen/keyport/v1/node';
import type { PivPrompts } from '../hardware/piv/signer';
import type { Profile, ProfileStore } from '../profiles';
import { connectAsProfile } from '../session';

export async function listReachableNodes(
  profiles: ProfileStore,
  profile: Profile,
  options: { piv?: PivPrompts; onCall?: (method: string) => void } = {},
): Promise<ReachableNode[]> {
  const api = await connectAsProfile(profiles, profile, options.onCall, {
    ...(options.piv ? { piv: options.piv } : {}),
  });
  try {
    return (await api.nodes.listNodes({})).nodes.filter((reachable) => reachable.node !== undefined);
  } finally {
    api.close();
  }
}
