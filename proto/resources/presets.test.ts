import { describe, expect, it } from 'vitest';
import { formatResourceYaml, parseResourceDocuments, parseResourceJson } from './parse';
import {
  allows,
  defaultClusterAuthPreference,
  effectiveLogins,
  effectiveMaxSessionTtlSeconds,
  presetRole,
  presetRoles,
  roleLogins,
} from './presets';
import { normalizeCap } from './schema';
import type { Role } from './schema';

function role(name: string, spec: Role['spec']): Role {
  return { kind: 'role', version: 'v7', metadata: { name }, spec };
}

describe('presets', () => {
  it('validate against their own schemas, as JSON and as YAML', () => {
    for (const resource of [...presetRoles(), defaultClusterAuthPreference()]) {
      expect(parseResourceJson(JSON.stringify(resource))).toEqual(resource);
      expect(parseResourceDocuments(formatResourceYaml(resource))).toEqual([resource]);
    }
  });

  it('hand out fresh copies', () => {
    const access = presetRole('access');
    access.spec.allow?.logins?.push('root');
    expect(presetRole('access').spec.allow?.logins).toEqual(['{{internal.logins}}']);
  });

  it('access grants the user’s own logins on every node and no admin rules', () => {
    const access = presetRole('access');
    expect(roleLogins(access, { logins: ['alice', 'deploy'] })).toEqual(['alice', 'deploy']);
    expect(roleLogins(access, {})).toEqual([]);
    expect(access.spec.allow?.node_labels).toEqual({ '*': '*' });
    expect(allows([access], 'role', 'read')).toBe(false);
  });

  it('editor administers everything; auditor reads events and sessions only', () => {
    const editor = presetRole('editor');
    const auditor = presetRole('auditor');
    expect(allows([editor], 'cluster_auth_preference', 'update')).toBe(true);
    expect(allows([auditor], 'event', 'list')).toBe(true);
    expect(allows([auditor], 'session', 'read')).toBe(true);
    expect(allows([auditor], 'event', 'delete')).toBe(false);
    expect(allows([auditor], 'user', 'read')).toBe(false);
  });

  it('default cluster_auth_preference: local, OTP required, passwordless allowed, device trust off', () => {
    const cap = defaultClusterAuthPreference();
    expect(normalizeCap(cap.spec)).toMatchObject({
      type: 'local',
      second_factors: ['otp'],
      secondFactorRequired: true,
      allow_passwordless: true,
      device_trust: { mode: 'off', auto_enroll: false },
    });
  });
});

describe('roleLogins', () => {
  it('expands internal and external traits, with literal text around them', () => {
    const r = role('r', {
      allow: { logins: ['{{internal.logins}}', 'ops-{{external.team}}', '{{external["groups"]}}', 'root'] },
    });
    expect(roleLogins(r, { logins: ['alice'], team: ['blue', 'red'], groups: ['admins'] })).toEqual([
      'alice',
      'ops-blue',
      'ops-red',
      'admins',
      'root',
    ]);
  });

  it('drops duplicates, values unusable as logins, and the role’s denied logins', () => {
    const r = role('r', { allow: { logins: ['{{internal.logins}}', 'alice'] }, deny: { logins: ['root'] } });
    expect(roleLogins(r, { logins: ['alice', 'root', 'has space', ''] })).toEqual(['alice']);
  });

  it('effectiveLogins: a login denied by any role is gone', () => {
    const roles = [
      role('a', { allow: { logins: ['alice', 'root'] } }),
      role('b', { deny: { logins: ['root'] } }),
    ];
    expect(effectiveLogins(roles, {})).toEqual(['alice']);
  });
});

describe('effectiveMaxSessionTtlSeconds', () => {
  it('is the minimum over the roles that set it', () => {
    const roles = [
      role('a', { options: { max_session_ttl: '8h' } }),
      role('b', {}),
      role('c', { options: { max_session_ttl: '1h30m' } }),
    ];
    expect(effectiveMaxSessionTtlSeconds(roles)).toBe(5400);
    expect(effectiveMaxSessionTtlSeconds([role('b', {})])).toBeUndefined();
    expect(effectiveMaxSessionTtlSeconds([])).toBeUndefined();
  });
});

describe('allows', () => {
  const readUsers = role('read-users', {
    allow: { rules: [{ resources: ['user'], verbs: ['list', 'read'] }] },
  });
  const anyVerbOnRoles = role('roles-admin', { allow: { rules: [{ resources: ['role'], verbs: ['*'] }] } });

  it('matches resources and verbs exactly or through *', () => {
    expect(allows([readUsers], 'user', 'read')).toBe(true);
    expect(allows([readUsers], 'user', 'delete')).toBe(false);
    expect(allows([readUsers], 'role', 'read')).toBe(false);
    expect(allows([anyVerbOnRoles], 'role', 'delete')).toBe(true);
    expect(allows([presetRole('editor')], 'anything', 'whatever')).toBe(true);
    expect(allows([], 'user', 'read')).toBe(false);
  });

  it('lets a deny rule in any role win over every allow', () => {
    const noDeletes = role('no-deletes', { deny: { rules: [{ resources: ['*'], verbs: ['delete'] }] } });
    const roles = [presetRole('editor'), noDeletes];
    expect(allows(roles, 'user', 'delete')).toBe(false);
    expect(allows(roles, 'user', 'update')).toBe(true);
    const denyEverythingOnCap = role('d', {
      deny: { rules: [{ resources: ['cluster_auth_preference'], verbs: ['*'] }] },
    });
    expect(allows([presetRole('editor'), denyEverythingOnCap], 'cluster_auth_preference', 'read')).toBe(
      false,
    );
    expect(allows([presetRole('editor'), denyEverythingOnCap], 'role', 'read')).toBe(true);
  });
});
