// keyport:// links, parsed into a plain result or a typed error. Both hosts hand every link they receive
// (Electron's open-url and argv, the browser host's socket) to this one parser; nothing acts on a link by
// itself: it only fills in a screen (docs/architecture.md "Deep links").
//
//   keyport://<cluster>/authorize-web-session?id=ID&token=TOKEN&redirect=/PATH
//
// <cluster> is a cluster the app trusts, by name or by an address as its record holds them (the canonical
// address, a replica's, or its public address). The parser is strict rather than forgiving: a link comes
// from a web page, so anything it does not expect is refused, and no part of a refused link (the token
// least of all) is repeated in the error.
import { KeyportError } from '../../proto/errors';
import type { KeyportErrorCode } from '../../proto/errors';

export const DEEP_LINK_SCHEME = 'keyport';
/** The longest link accepted, whole: ids, a token and a redirect fit many times over. */
export const MAX_DEEP_LINK_LENGTH = 2048;
export const MAX_REDIRECT_LENGTH = 1024;

export type DeepLinkRefusal = 'malformed' | 'unknown-cluster' | 'unsupported-path';

const codeOf: Record<DeepLinkRefusal, KeyportErrorCode> = {
  malformed: 'INVALID_ARGUMENT',
  'unknown-cluster': 'NOT_FOUND',
  'unsupported-path': 'INVALID_ARGUMENT',
};

/** A refused link: `reason` is the stable refusal, `code` the contract's code for it. */
export class DeepLinkError extends KeyportError {
  constructor(
    readonly reason: DeepLinkRefusal,
    message: string,
    fieldPath = 'link',
  ) {
    super(codeOf[reason], message, { fieldPath });
    this.name = 'DeepLinkError';
  }
}

/** What the parser needs to know of a trusted cluster (client/profiles.ts TrustedCluster has these). */
export interface KnownCluster {
  address: string;
  name: string;
  replicas?: string[];
  publicAddr?: string;
}

export interface AuthorizeWebSessionLink {
  kind: 'authorize-web-session';
  /** The trusted cluster's canonical address and name. */
  cluster: { address: string; name: string };
  /** The web session's request id (not secret: the screen shows it). */
  id: string;
  /** The web token: single use, kept in the backend, never shown. */
  token: string;
  /** A path on the web UI itself (starts with one "/"), where the browser goes once approved. */
  redirect: string;
}

export type DeepLink = AuthorizeWebSessionLink;

const paths = { '/authorize-web-session': 'authorize-web-session' } as const;

// Base64url, as keyport-auth's ids and tokens are; bounded so a link cannot smuggle a payload.
const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,256}$/;
// HOST or HOST:PORT, IPv6 in brackets, as client/cluster-trust.ts writes an address; or a cluster name.
const AUTHORITY_PATTERN = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253})(?::\d{1,5})?$/;
// After the leading "/": printable ASCII only (no space, tab or newline, which URL parsers drop and so
// could turn "/\t/evil" into "//evil"), and never a backslash (which browsers read as "/").
const REDIRECT_PATTERN = /^\/(?![/\\])[\x21-\x5B\x5D-\x7E]*$/;

function refuse(reason: DeepLinkRefusal, message: string, fieldPath?: string): never {
  throw new DeepLinkError(reason, message, fieldPath);
}

function decode(value: string, field: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return refuse('malformed', `The link's "${field}" is not valid percent-encoding.`, field);
  }
}

/** The query's parameters, each at most once; an unknown parameter is refused, not ignored. */
function queryOf(query: string, allowed: readonly string[]): Map<string, string> {
  const parameters = new Map<string, string>();
  for (const pair of query === '' ? [] : query.split('&')) {
    const equals = pair.indexOf('=');
    const name = decode(equals < 0 ? pair : pair.slice(0, equals), 'query');
    if (!allowed.includes(name)) {
      refuse('malformed', `The link has a parameter Keyport Connect does not know.`, 'query');
    }
    if (parameters.has(name)) refuse('malformed', `The link gives "${name}" twice.`, name);
    parameters.set(name, equals < 0 ? '' : decode(pair.slice(equals + 1), name));
  }
  return parameters;
}

/** True when `redirect`, resolved against any origin, stays on that origin as a path. */
export function isSameOriginPath(redirect: string): boolean {
  if (redirect.length > MAX_REDIRECT_LENGTH || !REDIRECT_PATTERN.test(redirect)) return false;
  const base = 'https://web.keyport.invalid';
  try {
    return new URL(redirect, base).origin === base;
  } catch {
    return false;
  }
}

function findCluster(authority: string, clusters: readonly KnownCluster[]): KnownCluster | undefined {
  const wanted = authority.toLowerCase();
  // An address without a port means the default one, as parseClusterAddress reads it.
  const withPort = /:\d+$/.test(wanted) ? wanted : `${wanted}:3025`;
  return clusters.find((cluster) =>
    [cluster.name, cluster.address, cluster.publicAddr, ...(cluster.replicas ?? [])].some((known) => {
      const name = known?.toLowerCase();
      return name !== undefined && (name === wanted || name === withPort);
    }),
  );
}

/**
 * Parses a keyport:// link against the clusters this app trusts. Returns the link's request, or throws a
 * DeepLinkError: `malformed` (not a keyport:// link, too long, a bad or missing parameter),
 * `unsupported-path` (a request this version does not handle), `unknown-cluster` (no trusted cluster by that
 * name or address). It throws nothing else, whatever the input.
 */
export function parseDeepLink(link: unknown, clusters: readonly KnownCluster[]): DeepLink {
  if (typeof link !== 'string') return refuse('malformed', 'A link is text.');
  if (link.length > MAX_DEEP_LINK_LENGTH) {
    refuse('malformed', `The link is longer than ${MAX_DEEP_LINK_LENGTH} characters.`);
  }
  const prefix = `${DEEP_LINK_SCHEME}://`;
  if (link.slice(0, prefix.length).toLowerCase() !== prefix) {
    refuse('malformed', 'This is not a keyport:// link.');
  }
  const rest = link.slice(prefix.length);
  if (rest.includes('#')) refuse('malformed', 'A keyport:// link has no fragment.');
  const queryStart = rest.indexOf('?');
  const beforeQuery = queryStart < 0 ? rest : rest.slice(0, queryStart);
  const query = queryStart < 0 ? '' : rest.slice(queryStart + 1);
  const slash = beforeQuery.indexOf('/');
  const authority = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash < 0 ? '' : beforeQuery.slice(slash);
  if (!AUTHORITY_PATTERN.test(authority)) {
    refuse('malformed', 'The link does not name a cluster (keyport://CLUSTER/...).', 'cluster');
  }

  const kind = Object.hasOwn(paths, path) ? paths[path as keyof typeof paths] : undefined;
  if (!kind) {
    refuse('unsupported-path', 'Keyport Connect does not handle this kind of link.', 'path');
  }

  const parameters = queryOf(query, ['id', 'token', 'redirect']);
  const id = parameters.get('id') ?? '';
  const token = parameters.get('token') ?? '';
  const redirect = parameters.get('redirect') ?? '';
  if (!ID_PATTERN.test(id)) refuse('malformed', 'The link has no valid request id.', 'id');
  if (!TOKEN_PATTERN.test(token)) refuse('malformed', 'The link has no valid token.', 'token');
  if (!isSameOriginPath(redirect)) {
    refuse('malformed', "The link's redirect is not a path on the cluster's web UI.", 'redirect');
  }

  const cluster = findCluster(authority, clusters);
  if (!cluster) {
    refuse(
      'unknown-cluster',
      `The link is for the cluster "${authority}", which Keyport Connect does not know. Add the cluster first.`,
      'cluster',
    );
  }
  return { kind, cluster: { address: cluster.address, name: cluster.name }, id, token, redirect };
}
