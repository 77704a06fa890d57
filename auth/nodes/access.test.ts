// The RBAC matcher for nodes: allow.logins × allow.node_labels, deny winning, and where per-session MFA
// applies. The roles are the seed's Jerry and Olga example, parsed from its YAML word for word.
import { describe, expect, it } from 'vitest';
import { parseResourceDocuments } from '../../proto/resources/parse';
import type { Role } from '../../proto/resources/schema';
import { loginDecision, nodeLogins, sessionMfaRequired } from './access';
import type { NodeTarget } from './access';

const SEED_ROLES = `# access-dev.yaml
kind: role
version: v7
metadata:
  name: access-dev
spec:
  allow:
    node_labels:
      env: dev
    logins:
      - jerry
---
# access-prod.yaml
kind: role
version: v7
metadata:
  name: access-prod
spec:
  options:
    # require per-session MFA for production access
    require_session_mfa: true
  allow:
    node_labels:
      env: prod
    logins:
      - jerry
  deny: {}
`;

// "Olga then assigns both roles to all engineers, including Jerry."
const jerry = parseResourceDocuments(SEED_ROLES) as Role[];
const dev1: NodeTarget = { name: 'dev1.example.com', labels: { env: 'dev' } };
const prod3: NodeTarget = { name: 'prod3.example.com', labels: { env: 'prod' } };
const staging: NodeTarget = { name: 'stage1', labels: { env: 'staging' } };

function role(name: string, spec: Role['spec']): Role {
  return { kind: 'role', version: 'v7', metadata: { name }, spec };
}

describe("the seed's Jerry and Olga", () => {
  it('When Jerry logs into node dev1.example.com as jerry, nothing special happens', () => {
    expect(loginDecision(jerry, {}, dev1, 'jerry')).toEqual({ allowed: true });
    expect(sessionMfaRequired(false, jerry, dev1)).toBe(false);
  });

  it('when Jerry logs into prod3.example.com as jerry, he gets prompted for an MFA check', () => {
    expect(loginDecision(jerry, {}, prod3, 'jerry')).toEqual({ allowed: true });
    expect(sessionMfaRequired(false, jerry, prod3)).toBe(true);
  });

  it('If per-session MFA was enabled cluster-wide, Jerry would be prompted even when logging into dev1', () => {
    expect(sessionMfaRequired(true, jerry, dev1)).toBe(true);
    expect(sessionMfaRequired(true, jerry, prod3)).toBe(true);
  });

  it('a role’s require_session_mfa applies only to nodes its allow matches', () => {
    expect(sessionMfaRequired(false, jerry, staging)).toBe(false);
    // A hardware-key value of require_session_mfa is a key policy, not per-session MFA.
    expect(sessionMfaRequired('hardware_key_touch', jerry, dev1)).toBe(false);
  });

  it('no other login, and no node without a matching label', () => {
    expect(loginDecision(jerry, {}, dev1, 'root')).toMatchObject({ allowed: false });
    expect(loginDecision(jerry, {}, staging, 'jerry')).toMatchObject({ allowed: false });
    expect(nodeLogins(jerry, {}, dev1)).toEqual(['jerry']);
    expect(nodeLogins(jerry, {}, staging)).toEqual([]);
  });
});

describe('loginDecision', () => {
  const ops = role('ops', { allow: { logins: ['{{internal.logins}}', 'ops'], node_labels: { '*': '*' } } });

  it('expands traits and matches the wildcard label', () => {
    expect(loginDecision([ops], { logins: ['kim'] }, staging, 'kim')).toEqual({ allowed: true });
    expect(nodeLogins([ops], { logins: ['kim'] }, staging)).toEqual(['kim', 'ops']);
  });

  it('deny wins: a denied node for every login, a denied login on every node', () => {
    const noProd = role('no-prod', { deny: { node_labels: { env: 'prod' } } });
    const noOps = role('no-ops', { deny: { logins: ['ops'] } });
    expect(loginDecision([ops, noProd], {}, prod3, 'ops')).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('no-prod denies node'),
    });
    expect(loginDecision([ops, noProd], {}, dev1, 'ops')).toEqual({ allowed: true });
    expect(loginDecision([ops, noOps], {}, dev1, 'ops')).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('denies login "ops"'),
    });
    expect(nodeLogins([ops, noOps], { logins: ['kim'] }, dev1)).toEqual(['kim']);
  });

  it('a role with logins but no node_labels grants no node; empty labels match nothing', () => {
    const loginsOnly = role('logins-only', { allow: { logins: ['jerry'] } });
    const emptyLabels = role('empty', { allow: { logins: ['jerry'], node_labels: {} } });
    expect(loginDecision([loginsOnly, emptyLabels], {}, dev1, 'jerry')).toMatchObject({ allowed: false });
  });

  it('label values may be a list', () => {
    const devAndStaging = role('ds', {
      allow: { logins: ['jerry'], node_labels: { env: ['dev', 'staging'] } },
    });
    expect(loginDecision([devAndStaging], {}, staging, 'jerry')).toEqual({ allowed: true });
    expect(loginDecision([devAndStaging], {}, prod3, 'jerry')).toMatchObject({ allowed: false });
  });
});
