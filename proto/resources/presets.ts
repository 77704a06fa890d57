import { parseGoDurationSeconds } from './duration';
import { CLUSTER_AUTH_PREFERENCE_NAME, DEFAULT_SECOND_FACTORS } from './schema';
import type { ClusterAuthPreference, Role, RoleConditions, RoleRule } from './schema';
import { expandTraitValue } from './traits';

export type Traits = Readonly<Record<string, readonly string[]>>;

export const PRESET_ROLE_NAMES = ['access', 'editor', 'auditor', 'device-admin'] as const;
export type PresetRoleName = (typeof PRESET_ROLE_NAMES)[number];

const WILDCARD = '*';

// Functions rather than constants: callers (the server seeding its store, tests) get their own copy
// and cannot alter the presets for everyone else.
const PRESET_ROLES: Record<PresetRoleName, () => Role> = {
  access: () => ({
    kind: 'role',
    version: 'v7',
    metadata: { name: 'access', description: 'SSH access to every node as the logins listed on the user' },
    spec: {
      allow: {
        logins: ['{{internal.logins}}'],
        node_labels: { [WILDCARD]: WILDCARD },
      },
    },
  }),
  editor: () => ({
    kind: 'role',
    version: 'v7',
    metadata: { name: 'editor', description: 'Administers every cluster resource' },
    spec: {
      allow: {
        rules: [{ resources: [WILDCARD], verbs: [WILDCARD] }],
      },
    },
  }),
  auditor: () => ({
    kind: 'role',
    version: 'v7',
    metadata: { name: 'auditor', description: 'Reads the audit log and recorded sessions' },
    spec: {
      allow: {
        rules: [{ resources: ['event', 'session'], verbs: ['list', 'read'] }],
      },
    },
  }),
  'device-admin': () => ({
    kind: 'role',
    version: 'v7',
    metadata: {
      name: 'device-admin',
      description:
        'Manages the trusted-device inventory: register, enroll (tokens and self-enrollment), lock, remove',
    },
    spec: {
      allow: {
        rules: [
          {
            resources: ['device'],
            verbs: ['create', 'read', 'list', 'update', 'delete', 'create_enroll_token', 'enroll'],
          },
        ],
      },
    },
  }),
};

export function presetRole(name: PresetRoleName): Role {
  return PRESET_ROLES[name]();
}

export function presetRoles(): Role[] {
  return PRESET_ROLE_NAMES.map(presetRole);
}

/** The cluster_auth_preference a new cluster starts with. */
export function defaultClusterAuthPreference(): ClusterAuthPreference {
  return {
    kind: 'cluster_auth_preference',
    version: 'v2',
    metadata: { name: CLUSTER_AUTH_PREFERENCE_NAME },
    spec: {
      type: 'local',
      second_factors: [...DEFAULT_SECOND_FACTORS],
      allow_passwordless: true,
      device_trust: { mode: 'off' },
    },
  };
}

export function expandLogins(conditions: RoleConditions | undefined, traits: Traits): string[] {
  return (conditions?.logins ?? []).flatMap((login) => expandTraitValue(login, traits));
}

/**
 * The logins one role grants to a user with these traits: `{{internal.logins}}` / `{{external.X}}`
 * expand to the trait's values, and the role's own deny logins are taken away.
 */
export function roleLogins(role: Role, userTraits: Traits): string[] {
  const denied = new Set(expandLogins(role.spec.deny, userTraits));
  return [...new Set(expandLogins(role.spec.allow, userTraits))].filter((login) => !denied.has(login));
}

/** The logins a set of roles grants: allowed by any role and denied by none. */
export function effectiveLogins(roles: readonly Role[], userTraits: Traits): string[] {
  const denied = new Set(roles.flatMap((role) => expandLogins(role.spec.deny, userTraits)));
  const allowed = new Set(roles.flatMap((role) => expandLogins(role.spec.allow, userTraits)));
  return [...allowed].filter((login) => !denied.has(login));
}

/** The shortest max_session_ttl among the roles that set one, in seconds; undefined when none does. */
export function effectiveMaxSessionTtlSeconds(roles: readonly Role[]): number | undefined {
  let shortest: number | undefined;
  for (const role of roles) {
    const ttl = role.spec.options?.max_session_ttl;
    const seconds = ttl === undefined ? undefined : parseGoDurationSeconds(ttl);
    if (seconds !== undefined && (shortest === undefined || seconds < shortest)) shortest = seconds;
  }
  return shortest;
}

function ruleMatches(rule: RoleRule, resource: string, verb: string): boolean {
  const resourceMatches = rule.resources.some(
    (candidate) => candidate === WILDCARD || candidate === resource,
  );
  return resourceMatches && rule.verbs.some((candidate) => candidate === WILDCARD || candidate === verb);
}

function anyRuleMatches(conditions: RoleConditions | undefined, resource: string, verb: string): boolean {
  return (conditions?.rules ?? []).some((rule) => ruleMatches(rule, resource, verb));
}

/**
 * Whether the roles' admin rules permit `verb` on `resource` (e.g. 'role', 'create'). A matching deny
 * rule in any role wins over every allow; `*` matches any resource or verb.
 */
export function allows(roles: readonly Role[], resource: string, verb: string): boolean {
  if (roles.some((role) => anyRuleMatches(role.spec.deny, resource, verb))) return false;
  return roles.some((role) => anyRuleMatches(role.spec.allow, resource, verb));
}
