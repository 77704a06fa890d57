import YAML, { isNode, LineCounter } from 'yaml';
import type { Document } from 'yaml';
import type { z } from 'zod';
import { formatFieldPath, ResourceError } from './errors';
import type { FieldIssue, PathSegment } from './errors';
import { describeValue, KIND_ALIASES, RESOURCE_KINDS, resourceErrorMap, resourceSchemas } from './schema';
import type {
  CaEntryMode,
  ClusterAuthPreferenceSpec,
  Resource,
  ResourceKind,
  UserWithStatus,
} from './schema';

export { ResourceError, formatFieldPath } from './errors';
export type { FieldIssue, PathSegment } from './errors';

export interface ParseOptions {
  /** 'pem-only' (the default, for the auth service) or 'pem-or-path' (for the CLI, before resolveCaFiles). */
  caEntries?: CaEntryMode;
}

interface RawIssue {
  path: PathSegment[];
  message: string;
}

type Validation<T> = { ok: true; value: T } | { ok: false; issues: RawIssue[] };

const PLACEHOLDER_MESSAGE = '"..." is a documentation placeholder; replace it with real values';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Strings that are just "..." come from documentation snippets; say so instead of "expected a mapping". */
function placeholderIssues(value: unknown, path: PathSegment[] = []): RawIssue[] {
  if (typeof value === 'string')
    return value.trim() === '...' ? [{ path, message: PLACEHOLDER_MESSAGE }] : [];
  if (Array.isArray(value)) return value.flatMap((item, index) => placeholderIssues(item, [...path, index]));
  if (isRecord(value))
    return Object.entries(value).flatMap(([key, item]) => placeholderIssues(item, [...path, key]));
  return [];
}

function zodIssues(error: z.ZodError): RawIssue[] {
  return error.issues.flatMap((issue): RawIssue[] => {
    const path = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...path, key], message: `unknown field; ${issue.message}` }));
    }
    return [{ path, message: issue.message }];
  });
}

function validateWith<T>(schema: z.ZodType<T>, value: unknown): Validation<T> {
  const placeholders = placeholderIssues(value);
  if (placeholders.length > 0) return { ok: false, issues: placeholders };
  const result = schema.safeParse(value, { error: resourceErrorMap });
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: zodIssues(result.error) };
}

const KIND_CHOICES = `${RESOURCE_KINDS.join(', ')} (alias: ${Object.keys(KIND_ALIASES).join(', ')})`;

function canonicalKind(kind: string): ResourceKind | undefined {
  return (RESOURCE_KINDS as readonly string[]).includes(kind) ? (kind as ResourceKind) : KIND_ALIASES[kind];
}

/** Resources nest a few levels (spec.allow.rules[i].verbs[j]); deeper input is refused, never recursed. */
export const MAX_RESOURCE_DEPTH = 32;

/** The path of the first value nested deeper than `max`, found without recursion; undefined if none. */
function tooDeep(value: unknown, max: number): PathSegment[] | undefined {
  const stack: { node: unknown; path: PathSegment[] }[] = [{ node: value, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (path.length >= max) return path;
    for (const [key, child] of Object.entries(node)) {
      stack.push({ node: child, path: [...path, Array.isArray(node) ? Number(key) : key] });
    }
  }
  return undefined;
}

function validateResource(value: unknown, options: ParseOptions): Validation<Resource> {
  const deep = tooDeep(value, MAX_RESOURCE_DEPTH);
  if (deep) {
    return {
      ok: false,
      issues: [{ path: deep.slice(0, 4), message: `nested more than ${MAX_RESOURCE_DEPTH} levels deep` }],
    };
  }
  if (!isRecord(value)) {
    return {
      ok: false,
      issues: [
        {
          path: [],
          message: `expected a resource document (kind, version, metadata, spec), got ${describeValue(value)}`,
        },
      ],
    };
  }
  if (value.kind === undefined) {
    return {
      ok: false,
      issues: [{ path: ['kind'], message: `required field is missing; expected one of: ${KIND_CHOICES}` }],
    };
  }
  const kind = typeof value.kind === 'string' ? canonicalKind(value.kind) : undefined;
  if (kind === undefined) {
    return {
      ok: false,
      issues: [
        {
          path: ['kind'],
          message: `unknown kind ${describeValue(value.kind)}; expected one of: ${KIND_CHOICES}`,
        },
      ],
    };
  }
  const schemas = resourceSchemas[options.caEntries ?? 'pem-only'];
  switch (kind) {
    case 'user':
      return validateWith(schemas.user, value);
    case 'role':
      return validateWith(schemas.role, value);
    case 'cluster_auth_preference':
      return validateWith(schemas.cluster_auth_preference, value);
    case 'node':
      return validateWith(schemas.node, value);
    case 'oidc':
      return validateWith(schemas.oidc, value);
  }
}

/** Field issues in document order when lines are known (zod reports unknown keys last). */
function toFieldIssues(
  issues: readonly RawIssue[],
  prefix: string,
  lineOf?: (path: PathSegment[]) => number | undefined,
): FieldIssue[] {
  return issues
    .map((issue) => ({ issue, line: lineOf?.(issue.path) }))
    .sort((left, right) => (left.line ?? Number.MAX_SAFE_INTEGER) - (right.line ?? Number.MAX_SAFE_INTEGER))
    .map(({ issue, line }) => ({
      fieldPath: formatFieldPath(issue.path, prefix),
      message: line === undefined ? issue.message : `${issue.message} (line ${line})`,
    }));
}

function throwIssues(issues: readonly FieldIssue[]): never {
  const [first, ...rest] = issues;
  throw first === undefined
    ? ResourceError.single('', 'invalid resource')
    : new ResourceError([first, ...rest]);
}

/** Validates an already-decoded document (e.g. from a config file). */
export function parseResourceValue(
  value: unknown,
  options: ParseOptions = {},
  fieldPathPrefix = '',
): Resource {
  const result = validateResource(value, options);
  if (!result.ok) throwIssues(toFieldIssues(result.issues, fieldPathPrefix));
  return result.value;
}

/** Validates a cluster_auth_preference spec found elsewhere, e.g. `auth_service.authentication` in the config file. */
export function parseCapSpecValue(
  value: unknown,
  options: ParseOptions = {},
  fieldPathPrefix = 'spec',
): ClusterAuthPreferenceSpec {
  const result = validateWith(
    resourceSchemas[options.caEntries ?? 'pem-only'].clusterAuthPreferenceSpec,
    value,
  );
  if (!result.ok) throwIssues(toFieldIssues(result.issues, fieldPathPrefix));
  return result.value;
}

/** The resource a JSON document (the wire form of the admin API) holds. */
export function parseResourceJson(json: string, options: ParseOptions = {}): Resource {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw ResourceError.single(
      '',
      `invalid JSON: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  return parseResourceValue(value, options);
}

// ---------------------------------------------------------------------------------------------------
// YAML

const YAML_OPTIONS = { uniqueKeys: true, prettyErrors: true } as const;
/** Alias expansions one document may make: an "alias bomb" (a billion laughs) is refused. */
const MAX_ALIAS_COUNT = 100;

/** Runs the YAML library on untrusted text: a stack overflow on absurd nesting becomes a typed error. */
function guardedYaml<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof RangeError) {
      throw ResourceError.single('', 'invalid YAML: nested too deeply to read', { cause: error });
    }
    throw error;
  }
}

/** The document's plain value; too many alias expansions or too deep nesting are typed errors. */
function toPlainValue(document: Document): unknown {
  try {
    return document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
  } catch (error) {
    // yaml throws a ReferenceError for excessive aliases, and deep nesting can overflow the stack.
    if (error instanceof ReferenceError) {
      throw ResourceError.single(
        '',
        `invalid YAML: aliases expand too much (at most ${MAX_ALIAS_COUNT} expansions; an "alias bomb"?)`,
        { cause: error },
      );
    }
    if (error instanceof RangeError) {
      throw ResourceError.single('', 'invalid YAML: nested too deeply to read', { cause: error });
    }
    throw error;
  }
}

function lineFinder(document: Document, lineCounter: LineCounter) {
  return (path: PathSegment[]): number | undefined => {
    for (let length = path.length; length >= 0; length--) {
      const node: unknown = document.getIn(path.slice(0, length), true);
      if (isNode(node) && node.range !== undefined && node.range !== null) {
        return lineCounter.linePos(node.range[0]).line;
      }
    }
    return undefined;
  };
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

const KEY_LINE = /^\s*(?:-\s+)?([^\s#'"{[][^:#]*?):(?:\s|$)/;

/**
 * The keys enclosing line `lineIndex`, read from indentation alone; used when YAML itself cannot parse
 * the document, to still name the field that holds a "..." placeholder line.
 */
function enclosingKeys(lines: readonly string[], lineIndex: number): string[] | undefined {
  const keys: string[] = [];
  let indent = indentOf(lines[lineIndex] ?? '');
  for (let index = lineIndex - 1; index >= 0 && indent > 0; index--) {
    const line = lines[index] ?? '';
    if (line.trim() === '' || line.trimStart().startsWith('#') || indentOf(line) >= indent) continue;
    const key = KEY_LINE.exec(line)?.[1];
    if (key === undefined) return undefined;
    keys.unshift(key);
    indent = indentOf(line);
  }
  return keys;
}

function yamlSyntaxError(document: Document, text: string, prefix: string): ResourceError {
  const [error] = document.errors;
  // The parser caught its own stack overflow on absurd nesting: say what it means.
  if (error?.message.includes('Maximum call stack size exceeded')) {
    return ResourceError.single('', 'invalid YAML: nested too deeply to read', { cause: error });
  }
  const line = error?.linePos?.[0]?.line;
  const lines = text.split(/\r?\n/);
  if (line !== undefined && lines[line - 1]?.trim() === '...') {
    const keys = enclosingKeys(lines, line - 1);
    if (keys !== undefined) {
      return ResourceError.single(
        formatFieldPath(keys, prefix),
        `line ${line} is a "..." documentation placeholder for elided fields; write the fields out or delete the line`,
        { cause: error },
      );
    }
  }
  return ResourceError.single('', `invalid YAML: ${error?.message ?? 'unreadable document'}`, {
    cause: error,
  });
}

/**
 * Every resource in a YAML stream. Documents are separated by `---`; empty ones are skipped. When the
 * text holds more than one document, field paths start with `documents[i]`, i counting the non-empty
 * documents from 0 (so it is also the index into the returned array).
 */
export function parseResourceDocuments(text: string, options: ParseOptions = {}): Resource[] {
  const lineCounter = new LineCounter();
  const documents = guardedYaml(() => YAML.parseAllDocuments(text, { ...YAML_OPTIONS, lineCounter }));
  const present = (Array.isArray(documents) ? documents : [documents])
    .map((document) => ({
      document,
      value: document.errors.length > 0 ? undefined : toPlainValue(document),
    }))
    .filter(({ document, value }) => document.errors.length > 0 || (value !== null && value !== undefined));
  const several = present.length > 1;
  const prefixOf = (index: number) => (several ? `documents[${index}]` : '');

  present.forEach(({ document }, index) => {
    if (document.errors.length > 0) throw yamlSyntaxError(document, text, prefixOf(index));
  });

  const resources: Resource[] = [];
  const issues: FieldIssue[] = [];
  present.forEach(({ document, value }, index) => {
    const result = validateResource(value, options);
    if (result.ok) resources.push(result.value);
    else issues.push(...toFieldIssues(result.issues, prefixOf(index), lineFinder(document, lineCounter)));
  });
  if (issues.length > 0) throwIssues(issues);
  return resources;
}

/**
 * The cluster_auth_preference spec held by `auth_service.authentication` in a teleport.yaml-style
 * config file. Other sections belong to the config loader and are not looked at.
 */
export function parseAuthServiceAuthentication(
  text: string,
  options: ParseOptions = {},
): ClusterAuthPreferenceSpec {
  const lineCounter = new LineCounter();
  const document = guardedYaml(() => YAML.parseDocument(text, { ...YAML_OPTIONS, lineCounter }));
  if (document.errors.length > 0) throw yamlSyntaxError(document, text, '');
  const config: unknown = toPlainValue(document);
  const authService = isRecord(config) ? config.auth_service : undefined;
  const authentication = isRecord(authService) ? authService.authentication : undefined;
  if (authentication === undefined) {
    throw ResourceError.single('auth_service.authentication', 'required section is missing');
  }
  const result = validateWith(
    resourceSchemas[options.caEntries ?? 'pem-only'].clusterAuthPreferenceSpec,
    authentication,
  );
  if (!result.ok) {
    const lineOf = lineFinder(document, lineCounter);
    throwIssues(
      toFieldIssues(result.issues, 'auth_service.authentication', (path) =>
        lineOf(['auth_service', 'authentication', ...path]),
      ),
    );
  }
  return result.value;
}

/** YAML for a document, fields in the conventional order (kind, version, metadata, spec, status). */
export function formatResourceYaml(resource: Resource | UserWithStatus): string {
  const ordered: Record<string, unknown> = {
    kind: resource.kind,
    version: resource.version,
    metadata: resource.metadata,
    spec: resource.spec,
  };
  if ('status' in resource) ordered.status = resource.status;
  // Version 1.1 output quotes strings such as "on"/"off" that YAML 1.1 readers would take as booleans.
  return new YAML.Document(ordered, { version: '1.1' }).toString({ lineWidth: 0 });
}

export function resourceKey(resource: Resource): { kind: ResourceKind; name: string } {
  return { kind: resource.kind, name: resource.metadata.name };
}
