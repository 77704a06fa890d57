// Bounds on every field of every request, checked at the API edge before anything is hashed, parsed,
// stored or audited. A request over a bound is refused with INVALID_ARGUMENT naming the field, so an
// unauthenticated caller cannot make the service hash a megabyte, write it to the audit log or grow the
// database with it. The walk is iterative: a message nested deeper than MAX_DEPTH is refused, not recursed.
import { KeyportError } from '../proto/errors';

/** The longest value each field may hold, in UTF-16 code units (strings) or bytes, by its proto name. */
export const FIELD_LIMITS: Readonly<Record<string, number>> = {
  // Names of users, roles, devices, resources, kinds; a user name is also the audit actor.
  user: 128,
  name: 128,
  kind: 64,
  device_name: 64,
  roles: 128,
  reason: 256,
  type: 64,
  // Secrets a person types: bounded before any hashing.
  password: 1024,
  code: 16,
  token: 256,
  challenge_id: 256,
  // Structured blobs.
  webauthn_json: 64 * 1024,
  ssh_public_key: 8 * 1024,
  tls_public_key: 8 * 1024,
  json: 256 * 1024,
  // Nodes and SSH (node.proto, RegisterNode).
  node: 128,
  login: 128,
  addr: 300,
  connection: 40,
  certificate: 8 * 1024,
  host_public_key: 8 * 1024,
  identity_public_key_pem: 8 * 1024,
  documents_json: 256 * 1024,
  // SSO (StartSSOLogin, RedeemSSOLogin).
  connector_name: 253,
  client_redirect_url: 512,
  request_id: 64,
  sso_code: 64,
  key_signature: 128,
};
/** Any string field not named above. */
export const DEFAULT_STRING_LIMIT = 4 * 1024;
/** Entries in one repeated field or map. */
export const MAX_LIST_LENGTH = 256;
/** Nesting of messages: keyport/v1 needs 4; anything deeper is not a request of ours. */
export const MAX_DEPTH = 16;

const MAX_REMEMBERED_NAMES = 1024;
const protoNames = new Map<string, string>();

/**
 * protobuf-ts names (camelCase) → proto field names (snake_case), as field paths are written. Remembered:
 * a request's field names are the same few hundred every call (map keys, which a caller chooses, fill the
 * bounded memory at most, and then are converted each time).
 */
function protoName(key: string): string {
  const known = protoNames.get(key);
  if (known !== undefined) return known;
  const name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  if (protoNames.size < MAX_REMEMBERED_NAMES && key.length <= 64) protoNames.set(key, name);
  return name;
}

/** The bound of field `field`: its own, or the default for any other (never a name inherited from Object). */
function limitOf(field: string): number {
  return Object.hasOwn(FIELD_LIMITS, field) ? FIELD_LIMITS[field]! : DEFAULT_STRING_LIMIT;
}

function tooLong(path: string, limit: number, unit: string): KeyportError {
  return new KeyportError('INVALID_ARGUMENT', `${path} is too long: at most ${limit} ${unit}.`, {
    fieldPath: path,
  });
}

/** Throws INVALID_ARGUMENT, naming the field, at the first value over its bound. */
export function checkRequestBounds(request: unknown): void {
  const stack: { value: unknown; path: string; field: string; depth: number }[] = [
    { value: request, path: '', field: '', depth: 0 },
  ];
  while (stack.length > 0) {
    const { value, path, field, depth } = stack.pop()!;
    const limit = limitOf(field);
    if (typeof value === 'string') {
      if (value.length > limit) throw tooLong(path, limit, 'characters');
      continue;
    }
    if (value instanceof Uint8Array) {
      if (value.length > limit) throw tooLong(path, limit, 'bytes');
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_DEPTH) {
      throw new KeyportError('INVALID_ARGUMENT', `${path} is nested too deeply.`, { fieldPath: path });
    }
    if (Array.isArray(value)) {
      if (value.length > MAX_LIST_LENGTH) throw tooLong(path, MAX_LIST_LENGTH, 'entries');
      value.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]`, field, depth: depth + 1 }));
      continue;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    // Only maps (traits) have keys of their own choosing; messages have a handful.
    if (keys.length > MAX_LIST_LENGTH) throw tooLong(path, MAX_LIST_LENGTH, 'entries');
    for (const key of keys) {
      const inner = record[key];
      // A oneof field ({$case, value}): its members are fields of this message, named by the case.
      if (
        inner !== null &&
        typeof inner === 'object' &&
        typeof (inner as { $case?: unknown }).$case === 'string'
      ) {
        const member = protoName((inner as { $case: string }).$case);
        const child = path ? `${path}.${member}` : member;
        stack.push({
          value: (inner as { value: unknown }).value,
          path: child,
          field: member,
          depth: depth + 1,
        });
        continue;
      }
      const name = protoName(key);
      const child = path ? `${path}.${name}` : name;
      if (key.length > FIELD_LIMITS.name!) throw tooLong(`${child} (key)`, FIELD_LIMITS.name!, 'characters');
      stack.push({ value: inner, path: child, field: name, depth: depth + 1 });
    }
  }
}
