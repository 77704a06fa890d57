// Who may reach which node as which login, and when a connection needs per-session MFA or a trusted
// device: pure functions of the roles (with the user's traits), the cap and the node's labels.
//
// - A role allows (node, login) when its allow.node_labels match the node's labels and its allow.logins
//   (traits expanded) include the login.
// - Deny wins: a role whose deny.node_labels match the node denies every login there, and a login in any
//   role's deny.logins is denied on every node.
// - Per-session MFA: the cap's `require_session_mfa: true` applies to every node; a role's applies only to
//   the nodes its allow.node_labels match (the seed's Jerry and Olga example). The hardware-key values of
//   require_session_mfa are a key policy (auth/hardware-key), not per-session MFA.
// - Device trust: auth/device-trust/policy.ts decides it for a node the same way (cap, or roles whose
//   allow matches the node).
import { expandLogins } from '../../proto/resources/presets';
import type { Traits } from '../../proto/resources/presets';
import type { Node, Role } from '../../proto/resources/schema';
import { labelsMatch } from '../device-trust/policy';

/** A node as access decisions see it. */
export interface NodeTarget {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export function nodeTarget(node: Node): NodeTarget {
  return { name: node.metadata.name, labels: node.metadata.labels ?? {} };
}

export type LoginDecision = { allowed: true } | { allowed: false; reason: string };

/** Whether these roles let their holder log in to `node` as `login`. */
export function loginDecision(
  roles: readonly Role[],
  traits: Traits,
  node: NodeTarget,
  login: string,
): LoginDecision {
  for (const role of roles) {
    if (labelsMatch(role.spec.deny?.node_labels, node.labels)) {
      return { allowed: false, reason: `role ${role.metadata.name} denies node "${node.name}"` };
    }
    if (expandLogins(role.spec.deny, traits).includes(login)) {
      return { allowed: false, reason: `role ${role.metadata.name} denies login "${login}"` };
    }
  }
  const granting = roles.some(
    (role) =>
      labelsMatch(role.spec.allow?.node_labels, node.labels) &&
      expandLogins(role.spec.allow, traits).includes(login),
  );
  if (granting) return { allowed: true };
  return { allowed: false, reason: `no role allows login "${login}" on node "${node.name}"` };
}

/** The logins these roles allow on `node`, in role order, denied ones left out. */
export function nodeLogins(roles: readonly Role[], traits: Traits, node: NodeTarget): string[] {
  const candidates = new Set(
    roles
      .filter((role) => labelsMatch(role.spec.allow?.node_labels, node.labels))
      .flatMap((role) => expandLogins(role.spec.allow, traits)),
  );
  return [...candidates].filter((login) => loginDecision(roles, traits, node, login).allowed);
}

/** Whether a connection to `node` needs a fresh MFA check: the cap's setting, or a role matching it. */
export function sessionMfaRequired(
  capRequiresSessionMfa: boolean | string,
  roles: readonly Role[],
  node: NodeTarget,
): boolean {
  if (capRequiresSessionMfa === true) return true;
  return roles.some(
    (role) =>
      role.spec.options?.require_session_mfa === true &&
      labelsMatch(role.spec.allow?.node_labels, node.labels),
  );
}
