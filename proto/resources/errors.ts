export type PathSegment = string | number;

export interface FieldIssue {
  /** Dotted path into the document, e.g. `spec.allow.logins[0]`; '' when the problem is the whole text. */
  fieldPath: string;
  message: string;
}

/**
 * Every invalid resource surfaces as this one error type, so the API layer can map it to
 * INVALID_ARGUMENT and the CLI can point at the offending field.
 */
export class ResourceError extends Error {
  readonly code = 'INVALID_ARGUMENT' as const;
  /** The first issue's path; `issues` holds every problem found. */
  readonly fieldPath: string;
  readonly issues: readonly FieldIssue[];

  constructor(issues: readonly [FieldIssue, ...FieldIssue[]], options?: { cause?: unknown }) {
    super(issues.map(describeIssue).join('\n'), options);
    this.name = 'ResourceError';
    this.fieldPath = issues[0].fieldPath;
    this.issues = issues;
  }

  static single(fieldPath: string, message: string, options?: { cause?: unknown }): ResourceError {
    return new ResourceError([{ fieldPath, message }], options);
  }
}

function describeIssue(issue: FieldIssue): string {
  return issue.fieldPath === '' ? issue.message : `${issue.fieldPath}: ${issue.message}`;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['spec', 'allow', 'logins', 0]` → `spec.allow.logins[0]`; odd keys are quoted: `node_labels["*"]`. */
export function formatFieldPath(segments: readonly PathSegment[], prefix = ''): string {
  let path = prefix;
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) path += path === '' ? segment : `.${segment}`;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}
