import { describe, expect, it } from 'vitest';
import type { Role } from '../../proto/resources/schema';
import { deviceTrustDecision, labelsMatch } from './policy';
import type { DeviceTrustResource } from './policy';

const device = { deviceId: 'd-1', assetTag: 'C00AA0AAAA0A', credentialId: 'cred' };

function role(name: string, spec: Role['spec']): Role {
  return { kind: 'role', version: 'v7', metadata: { name }, spec };
}

// The seed's example: device trust required by a role only where its allow matches (production nodes).
const prodRequired = role('prod-access', {
  options: { device_trust_mode: 'required' },
  allow: { logins: ['root'], node_labels: { env: 'prod' } },
});
const devAccess = role('dev-access', {
  allow: { logins: ['dev'], node_labels: { env: ['dev', 'staging'] } },
});

const prodNode: DeviceTrustResource = { kind: 'node', name: 'db-1', labels: { env: 'prod' } };
const devNode: DeviceTrustResource = { kind: 'node', name: 'build-1', labels: { env: 'dev' } };

describe('deviceTrustDecision', () => {
  it('asks nothing when the cluster mode is off, whatever the roles say', () => {
    expect(deviceTrustDecision('off', { roles: [prodRequired] }, prodNode)).toEqual({
      allowed: true,
      required: false,
    });
  });

  it('requires a device everywhere (apps aside) when the cluster requires it', () => {
    for (const resource of [
      prodNode,
      devNode,
      { kind: 'web_session' },
      { kind: 'first_mfa_device' },
    ] as const) {
      const refused = deviceTrustDecision('required', { roles: [devAccess] }, resource);
      expect(refused.allowed).toBe(false);
      if (!refused.allowed) expect(refused.error.code).toBe('DEVICE_TRUST_REQUIRED');
      expect(deviceTrustDecision('required', { roles: [devAccess], device }, resource)).toMatchObject({
        allowed: true,
        required: true,
        device,
      });
    }
    const app: DeviceTrustResource = { kind: 'app', name: 'grafana', labels: { env: 'dev' } };
    expect(deviceTrustDecision('required', { roles: [devAccess] }, app)).toMatchObject({ allowed: true });
  });

  it("applies a role's required mode only where the role's allow matches", () => {
    const subject = { roles: [prodRequired, devAccess] };
    expect(deviceTrustDecision('optional', subject, prodNode)).toMatchObject({ allowed: false });
    expect(deviceTrustDecision('optional', subject, devNode)).toEqual({ allowed: true, required: false });
    expect(deviceTrustDecision('optional', { ...subject, device }, prodNode)).toMatchObject({
      allowed: true,
      required: true,
    });
    // Resources without labels: every role of the user applies.
    expect(deviceTrustDecision('optional', subject, { kind: 'web_session' })).toMatchObject({
      allowed: false,
    });
    // An app is role-based: the role's labels decide.
    const prodApp: DeviceTrustResource = { kind: 'app', name: 'grafana', labels: { env: 'prod' } };
    expect(deviceTrustDecision('optional', subject, prodApp)).toMatchObject({ allowed: false });
  });

  it('never lets an optional role relax a required cluster', () => {
    const optional = role('relaxed', {
      options: { device_trust_mode: 'optional' },
      allow: { node_labels: { '*': '*' } },
    });
    expect(deviceTrustDecision('required', { roles: [optional] }, devNode)).toMatchObject({ allowed: false });
  });

  it('passes the session device through when nothing requires it', () => {
    expect(deviceTrustDecision('optional', { roles: [devAccess], device }, devNode)).toEqual({
      allowed: true,
      required: false,
      device,
    });
  });
});

describe('labelsMatch', () => {
  it('matches wildcards, values and lists, and refuses missing keys', () => {
    expect(labelsMatch({ '*': '*' }, {})).toBe(true);
    expect(labelsMatch({ env: '*' }, { env: 'x' })).toBe(true);
    expect(labelsMatch({ env: '*' }, {})).toBe(false);
    expect(labelsMatch({ env: ['a', 'b'] }, { env: 'b' })).toBe(true);
    expect(labelsMatch({ env: 'a', team: 'x' }, { env: 'a' })).toBe(false);
    expect(labelsMatch({}, { env: 'a' })).toBe(false);
    expect(labelsMatch(undefined, { env: 'a' })).toBe(false);
  });
});
