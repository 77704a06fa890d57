// The building blocks of resource schemas (proto/resources/schema.ts, oidc.ts): zod pieces with messages
// that say what was expected and what was found, bounded lists and maps, metadata, versions, durations.
import { z } from 'zod';
import { parseGoDurationSeconds } from './duration';

// ---------------------------------------------------------------------------------------------------
// Messages

export function describeValue(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null (an empty value)';
  if (typeof input === 'string') return JSON.stringify(input);
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  return typeof input;
}

export function expectedOneOf(input: unknown, values: readonly unknown[]): string {
  const choices = values.map(String).join(', ');
  return input === undefined
    ? `required; expected one of: ${choices}`
    : `invalid value ${describeValue(input)}; expected one of: ${choices}`;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
};

/** Turns zod's issues into sentences that name what was expected and what was found. */
export const resourceErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required field is missing';
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case 'invalid_value':
      return expectedOneOf(issue.input, issue.values);
    case 'too_small':
      if (issue.origin === 'array') return 'must not be empty';
      if (issue.origin === 'string') return 'must not be empty';
      return undefined;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${String(issue.maximum)} characters`;
      return undefined;
    default:
      return undefined;
  }
};

/** An object that rejects unknown keys and, when it does, lists the keys it knows. */
export function strictFields<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `allowed fields: ${allowed}` : undefined),
  });
}

export function choice<const Values extends readonly [string, ...string[]]>(values: Values) {
  return z.enum(values, { error: (issue) => expectedOneOf(issue.input, values) });
}

// ---------------------------------------------------------------------------------------------------
// Shared pieces

export const RESOURCE_NAME = /^[A-Za-z0-9][A-Za-z0-9@._+:-]*$/;
export const resourceName = z.string().min(1).max(253).regex(RESOURCE_NAME, {
  error: 'may contain only letters, digits and @ . _ + : - (and start with a letter or digit)',
});
export const nonEmptyString = z.string().min(1).max(1024);

/** Entries in any list or map of a resource: a role with 100,000 logins is not a role. */
export const MAX_LIST_ENTRIES = 64;

/** A list of at most MAX_LIST_ENTRIES, duplicates dropped (first one kept, order kept). */
export function list<Item extends z.ZodType>(item: Item, options: { min?: number; unique?: boolean } = {}) {
  return z
    .array(item)
    .min(options.min ?? 0)
    .max(MAX_LIST_ENTRIES, { error: `at most ${MAX_LIST_ENTRIES} entries` })
    .transform((values) => {
      if (options.unique === false) return values;
      const seen = new Set<string>();
      return values.filter((value) => {
        const key = JSON.stringify(value);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    });
}

/** A map of at most MAX_LIST_ENTRIES keys. */
export function boundedRecord<Value extends z.ZodType>(value: Value) {
  return z.record(nonEmptyString, value).refine((record) => Object.keys(record).length <= MAX_LIST_ENTRIES, {
    error: `at most ${MAX_LIST_ENTRIES} entries`,
  });
}

export const labels = boundedRecord(z.string().max(1024));

export const metadata = strictFields({
  name: resourceName,
  description: z.string().max(1024).optional(),
  labels: labels.optional(),
});

export function versionField<const Versions extends readonly [string, ...string[]]>(versions: Versions) {
  const newest = versions[versions.length - 1] as Versions[number];
  // A missing version means the newest: keyport implements no version-specific behaviour, and the
  // seed documents show fragments without one. Make it required if versions ever diverge here.
  return z
    .enum(versions, {
      error: (issue) =>
        `unsupported version ${describeValue(issue.input)}; expected one of: ${versions.join(', ')}`,
    })
    .default(newest);
}

export function invalidDuration(input: unknown): string {
  return `invalid duration ${describeValue(input)}; use a Go-style duration such as 8h or 30m`;
}

export const goDuration = z
  .string({ error: (issue) => invalidDuration(issue.input) })
  .superRefine((text, context) => {
    const seconds = parseGoDurationSeconds(text);
    if (seconds === undefined) context.addIssue({ code: 'custom', message: invalidDuration(text) });
    else if (seconds <= 0) context.addIssue({ code: 'custom', message: 'must be longer than zero, e.g. 8h' });
  });
