import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  claimPatternKind,
  compileClaimMappings,
  compileClaimPattern,
  mapClaimsToRoles,
  MAX_CLAIM_VALUE_LENGTH,
  roleTemplateProblem,
} from './claims-mapping';
import type { ClaimMapping, ClaimPattern, CompiledClaimMapping } from './claims-mapping';

function compiled(mappings: ClaimMapping[]): CompiledClaimMapping[] {
  const result = compileClaimMappings(mappings);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

function pattern(value: string): ClaimPattern {
  const result = compileClaimPattern(value);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9@._+:-]{0,252}$/;

describe('claims_to_roles values', () => {
  it.each([
    ['admins', 'literal'],
    ['team-*', 'glob'],
    ['*', 'glob'],
    ['^admin-(.*)$', 'regexp'],
    ['^', 'literal'],
    ['$', 'literal'],
    ['a$', 'literal'],
  ] as const)('%j is a %s', (value, kind) => {
    expect(claimPatternKind(value)).toBe(kind);
  });

  it('maps a literal only to the same value', () => {
    const mappings = compiled([{ claim: 'groups', value: 'admins', roles: ['editor'] }]);
    expect(mapClaimsToRoles(mappings, { groups: ['admins'] }).roles).toEqual(['editor']);
    expect(mapClaimsToRoles(mappings, { groups: ['admins2', 'xadmins', 'admin'] }).roles).toEqual([]);
  });

  it('quotes a literal: its dots and brackets are no expression', () => {
    const mappings = compiled([{ claim: 'groups', value: 'a.b[c]', roles: ['editor'] }]);
    expect(mapClaimsToRoles(mappings, { groups: 'a.b[c]' }).roles).toEqual(['editor']);
    expect(mapClaimsToRoles(mappings, { groups: 'axb[c]' }).roles).toEqual([]);
  });

  it('maps a wildcard and expands its star as $1', () => {
    const mappings = compiled([{ claim: 'groups', value: 'team-*', roles: ['$1-access', 'access'] }]);
    const result = mapClaimsToRoles(mappings, { groups: ['team-db', 'other', 'team-web'] });
    expect(result.roles).toEqual(['db-access', 'access', 'web-access']);
    expect(result.matches.map((match) => match.claimValue)).toEqual(['team-db', 'team-web']);
  });

  it('maps a regular expression with numbered and named groups, ${n} and $name', () => {
    const mappings = compiled([
      { claim: 'groups', value: '^admin-(.*)$', roles: ['$1', '${1}-admin'] },
      { claim: 'email', value: '^(?P<who>[a-z]+)@example\\.com$', roles: ['user-$who'] },
    ]);
    const result = mapClaimsToRoles(mappings, { groups: ['admin-editor'], email: 'alice@example.com' });
    expect(result.roles).toEqual(['editor', 'editor-admin', 'user-alice']);
  });

  it('matches the whole claim value, not a part of it (stricter than Teleport)', () => {
    const mappings = compiled([{ claim: 'groups', value: '^admin|ops$', roles: ['editor'] }]);
    expect(mapClaimsToRoles(mappings, { groups: ['adminfoo', 'fooops'] }).roles).toEqual([]);
    expect(mapClaimsToRoles(mappings, { groups: ['ops'] }).roles).toEqual(['editor']);
  });

  it('gives no role when nothing matches, when the claim is missing, or has another shape', () => {
    const mappings = compiled([{ claim: 'groups', value: 'admins', roles: ['editor'] }]);
    for (const claims of [
      {},
      { groups: [] },
      { groups: 'users' },
      { groups: 42 },
      { groups: { admins: true } },
      { groups: [1, null, ['admins']] },
      { other: 'admins' },
    ]) {
      expect(mapClaimsToRoles(mappings, claims)).toEqual({ roles: [], matches: [], warnings: [] });
    }
  });

  it('warns and gives nothing for a value that matches only in another case', () => {
    const mappings = compiled([{ claim: 'groups', value: 'Admins', roles: ['editor'] }]);
    const result = mapClaimsToRoles(mappings, { groups: ['admins'] });
    expect(result.roles).toEqual([]);
    expect(result.warnings[0]).toMatch(/only in another case/);
  });

  it('drops an expanded role that is no role name, and an empty one', () => {
    const mappings = compiled([{ claim: 'groups', value: 'x-*', roles: ['$1'] }]);
    const result = mapClaimsToRoles(mappings, { groups: ['x-a b', 'x-', 'x-ok'] });
    expect(result.roles).toEqual(['ok']);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/"a b", which is no role name/);
  });

  it('ignores a claim value longer than the bound', () => {
    const mappings = compiled([{ claim: 'groups', value: '*', roles: ['editor'] }]);
    const result = mapClaimsToRoles(mappings, { groups: ['a'.repeat(MAX_CLAIM_VALUE_LENGTH + 1)] });
    expect(result.roles).toEqual([]);
    expect(result.warnings[0]).toMatch(/longer than/);
  });
});

describe('refused when the connector is loaded', () => {
  it.each([
    ['^(a|b)\\1$', /backreferences/],
    ['^(?=admin).*$', /lookarounds/],
    ['^(?!x)$', /linear time/],
    ['^a{1001}$', /repeat counts/],
    ['^(a{1000}){1000}$', /repeat counts/],
    ['^[a$', /missing closing/],
    ['', /must not be empty/],
    ['x'.repeat(1025), /at most 1024/],
  ])('value %j', (value, message) => {
    const result = compileClaimPattern(value);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(message);
  });

  it.each([
    ['$2', '^a-(.*)$', /names group \$2, but "\^a-\(\.\*\)\$" has groups \$1 to \$1/],
    ['$1', 'admins', /has no group/],
    ['$0', '^(.*)$', /names group \$0/],
    ['$1x', '^(.*)$', /write \$\{1\}x/],
    ['$team', '^(?P<who>.*)$', /names group "team"/],
    ['role with space', 'admins', /is not a role name/],
    ['$1 x', '^(.*)$', /characters a role name cannot hold/],
    ['-lead', 'admins', /is not a role name/],
  ])('role %j of value %j', (role, value, message) => {
    expect(roleTemplateProblem(role, pattern(value))).toMatch(message);
  });

  it('names the mapping and field of the first problem', () => {
    const result = compileClaimMappings([
      { claim: 'groups', value: 'ok', roles: ['editor'] },
      { claim: 'groups', value: '^x$', roles: ['editor', '$1'] },
    ]);
    expect(result).toEqual({
      ok: false,
      message: expect.stringMatching(/^claims_to_roles\[1\]\.roles\[1\] /),
    });
  });
});

describe('ReDoS', () => {
  it('matches a classic catastrophic pattern against a long hostile input in linear time', () => {
    // (a+)+$ backtracks 2^n ways in a backtracking engine: 30 characters already take seconds there.
    const mappings = compiled([
      { claim: 'groups', value: '^(a+)+$', roles: ['editor'] },
      { claim: 'groups', value: '^(x+x+)+y$', roles: ['editor'] },
    ]);
    const hostile = ['a'.repeat(MAX_CLAIM_VALUE_LENGTH - 1) + '!', 'x'.repeat(MAX_CLAIM_VALUE_LENGTH)];
    const started = performance.now();
    for (let round = 0; round < 20; round++) {
      expect(mapClaimsToRoles(mappings, { groups: hostile }).roles).toEqual([]);
    }
    // 40 matches of 1 KiB each; measured ≈ 10 ms here. The bound is generous for a loaded machine, and
    // still far below the 2^1000 steps a backtracking engine would take.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('properties', () => {
  const text = fc.string({ maxLength: 40 });
  const safeLiteral = text.filter((value) => value !== '' && claimPatternKind(value) === 'literal');

  it('a literal maps exactly the values equal to it', () => {
    fc.assert(
      fc.property(safeLiteral, text, (value, claimValue) => {
        const mappings = compiled([{ claim: 'c', value, roles: ['r'] }]);
        const roles = mapClaimsToRoles(mappings, { c: claimValue }).roles;
        expect(roles).toEqual(claimValue === value ? ['r'] : []);
        expect(mapClaimsToRoles(mappings, { c: value }).roles).toEqual(['r']);
      }),
    );
  });

  it('a prefix glob maps every value with that prefix, and $1 is the rest', () => {
    const prefix = fc.stringMatching(/^[a-z0-9.\-+]{0,12}$/);
    const rest = fc.stringMatching(/^[a-z0-9]{1,12}$/);
    fc.assert(
      fc.property(prefix, rest, text, (head, tail, other) => {
        const mappings = compiled([{ claim: 'c', value: `${head}*`, roles: ['r-$1'] }]);
        expect(mapClaimsToRoles(mappings, { c: head + tail }).roles).toEqual([`r-${tail}`]);
        if (!other.startsWith(head)) expect(mapClaimsToRoles(mappings, { c: other }).roles).toEqual([]);
      }),
    );
  });

  it('never throws on any claims, and grants only valid role names from the mappings', () => {
    const mappings = compiled([
      { claim: 'groups', value: '*', roles: ['$1', 'fixed'] },
      { claim: 'email', value: '^(.*)@(.*)$', roles: ['${2}', 'u-$1'] },
    ]);
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('groups', 'email', 'x'), fc.anything()), (claims) => {
        const result = mapClaimsToRoles(mappings, claims);
        for (const role of result.roles) expect(role).toMatch(ROLE_NAME);
        expect(new Set(result.roles).size).toBe(result.roles.length);
      }),
    );
  });

  it('compiling any value either succeeds or gives a message, never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (value) => {
        const result = compileClaimPattern(`^${value}$`);
        if (!result.ok) expect(result.message).toBeTypeOf('string');
      }),
    );
  });
});
