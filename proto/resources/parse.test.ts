import { describe, expect, it } from 'vitest';
import {
  formatResourceYaml,
  parseAuthServiceAuthentication,
  parseResourceDocuments,
  parseResourceJson,
  resourceKey,
  ResourceError,
} from './parse';
import type { ParseOptions } from './parse';
import type { Resource, UserWithStatus } from './schema';
import { indentBlock, TEST_CA_PEM } from './testing';

function parseError(text: string, options?: ParseOptions): ResourceError {
  try {
    parseResourceDocuments(text, options);
  } catch (error) {
    if (error instanceof ResourceError) return error;
    throw error;
  }
  throw new Error('expected a ResourceError');
}

const ROLE = `kind: role
version: v7
metadata:
  name: dev
spec:
  options:
    max_session_ttl: 8h
  allow:
    logins: [ubuntu]
`;

describe('parseResourceDocuments', () => {
  it('parses a role document', () => {
    expect(parseResourceDocuments(ROLE)).toEqual([
      {
        kind: 'role',
        version: 'v7',
        metadata: { name: 'dev' },
        spec: { options: { max_session_ttl: '8h' }, allow: { logins: ['ubuntu'] } },
      },
    ]);
  });

  it('rejects an unknown field, naming its path and the fields that are allowed', () => {
    const error = parseError(`kind: role\nversion: v7\nmetadata: {name: dev}\nspec:\n  optionz: {}\n`);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.fieldPath).toBe('spec.optionz');
    expect(error.message).toMatch(
      /^spec\.optionz: unknown field; allowed fields: options, allow, deny \(line 5\)$/,
    );
  });

  it('rejects an unknown top-level field and unknown fields deep inside', () => {
    expect(parseError(`${ROLE}status: {}\n`).fieldPath).toBe('status');
    expect(
      parseError(ROLE.replace('logins: [ubuntu]', 'logins: [ubuntu]\n    kubernetes_groups: [x]')).fieldPath,
    ).toBe('spec.allow.kubernetes_groups');
  });

  it('rejects a wrong type with its path', () => {
    const error = parseError(ROLE.replace('logins: [ubuntu]', 'logins: [ubuntu, 42]'));
    expect(error.fieldPath).toBe('spec.allow.logins[1]');
    expect(error.message).toContain('spec.allow.logins[1]: expected a string, got 42');
    expect(parseError(ROLE.replace('logins: [ubuntu]', 'logins: ubuntu')).fieldPath).toBe(
      'spec.allow.logins',
    );
  });

  it('names the field and the accepted form of an invalid duration', () => {
    const error = parseError(ROLE.replace('8h', '8x'));
    expect(error.fieldPath).toBe('spec.options.max_session_ttl');
    expect(error.message).toContain(
      'spec.options.max_session_ttl: invalid duration "8x"; use a Go-style duration such as 8h or 30m',
    );
  });

  it('reports every problem, in document order', () => {
    const error = parseError(
      `kind: role\nversion: v7\nmetadata: {name: dev}\nspec:\n  optionz: 1\n  options:\n    max_session_ttl: soon\n`,
    );
    expect(error.issues.map((issue) => issue.fieldPath)).toEqual([
      'spec.optionz',
      'spec.options.max_session_ttl',
    ]);
  });

  it('accepts the kind alias cap and stores the canonical kind', () => {
    const [cap] = parseResourceDocuments(`kind: cap\nversion: v2\nspec:\n  type: local\n`);
    expect(cap).toEqual({
      kind: 'cluster_auth_preference',
      version: 'v2',
      metadata: { name: 'cluster-auth-preference' },
      spec: { type: 'local' },
    });
  });

  it('rejects an unknown kind and a missing kind', () => {
    const unknown = parseError(`kind: rolez\nmetadata: {name: x}\nspec: {}\n`);
    expect(unknown.fieldPath).toBe('kind');
    expect(unknown.message).toContain(
      'unknown kind "rolez"; expected one of: user, role, cluster_auth_preference',
    );
    expect(parseError(`metadata: {name: x}\n`).fieldPath).toBe('kind');
  });

  it('rejects an unsupported version and defaults a missing one to the newest', () => {
    const error = parseError(ROLE.replace('v7', 'v4'));
    expect(error.fieldPath).toBe('version');
    expect(error.message).toContain('expected one of: v5, v6, v7, v8');
    const [role] = parseResourceDocuments(ROLE.replace('version: v7\n', ''));
    expect(role?.version).toBe('v8');
  });

  it('rejects a "..." placeholder body, naming the field', () => {
    const error = parseError(`${ROLE}  deny:\n    ...\n`);
    expect(error.fieldPath).toBe('spec.deny');
    expect(error.message).toContain('documentation placeholder');
  });

  it('names the field around "..." lines that stand for elided fields', () => {
    const error = parseError(
      `kind: cap\nmetadata:\n  ...\n  name: cluster-auth-preference\nspec:\n  type: local\n`,
    );
    expect(error.fieldPath).toBe('metadata');
    expect(error.message).toMatch(/line 3 is a "\.\.\." documentation placeholder/);
  });

  it('parses several documents and skips empty ones', () => {
    const text = `---\n${ROLE}---\n# only a comment\n---\nkind: cap\nspec: {}\n---\n`;
    const resources = parseResourceDocuments(text);
    expect(resources.map(resourceKey)).toEqual([
      { kind: 'role', name: 'dev' },
      { kind: 'cluster_auth_preference', name: 'cluster-auth-preference' },
    ]);
    expect(parseResourceDocuments('')).toEqual([]);
    expect(parseResourceDocuments('# nothing here\n')).toEqual([]);
  });

  it('prefixes field paths with the document index when there are several documents', () => {
    const text = `${ROLE}---\n---\nkind: cap\nspec:\n  type: ldap\n`;
    const error = parseError(text);
    expect(error.fieldPath).toBe('documents[1].spec.type');
    expect(error.message).toBe(
      'documents[1].spec.type: invalid value "ldap"; expected one of: local, oidc, saml, github (line 14)',
    );
  });

  it('reports invalid YAML with fieldPath "" and the line and column', () => {
    const error = parseError('kind: role\nmetadata: [unclosed\n');
    expect(error.fieldPath).toBe('');
    expect(error.message).toMatch(/^invalid YAML: .*line \d+, column \d+/);
    expect(parseError('kind: role\nkind: cap\n').message).toMatch(/unique/);
  });

  it('rejects a document that is not a mapping', () => {
    const error = parseError('- kind: role\n');
    expect(error.fieldPath).toBe('');
    expect(error.message).toContain('expected a resource document');
  });

  it('quotes label keys that are not plain identifiers in field paths', () => {
    const error = parseError(ROLE.replace('logins: [ubuntu]', 'node_labels:\n      "*": 5'));
    expect(error.fieldPath).toBe('spec.allow.node_labels["*"]');
  });

  it('reads on/off as strings (YAML 1.2) and accepts YAML 1.1 booleans for them', () => {
    const spec = (value: string) => {
      const [cap] = parseResourceDocuments(
        `kind: cap\nspec:\n  second_factor: ${value}\n  webauthn: {rp_id: example.com}\n`,
      );
      return cap?.kind === 'cluster_auth_preference' ? cap.spec.second_factor : undefined;
    };
    expect(spec('on')).toBe('on');
    expect(spec('off')).toBe('off');
    expect(spec('true')).toBe('on');
    expect(spec('false')).toBe('off');
  });
});

describe('CA entries on each side of the wire', () => {
  const capWith = (entry: string) =>
    `kind: cap\nspec:\n  webauthn:\n    rp_id: example.com\n    attestation_allowed_cas:\n      - ${entry}\n`;
  const pemEntry = `|\n${indentBlock(TEST_CA_PEM, 8)}`;

  it('accepts inline PEM on both sides', () => {
    for (const caEntries of ['pem-only', 'pem-or-path'] as const) {
      const [cap] = parseResourceDocuments(capWith(pemEntry), { caEntries });
      expect(cap?.kind === 'cluster_auth_preference' && cap.spec.webauthn?.attestation_allowed_cas).toEqual([
        TEST_CA_PEM,
      ]);
    }
  });

  it('accepts a file path in the CLI and rejects it on the server', () => {
    expect(parseResourceDocuments(capWith('/etc/ca.pem'), { caEntries: 'pem-or-path' })).toHaveLength(1);
    const error = parseError(capWith('/etc/ca.pem'));
    expect(error.fieldPath).toBe('spec.webauthn.attestation_allowed_cas[0]');
    expect(error.message).toContain('is a file path');
  });

  it('rejects a PEM body that is a "..." placeholder or not a certificate', () => {
    const placeholder = `|\n        -----BEGIN CERTIFICATE-----\n        ...\n        -----END CERTIFICATE-----`;
    expect(parseError(capWith(placeholder), { caEntries: 'pem-or-path' }).message).toContain('placeholder');
    const garbage = `|\n        -----BEGIN CERTIFICATE-----\n        bm90IGEgY2VydA==\n        -----END CERTIFICATE-----`;
    const error = parseError(capWith(garbage));
    expect(error.fieldPath).toBe('spec.webauthn.attestation_allowed_cas[0]');
    expect(error.message).toContain('does not parse as an X.509 certificate');
  });
});

describe('parseResourceJson', () => {
  it('parses the wire form and rejects bad JSON with fieldPath ""', () => {
    const role = parseResourceJson(
      JSON.stringify({ kind: 'role', version: 'v8', metadata: { name: 'r' }, spec: {} }),
    );
    expect(resourceKey(role)).toEqual({ kind: 'role', name: 'r' });
    try {
      parseResourceJson('{"kind": ');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ResourceError);
      expect((error as ResourceError).fieldPath).toBe('');
    }
  });

  it('accepts a user with a status and drops the status', () => {
    const user = parseResourceJson(
      JSON.stringify({
        kind: 'user',
        version: 'v2',
        metadata: { name: 'alice@example.com' },
        spec: { roles: ['access'], traits: { logins: ['alice'] } },
        status: { created_ms: 1, locked_until_ms: 2 },
      }),
    );
    expect(user).toEqual({
      kind: 'user',
      version: 'v2',
      metadata: { name: 'alice@example.com' },
      spec: { roles: ['access'], traits: { logins: ['alice'] } },
    });
  });
});

describe('formatResourceYaml', () => {
  it('prints documents that parse back to the same resource', () => {
    const resources: Resource[] = parseResourceDocuments(
      `${ROLE}---\nkind: cap\nspec:\n  second_factor: "on"\n  webauthn:\n    rp_id: example.com\n    attestation_allowed_cas:\n      - |\n${indentBlock(TEST_CA_PEM, 8)}\n  hardware_key: {piv_slot: 9e}\n`,
    );
    for (const resource of resources) {
      const yaml = formatResourceYaml(resource);
      expect(yaml.startsWith('kind: ')).toBe(true);
      expect(parseResourceDocuments(yaml)).toEqual([resource]);
    }
    expect(formatResourceYaml(resources[1] as Resource)).toContain('second_factor: "on"');
  });

  it('prints the status the server attaches to a user', () => {
    const user: UserWithStatus = {
      kind: 'user',
      version: 'v2',
      metadata: { name: 'alice' },
      spec: { roles: ['access'] },
      status: { created_ms: 1700000000000 },
    };
    expect(formatResourceYaml(user)).toContain('status:\n  created_ms: 1700000000000');
  });
});

describe('parseAuthServiceAuthentication', () => {
  it('reads the cap spec from a config file and prefixes field paths', () => {
    const config = `teleport:\n  nodename: x\nauth_service:\n  enabled: true\n  authentication:\n    type: local\n    second_factors: [otp]\n`;
    expect(parseAuthServiceAuthentication(config)).toEqual({ type: 'local', second_factors: ['otp'] });
    try {
      parseAuthServiceAuthentication(config.replace('type: local', 'typo: local'));
      expect.unreachable();
    } catch (error) {
      expect((error as ResourceError).fieldPath).toBe('auth_service.authentication.typo');
    }
  });
});

describe('hostile input', () => {
  const bomb = [
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
    'kind: role',
  ].join('\n');

  it('refuses a YAML alias bomb with a typed error', () => {
    expect(() => parseResourceDocuments(bomb)).toThrow(ResourceError);
    expect(() => parseResourceDocuments(bomb)).toThrow(/aliases expand too much/);
  });

  it('refuses JSON nested 100,000 deep with a typed error, not a stack overflow', () => {
    const deep = `{"kind":"role","spec":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(() => parseResourceJson(deep)).toThrow(ResourceError);
    expect(() => parseResourceJson(deep)).toThrow(/nested more than 32 levels deep/);
  });

  it('drops duplicate list entries and refuses lists over 64 entries, naming the field', () => {
    const user = (roles: string[]) =>
      JSON.stringify({ kind: 'user', version: 'v2', metadata: { name: 'lee' }, spec: { roles } });
    expect(parseResourceJson(user(['access', 'editor', 'access', 'access']))).toMatchObject({
      spec: { roles: ['access', 'editor'] },
    });
    const flood = () => parseResourceJson(user(Array.from({ length: 100_000 }, () => 'access')));
    expect(flood).toThrow(ResourceError);
    expect(flood).toThrow(/spec\.roles: at most 64 entries/);
  });

  it('refuses YAML nested 100,000 deep with a typed error', () => {
    const deep = `kind: role\nspec: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    expect(() => parseResourceDocuments(deep)).toThrow(ResourceError);
  });
});
