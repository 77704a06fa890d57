/** A value such as `{{internal.logins}}`, `{{external["groups"]}}` or `ops-{{external.team}}`. */
export interface TraitTemplate {
  prefix: string;
  namespace: 'internal' | 'external';
  trait: string;
  suffix: string;
}

export type ParsedTraitValue =
  | { kind: 'literal'; value: string }
  | { kind: 'template'; template: TraitTemplate }
  | { kind: 'invalid'; reason: string };

const TEMPLATE =
  /^([^{}]*)\{\{\s*(internal|external)(?:\.([A-Za-z0-9_-]+)|\[\s*"([^"]+)"\s*\])\s*\}\}([^{}]*)$/;

export function parseTraitValue(value: string): ParsedTraitValue {
  if (!value.includes('{') && !value.includes('}')) return { kind: 'literal', value };
  const match = TEMPLATE.exec(value);
  const trait = match?.[3] ?? match?.[4];
  if (match === null || trait === undefined) {
    return {
      kind: 'invalid',
      reason:
        `unsupported trait expression ${JSON.stringify(value)}; ` +
        'use {{internal.NAME}} or {{external.NAME}} (optionally with literal text around it)',
    };
  }
  return {
    kind: 'template',
    template: {
      prefix: match[1] ?? '',
      namespace: match[2] === 'internal' ? 'internal' : 'external',
      trait,
      suffix: match[5] ?? '',
    },
  };
}

const USABLE_VALUE = /^[^\s{}]+$/;

/**
 * Expands one role value against a user's traits. `internal.X` and `external.X` both read trait X:
 * keyport stores locally defined traits (logins, ...) and those asserted by an SSO connector in the
 * same map on the user. Values that cannot be a login (empty, whitespace) are dropped, as Teleport does.
 */
export function expandTraitValue(
  value: string,
  traits: Readonly<Record<string, readonly string[]>>,
): string[] {
  const parsed = parseTraitValue(value);
  if (parsed.kind === 'literal') return [parsed.value];
  if (parsed.kind === 'invalid') return [];
  const { prefix, trait, suffix } = parsed.template;
  return (traits[trait] ?? [])
    .map((traitValue) => `${prefix}${traitValue}${suffix}`)
    .filter((v) => USABLE_VALUE.test(v));
}
