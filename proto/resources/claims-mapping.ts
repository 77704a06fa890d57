// claims_to_roles: which roles an SSO user's claims give, as Teleport's OIDC connector maps them
// (lib/services/traits.go). Pure: no I/O, no clock; the auth service calls it at each SSO login and the
// resource schema calls it to refuse a mapping when it is loaded.
//
// A mapping's `value` is
//   - a literal ("admins"), matched exactly;
//   - a glob: `*` stands for any run of characters and is a group ("team-*" → $1 is what follows "team-");
//   - a regular expression when it starts with `^` and ends with `$` ("^admin-(.*)$").
// Each role may name the value's groups as Go's Regexp.Expand does: `$1`, `${1}`, `$name`, `${name}`.
//
// Regular expressions come from an admin, claim values from the IdP (an attacker, in the seed's IdP
// compromise): both are untrusted input to the matcher. They run on re2js, a port of RE2 whose matching
// time is linear in the input, so no pattern can backtrack without bound; RE2 has no backreferences or
// lookarounds, and refuses them (and repeat counts over 1000) when the connector is loaded.
//
// Where Keyport is stricter than Teleport (each refused at load time, with the field's path):
//   - a value must match the *whole* claim value (Teleport replaces the matched part only, so `^a|b$`
//     mapped "axyz" to a role with "xyz" glued on);
//   - a role may name only groups the value has, and must be a valid role name around its references;
//   - an expanded role that is not a valid role name is dropped, with a warning.
import { RE2JS } from 're2js';

/** At most this many values of one claim are looked at (Entra ID sends at most 200 groups in a token). */
export const MAX_CLAIM_VALUES = 1024;
/** A claim value longer than this is ignored, with a warning. */
export const MAX_CLAIM_VALUE_LENGTH = 1024;
/** A mapping's `value`, as written. */
export const MAX_CLAIM_PATTERN_LENGTH = 1024;

/** The characters of a resource name (proto/resources/schema.ts RESOURCE_NAME), for expanded roles. */
const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9@._+:-]{0,252}$/;
const ROLE_NAME_CHARACTERS = /^[A-Za-z0-9@._+:-]*$/;

export type ClaimPatternKind = 'literal' | 'glob' | 'regexp';

export interface ClaimPattern {
  kind: ClaimPatternKind;
  /** The value as written in the mapping. */
  source: string;
  /** Groups that roles may name: 1..groupCount, and the named ones. */
  groupCount: number;
  groupNames: readonly string[];
  readonly exact: RE2JS;
  readonly caseInsensitive: RE2JS;
}

export type Compiled<T> = { ok: true; value: T } | { ok: false; message: string };

const RE2_META = /[\\.+*?()|[\]{}^$]/g;

function quoteMeta(text: string): string {
  return text.replace(RE2_META, (character) => `\\${character}`);
}

export function claimPatternKind(value: string): ClaimPatternKind {
  if (value.length >= 2 && value.startsWith('^') && value.endsWith('$')) return 'regexp';
  return value.includes('*') ? 'glob' : 'literal';
}

/** The expression a value stands for: a glob's `*` become `(.*)`, everything else quoted. */
function expressionOf(value: string, kind: ClaimPatternKind): string {
  if (kind === 'regexp') return value;
  return `^${value.split('*').map(quoteMeta).join('(.*)')}$`;
}

/** Compiles a mapping's `value`; a pattern RE2 refuses (or an empty or over-long one) is a message. */
export function compileClaimPattern(value: string): Compiled<ClaimPattern> {
  if (value === '') return { ok: false, message: 'must not be empty' };
  if (value.length > MAX_CLAIM_PATTERN_LENGTH) {
    return { ok: false, message: `must be at most ${MAX_CLAIM_PATTERN_LENGTH} characters` };
  }
  const kind = claimPatternKind(value);
  const expression = expressionOf(value, kind);
  try {
    const exact = RE2JS.compile(expression);
    const caseInsensitive = RE2JS.compile(expression, RE2JS.CASE_INSENSITIVE);
    return {
      ok: true,
      value: {
        kind,
        source: value,
        groupCount: exact.groupCount(),
        groupNames: Object.keys(exact.namedGroups()),
        exact,
        caseInsensitive,
      },
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      message:
        `is not a regular expression Keyport can match in linear time (${reason}); ` +
        'backreferences, lookarounds and repeat counts over 1000 are not supported',
    };
  }
}

// ---------------------------------------------------------------------------------------------------
// Role templates: Go's Regexp.Expand syntax

type TemplatePart = { literal: string } | { group: string };

const GROUP_NAME = /^[A-Za-z0-9_]+/;

/**
 * A role template in parts, as Go's Regexp.Expand reads it: `$$` is a `$`; `$name` takes the longest
 * run of letters, digits and `_` (so `$1x` names "1x", not group 1 then "x": write `${1}x`); a `$`
 * followed by anything else is kept as text.
 */
function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let literal = '';
  let index = 0;
  while (index < template.length) {
    const dollar = template.indexOf('$', index);
    if (dollar === -1) {
      literal += template.slice(index);
      break;
    }
    literal += template.slice(index, dollar);
    const rest = template.slice(dollar + 1);
    if (rest.startsWith('$')) {
      literal += '$';
      index = dollar + 2;
      continue;
    }
    let name: string | undefined;
    let length = 0;
    if (rest.startsWith('{')) {
      const close = rest.indexOf('}');
      const inner = close === -1 ? undefined : rest.slice(1, close);
      if (inner !== undefined && GROUP_NAME.exec(inner)?.[0] === inner) {
        name = inner;
        length = close + 1;
      }
    } else {
      name = GROUP_NAME.exec(rest)?.[0];
      length = name?.length ?? 0;
    }
    if (name === undefined) {
      literal += '$';
      index = dollar + 1;
      continue;
    }
    if (literal !== '') parts.push({ literal });
    literal = '';
    parts.push({ group: name });
    index = dollar + 1 + length;
  }
  if (literal !== '') parts.push({ literal });
  return parts;
}

function isNumeric(name: string): boolean {
  return /^[0-9]+$/.test(name);
}

/** Why `template` cannot be a role of a mapping whose value is `pattern`; undefined when it can. */
export function roleTemplateProblem(template: string, pattern: ClaimPattern): string | undefined {
  const parts = parseTemplate(template);
  const groups = parts.flatMap((part) => ('group' in part ? [part.group] : []));
  if (groups.length === 0) {
    return ROLE_NAME.test(template)
      ? undefined
      : 'is not a role name: letters, digits and @ . _ + : - (starting with a letter or digit)';
  }
  for (const name of groups) {
    if (isNumeric(name)) {
      const index = Number(name);
      if (index === 0 || index > pattern.groupCount) {
        const has =
          pattern.groupCount === 0
            ? `${JSON.stringify(pattern.source)} has no group`
            : `${JSON.stringify(pattern.source)} has groups $1 to $${pattern.groupCount}`;
        return `names group $${name}, but ${has}`;
      }
    } else if (!pattern.groupNames.includes(name)) {
      const digits = /^([0-9]+)(.+)$/.exec(name);
      const hint =
        digits === null ? '' : ` (Go reads $${name} as one name; write \${${digits[1]}}${digits[2]})`;
      return `names group "${name}", which ${JSON.stringify(pattern.source)} does not have${hint}`;
    }
  }
  const literals = parts.flatMap((part) => ('literal' in part ? [part.literal] : [])).join('');
  if (!ROLE_NAME_CHARACTERS.test(literals)) {
    return 'has characters a role name cannot hold (letters, digits and @ . _ + : - only) around its groups';
  }
  return undefined;
}

/** The role `template` names for one match; groups that did not take part expand to nothing. */
function expandTemplate(template: string, group: (name: string) => string): string {
  return parseTemplate(template)
    .map((part) => ('literal' in part ? part.literal : group(part.group)))
    .join('');
}

// ---------------------------------------------------------------------------------------------------
// Mapping claims

export interface ClaimMapping {
  claim: string;
  value: string;
  roles: readonly string[];
}

export interface CompiledClaimMapping {
  claim: string;
  pattern: ClaimPattern;
  roles: readonly string[];
}

/** Every mapping compiled; the first that cannot be is an error naming its index and field. */
export function compileClaimMappings(mappings: readonly ClaimMapping[]): Compiled<CompiledClaimMapping[]> {
  const compiled: CompiledClaimMapping[] = [];
  for (const [index, mapping] of mappings.entries()) {
    const pattern = compileClaimPattern(mapping.value);
    if (!pattern.ok) return { ok: false, message: `claims_to_roles[${index}].value ${pattern.message}` };
    for (const [roleIndex, role] of mapping.roles.entries()) {
      const problem = roleTemplateProblem(role, pattern.value);
      if (problem !== undefined) {
        return { ok: false, message: `claims_to_roles[${index}].roles[${roleIndex}] ${problem}` };
      }
    }
    compiled.push({ claim: mapping.claim, pattern: pattern.value, roles: mapping.roles });
  }
  return { ok: true, value: compiled };
}

export interface ClaimMatch {
  /** Index of the mapping in claims_to_roles. */
  mapping: number;
  claim: string;
  claimValue: string;
  roles: string[];
}

export interface RoleMapping {
  /** The roles granted, each once, in the order first mapped; empty when nothing matched (deny). */
  roles: string[];
  matches: ClaimMatch[];
  /** Claim values ignored or matched only in another case, expanded names that are no role name. */
  warnings: string[];
}

/** The string values of a claim: a string, or the strings of a list; anything else has none. */
function claimValues(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim)) {
    return claim.slice(0, MAX_CLAIM_VALUES).filter((item): item is string => typeof item === 'string');
  }
  return [];
}

/**
 * The roles `claims` (an ID token's or userinfo's claims, as decoded JSON) map to. Never throws: a
 * claim of another shape, or a value too long to consider, maps nothing.
 */
export function mapClaimsToRoles(
  mappings: readonly CompiledClaimMapping[],
  claims: Readonly<Record<string, unknown>>,
): RoleMapping {
  const roles: string[] = [];
  const matches: ClaimMatch[] = [];
  const warnings: string[] = [];
  for (const [index, mapping] of mappings.entries()) {
    if (!Object.hasOwn(claims, mapping.claim)) continue;
    for (const claimValue of claimValues(claims[mapping.claim])) {
      if (claimValue.length > MAX_CLAIM_VALUE_LENGTH) {
        warnings.push(
          `a value of claim "${mapping.claim}" is longer than ${MAX_CLAIM_VALUE_LENGTH} characters and was ignored`,
        );
        continue;
      }
      const matcher = mapping.pattern.exact.matcher(claimValue);
      if (!matcher.matches()) {
        if (mapping.pattern.caseInsensitive.matcher(claimValue).matches()) {
          warnings.push(
            `claim "${mapping.claim}" value ${JSON.stringify(claimValue)} matches ${JSON.stringify(mapping.pattern.source)} only in another case; no role given`,
          );
        }
        continue;
      }
      const group = (name: string): string =>
        (isNumeric(name) ? matcher.group(Number(name)) : matcher.group(name)) ?? '';
      const granted: string[] = [];
      for (const template of mapping.roles) {
        const role = expandTemplate(template, group);
        if (role === '') continue;
        if (!ROLE_NAME.test(role)) {
          warnings.push(
            `claim "${mapping.claim}" value ${JSON.stringify(claimValue)} expands ${JSON.stringify(template)} to ${JSON.stringify(role)}, which is no role name`,
          );
          continue;
        }
        granted.push(role);
        if (!roles.includes(role)) roles.push(role);
      }
      if (granted.length > 0)
        matches.push({ mapping: index, claim: mapping.claim, claimValue, roles: granted });
    }
  }
  return { roles, matches, warnings };
}
