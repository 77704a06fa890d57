// The cluster's policy as the services read it: the cluster_auth_preference in canonical form, roles,
// logins and session TTLs, admin rules; plus the resources every cluster starts with.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { KeyportError } from '../proto/errors';
import { DEFAULT_SESSION_TTL_SECONDS } from './context';
import type { Lockout } from './storage/throttle';
import { ResourceError } from '../proto/resources/errors';
import { parseCapSpecValue, parseResourceJson } from '../proto/resources/parse';
import {
  allows,
  defaultClusterAuthPreference,
  effectiveLogins,
  effectiveMaxSessionTtlSeconds,
  presetRoles,
} from '../proto/resources/presets';
import type { Traits } from '../proto/resources/presets';
import { KIND_ALIASES, normalizeCap, resolveCapSpecCaFiles, RESOURCE_KINDS } from '../proto/resources/schema';
import type {
  CanonicalClusterAuthPreferenceSpec,
  ClusterAuthPreference,
  Resource,
  ResourceKind,
  Role,
  UserWithStatus,
} from '../proto/resources/schema';
import type { Store, UserRow } from './storage/store';

export const CAP_KIND = 'cluster_auth_preference';
const PRESETS_INSTALLED = 'presets_installed';

export function toKeyportError(error: unknown): never {
  if (error instanceof ResourceError) {
    throw new KeyportError('INVALID_ARGUMENT', error.message, { fieldPath: error.fieldPath });
  }
  throw error;
}

export function canonicalKind(kind: string): ResourceKind {
  const canonical = KIND_ALIASES[kind] ?? kind;
  if (!(RESOURCE_KINDS as readonly string[]).includes(canonical)) {
    throw new KeyportError(
      'INVALID_ARGUMENT',
      `Unknown resource kind "${kind}"; use user, role, node, oidc or cap.`,
      {
        fieldPath: 'kind',
      },
    );
  }
  return canonical as ResourceKind;
}

/**
 * Validates a posted document; a cluster_auth_preference is also checked for legacy/current conflicts.
 * `fieldPathPrefix` names the document within a batch (`documents[1]`).
 */
export function validateResource(json: string, fieldPathPrefix = ''): Resource {
  try {
    const resource = parseResourceJson(json);
    if (resource.kind === 'cluster_auth_preference') normalizeCap(resource.spec);
    return resource;
  } catch (error) {
    if (error instanceof ResourceError && fieldPathPrefix) {
      const at = (path: string) => (path ? `${fieldPathPrefix}.${path}` : fieldPathPrefix);
      throw new KeyportError('INVALID_ARGUMENT', `${fieldPathPrefix}: ${error.message}`, {
        fieldPath: at(error.fieldPath),
      });
    }
    return toKeyportError(error);
  }
}

export async function capDocument(store: Store): Promise<ClusterAuthPreference> {
  const json = await store.getConfig(CAP_KIND);
  return json ? (JSON.parse(json) as ClusterAuthPreference) : defaultClusterAuthPreference();
}

export interface ClusterPolicy extends CanonicalClusterAuthPreferenceSpec {
  secondFactors: string[];
  allowPasswordless: boolean;
  connectorName: string | undefined;
  webauthnRpId: string | undefined;
}

/**
 * The policy the stored cap says, read from the store on every call (so every replica enforces a change
 * at its next call). Only the parsing is remembered: the same stored text gives the same frozen policy.
 */
export async function loadCap(store: Store): Promise<ClusterPolicy> {
  return capOfStored(await store.getConfig(CAP_KIND));
}

/** The policy of the cap's stored text (`undefined`: none stored, the default), read by the caller. */
export function capOfStored(stored: string | undefined): ClusterPolicy {
  const json = stored ?? '';
  if (lastCap?.json === json) return lastCap.policy;
  const document = json ? (JSON.parse(json) as ClusterAuthPreference) : defaultClusterAuthPreference();
  const canonical = normalizeCap(document.spec);
  const policy = deepFreeze({
    ...canonical,
    secondFactors: canonical.second_factors,
    allowPasswordless: canonical.allow_passwordless,
    connectorName: canonical.connector_name,
    webauthnRpId: canonical.webauthn?.rp_id,
  });
  lastCap = { json, policy };
  return policy;
}

let lastCap: { json: string; policy: ClusterPolicy } | undefined;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** The named roles that exist; a role deleted since a certificate was issued grants nothing. */
export async function loadRoles(store: Store, names: readonly string[]): Promise<Role[]> {
  const stored = await store.getRoleJsons(names);
  const roles: Role[] = [];
  for (const name of names) {
    const json = stored.get(name);
    if (json) roles.push(JSON.parse(json) as Role);
  }
  return roles;
}

/**
 * The named roles, in the order named, among role documents already read by name (a name without one, a
 * role deleted since, grants nothing).
 */
export function rolesAmong(names: readonly string[], stored: Readonly<Record<string, unknown>>): Role[] {
  return names.flatMap((name) => (Object.hasOwn(stored, name) ? [stored[name] as Role] : []));
}

export function loginsFor(roles: readonly Role[], traits: Traits): string[] {
  return effectiveLogins(roles, traits);
}

/**
 * The requested TTL (default 12 h), capped by the shortest max_session_ttl among the roles, and by 12 h
 * when no role sets one: a longer session is something a role grants, never something a client asks for.
 */
export function sessionTtlSeconds(roles: readonly Role[], requestedSeconds: number | undefined): number {
  const wanted = requestedSeconds && requestedSeconds > 0 ? requestedSeconds : DEFAULT_SESSION_TTL_SECONDS;
  const cap = effectiveMaxSessionTtlSeconds(roles) ?? DEFAULT_SESSION_TTL_SECONDS;
  return Math.floor(Math.min(wanted, cap));
}

export const roleAllows = allows;

/** A user as `keyport admin get` shows it; `lockedOut` lists the addresses locked out for this name. */
export function userDocument(row: UserRow, lockedOut: Lockout[] = []): UserWithStatus {
  return {
    kind: 'user',
    version: 'v2',
    metadata: { name: row.name },
    spec: JSON.parse(row.spec_json),
    status: {
      created_ms: row.created_ms,
      ...(row.locked_until_ms !== null ? { locked_until_ms: row.locked_until_ms } : {}),
      ...(row.lock_reason !== null ? { lock_reason: row.lock_reason } : {}),
      ...(lockedOut.length > 0
        ? {
            locked_out: lockedOut.map((l) => ({
              client_addr: l.clientAddr,
              failed_attempts: l.failed,
              until_ms: l.untilMs,
            })),
          }
        : {}),
    },
  } as UserWithStatus;
}

/**
 * First start: the preset roles and the default cluster_auth_preference. Every start: the config file's
 * `auth_service.authentication`, when there is one (CA file paths there are read on the auth host).
 */
export async function applyStartupResources(
  store: Store,
  authentication: Record<string, unknown> | undefined,
  nowMs: number,
  configDir: string,
): Promise<void> {
  let capJson: string | undefined;
  if (authentication) {
    try {
      const spec = parseCapSpecValue(
        authentication,
        { caEntries: 'pem-or-path' },
        'auth_service.authentication',
      );
      const resolved = await resolveCapSpecCaFiles(
        spec,
        (path) => readFile(resolve(configDir, path), 'utf8'),
        'auth_service.authentication',
      );
      normalizeCap(resolved, 'auth_service.authentication');
      capJson = JSON.stringify({ ...defaultClusterAuthPreference(), spec: resolved });
    } catch (error) {
      toKeyportError(error);
    }
  }
  await store.transaction(async (tx) => {
    // Each preset is installed once: one an admin deleted stays deleted, and a preset added in a later
    // version (device-admin) arrives at the next start. The first clusters stored `true` for the first three.
    const installedJson = await tx.getConfig(PRESETS_INSTALLED);
    const installed: string[] =
      installedJson === undefined
        ? []
        : installedJson === 'true'
          ? ['access', 'editor', 'auditor']
          : (JSON.parse(installedJson) as string[]);
    const missing = presetRoles().filter((role) => !installed.includes(role.metadata.name));
    for (const role of missing) await tx.putRole(role.metadata.name, JSON.stringify(role), false, nowMs);
    if (installedJson === undefined && !(await tx.getConfig(CAP_KIND))) {
      await tx.putConfig(CAP_KIND, JSON.stringify(defaultClusterAuthPreference()), nowMs);
    }
    if (missing.length > 0) {
      await tx.putConfig(
        PRESETS_INSTALLED,
        JSON.stringify([...installed, ...missing.map((role) => role.metadata.name)]),
        nowMs,
      );
    }
    if (capJson) await tx.putConfig(CAP_KIND, capJson, nowMs);
  });
}
