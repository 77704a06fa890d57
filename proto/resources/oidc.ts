// The `oidc` resource: an OpenID Connect connector in Teleport's shape (`kind: oidc`, `version: v3`), plus
// Keyport's `require_local_mfa`. Only fields Keyport acts on are accepted; Teleport's others (acr_values,
// provider, google_*, ...) are refused by name rather than silently ignored.
import { z } from 'zod';
import { compileClaimPattern, MAX_CLAIM_PATTERN_LENGTH, roleTemplateProblem } from './claims-mapping';
import {
  describeValue,
  invalidDuration,
  list,
  MAX_LIST_ENTRIES,
  metadata as plainMetadata,
  nonEmptyString,
  strictFields,
  versionField,
} from './fields';
import { parseGoDurationSeconds } from './duration';

export const OIDC_VERSIONS = ['v3'] as const;
/** Names the cluster_auth_preference gives meaning to as connector_name; no connector may take them. */
export const RESERVED_CONNECTOR_NAMES = ['local', 'passwordless'] as const;
export const OIDC_PROMPTS = ['none', 'login', 'consent', 'select_account'] as const;
export const MAX_URL_LENGTH = 2048;

/** Why `text` cannot be an https URL for `what`; undefined when it can. */
export function httpsUrlProblem(text: string, what: 'issuer' | 'redirect'): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `${describeValue(text)} is not a URL; expected https://HOST[:PORT]/PATH`;
  }
  if (url.protocol !== 'https:') {
    return `must be an https URL, got ${url.protocol.replace(/:$/, '')}: the ${what === 'issuer' ? "IdP's discovery and tokens" : "IdP's redirect with the authorization code"} would travel in the clear`;
  }
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password';
  if (url.hash !== '') return 'must not have a #fragment';
  // OpenID Connect Discovery 1.0 §3: the issuer is https, host, optional port and path; no query.
  if (what === 'issuer' && url.search !== '') return 'must not have a ?query (OpenID Connect Discovery §3)';
  return undefined;
}

function httpsUrl(what: 'issuer' | 'redirect') {
  return z
    .string()
    .min(1)
    .max(MAX_URL_LENGTH)
    .superRefine((value, context) => {
      const problem = httpsUrlProblem(value, what);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
    });
}

/** One https URL or a list of them (Teleport's v3 takes both and stores a list); a list it is. */
const redirectUrls = z
  .unknown()
  .superRefine((value, context) => {
    const check = (entry: unknown, path: (string | number)[]) => {
      const problem =
        typeof entry !== 'string'
          ? `expected an https URL, got ${describeValue(entry)}`
          : entry.length > MAX_URL_LENGTH
            ? `must be at most ${MAX_URL_LENGTH} characters`
            : httpsUrlProblem(entry, 'redirect');
      if (problem !== undefined) context.addIssue({ code: 'custom', path, message: problem });
    };
    if (Array.isArray(value)) {
      if (value.length === 0) context.addIssue({ code: 'custom', message: 'must not be empty' });
      else if (value.length > MAX_LIST_ENTRIES) {
        context.addIssue({ code: 'custom', message: `at most ${MAX_LIST_ENTRIES} entries` });
      } else value.forEach((entry, index) => check(entry, [index]));
    } else if (value === undefined) {
      context.addIssue({ code: 'custom', message: 'required field is missing' });
    } else check(value, []);
  })
  .transform((value) => [...new Set(typeof value === 'string' ? [value] : (value as string[]))]);

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;
const scope = z.string().regex(SCOPE_TOKEN, {
  error: (issue) =>
    `invalid scope ${describeValue(issue.input)}; a scope is one word of printable characters (no space, " or \\)`,
});

const prompt = z
  .string()
  .max(128)
  .superRefine((value, context) => {
    const words = value.split(' ').filter((word) => word !== '');
    const unknown = words.filter((word) => !(OIDC_PROMPTS as readonly string[]).includes(word));
    if (unknown.length > 0) {
      context.addIssue({
        code: 'custom',
        message: `unknown prompt ${describeValue(unknown[0])}; expected space-separated values of: ${OIDC_PROMPTS.join(', ')}`,
      });
    } else if (words.includes('none') && words.length > 1) {
      // OpenID Connect Core §3.1.2.1: "none" with any other value is an error.
      context.addIssue({ code: 'custom', message: '"none" cannot be combined with another prompt value' });
    }
  });

/** A Go duration of zero or more whole seconds (Teleport refuses sub-second max_age). */
const maxAge = z.string({ error: (issue) => invalidDuration(issue.input) }).superRefine((text, context) => {
  const seconds = parseGoDurationSeconds(text);
  if (seconds === undefined) context.addIssue({ code: 'custom', message: invalidDuration(text) });
  else if (!Number.isInteger(seconds)) {
    context.addIssue({ code: 'custom', message: 'must be whole seconds, e.g. 10m or 90s' });
  }
});

const claimMapping = strictFields({
  claim: z.string().min(1).max(256),
  value: z.string().min(1).max(MAX_CLAIM_PATTERN_LENGTH),
  roles: list(z.string().min(1).max(253), { min: 1 }),
}).superRefine((mapping, context) => {
  const pattern = compileClaimPattern(mapping.value);
  if (!pattern.ok) {
    context.addIssue({ code: 'custom', path: ['value'], message: pattern.message });
    return;
  }
  for (const [index, role] of mapping.roles.entries()) {
    const problem = roleTemplateProblem(role, pattern.value);
    if (problem !== undefined) context.addIssue({ code: 'custom', path: ['roles', index], message: problem });
  }
});

const metadata = plainMetadata.superRefine((value, context) => {
  if ((RESERVED_CONNECTOR_NAMES as readonly string[]).includes(value.name)) {
    context.addIssue({
      code: 'custom',
      path: ['name'],
      message: `"${value.name}" is reserved (connector_name: ${value.name} means the cluster's own sign-in); choose another name`,
    });
  }
});

export const oidcSpec = strictFields({
  issuer_url: httpsUrl('issuer'),
  client_id: z.string().min(1).max(256),
  /**
   * Required for a new connector (keyport-auth is a confidential client); left out when replacing one,
   * the stored secret is kept, so `get`, edit, `create --force` works although `get` never prints it.
   */
  client_secret: z.string().min(1).max(1024).optional(),
  /** One URL or a list (Teleport's v3 takes both and stores a list). */
  redirect_url: redirectUrls,
  /** Scopes asked besides `openid`, which is always asked. */
  scope: list(scope).optional(),
  display: nonEmptyString.max(128).optional(),
  max_age: maxAge.optional(),
  prompt: prompt.optional(),
  claims_to_roles: list(claimMapping, { min: 1 }),
  /** Keyport's: a security-key check of Keyport's own after the IdP's login. */
  require_local_mfa: z.boolean().optional(),
});

export const oidcDocument = strictFields({
  kind: z.literal('oidc'),
  version: versionField(OIDC_VERSIONS),
  metadata,
  spec: oidcSpec,
});

export type OidcConnector = z.output<typeof oidcDocument>;
export type OidcConnectorSpec = OidcConnector['spec'];

/** The connector as `get` shows it: everything but the client secret. */
export function withoutClientSecret(connector: OidcConnector): OidcConnector {
  const { client_secret: _secret, ...spec } = connector.spec;
  return { ...connector, spec };
}
