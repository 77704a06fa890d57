// The cluster resource model of keyport-auth, in the vocabulary of Teleport's documents: `user`, `role`,
// `node`, `oidc` (oidc.ts) and `cluster_auth_preference` (alias `cap`). Pure: the only I/O is the readFile
// callback handed to resolveCaFiles by the CLI.
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { formatFieldPath, ResourceError } from './errors';
import type { FieldIssue, PathSegment } from './errors';
import {
  boundedRecord,
  choice,
  describeValue,
  expectedOneOf,
  goDuration,
  labels,
  list,
  metadata,
  nonEmptyString,
  resourceName,
  strictFields,
  versionField,
} from './fields';
import { oidcDocument, RESERVED_CONNECTOR_NAMES } from './oidc';
import type { OidcConnector } from './oidc';
import { parseTraitValue } from './traits';

export { describeValue, MAX_LIST_ENTRIES, resourceErrorMap } from './fields';

export const RESOURCE_KINDS = ['user', 'role', 'cluster_auth_preference', 'node', 'oidc'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];
export const KIND_ALIASES: Readonly<Record<string, ResourceKind>> = { cap: 'cluster_auth_preference' };

export const USER_VERSIONS = ['v2'] as const;
export const ROLE_VERSIONS = ['v5', 'v6', 'v7', 'v8'] as const;
export const CLUSTER_AUTH_PREFERENCE_VERSIONS = ['v2'] as const;
export const NODE_VERSIONS = ['v2'] as const;
export const NODE_SUB_KINDS = ['openssh'] as const;
/** The cluster has exactly one cluster_auth_preference, always under this name. */
export const CLUSTER_AUTH_PREFERENCE_NAME = 'cluster-auth-preference';

export const AUTH_TYPES = ['local', 'oidc', 'saml', 'github'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];
export const SECOND_FACTOR_TYPES = ['webauthn', 'otp', 'sso'] as const;
export type SecondFactorType = (typeof SECOND_FACTOR_TYPES)[number];
export const LEGACY_SECOND_FACTOR_VALUES = ['off', 'on', 'optional', 'otp', 'webauthn'] as const;
export type LegacySecondFactor = (typeof LEGACY_SECOND_FACTOR_VALUES)[number];
export const HARDWARE_KEY_POLICIES = [
  'hardware_key',
  'hardware_key_touch',
  'hardware_key_pin',
  'hardware_key_touch_and_pin',
] as const;
export type HardwareKeyPolicy = (typeof HARDWARE_KEY_POLICIES)[number];
/** `true` asks for an MFA tap per session; a hardware-key policy also binds the session key to a PIV key. */
export type RequireSessionMfa = boolean | HardwareKeyPolicy;
export const DEVICE_TRUST_MODES = ['off', 'optional', 'required'] as const;
export type DeviceTrustMode = (typeof DEVICE_TRUST_MODES)[number];
export const PIV_SLOTS = ['9a', '9c', '9d', '9e'] as const;
export type PivSlot = (typeof PIV_SLOTS)[number];

/** WebAuthn arrives in a later issue; adding it is this one line: ['webauthn', 'otp']. */
export const DEFAULT_SECOND_FACTORS: readonly SecondFactorType[] = ['otp'];

/**
 * Attestation CA entries are inline PEM or a file path. Paths are only meaningful on the machine that
 * holds the file, so the CLI parses with 'pem-or-path' and inlines the files (resolveCaFiles); the auth
 * service parses with 'pem-only'.
 */
export type CaEntryMode = 'pem-only' | 'pem-or-path';

const requireSessionMfa = z.union([z.boolean(), z.enum(HARDWARE_KEY_POLICIES)], {
  error: (issue) => expectedOneOf(issue.input, [true, false, ...HARDWARE_KEY_POLICIES]),
});

// ---------------------------------------------------------------------------------------------------
// user

/** Kept by the server in columns, never taken from a posted document; attached when it returns a user. */
export interface UserStatus {
  created_ms: number;
  locked_until_ms?: number;
  lock_reason?: string;
  /** Client addresses locked out for this name after too many failed sign-ins, until when. */
  locked_out?: { client_addr: string; failed_attempts: number; until_ms: number }[];
}

const userSpec = strictFields({
  roles: list(resourceName, { min: 1 }),
  traits: boundedRecord(list(z.string().max(1024))).optional(),
});

// `status` is accepted and dropped: `get user` prints it, and the edit round trip (get, edit, create
// --force) must work. Locking and creation time change only through their own API calls, so an edited
// status can never take effect.
const userDocument = strictFields({
  kind: z.literal('user'),
  version: versionField(USER_VERSIONS),
  metadata,
  spec: userSpec,
  status: z.unknown().optional(),
}).transform(({ status: _ignoredStatus, ...user }) => user);

// ---------------------------------------------------------------------------------------------------
// role

const login = nonEmptyString.superRefine((value, context) => {
  const parsed = parseTraitValue(value);
  if (parsed.kind === 'invalid') context.addIssue({ code: 'custom', message: parsed.reason });
  else if (/\s/.test(value))
    context.addIssue({ code: 'custom', message: 'a login cannot contain whitespace' });
});

const labelValues = z.union([z.string().max(1024), list(z.string().max(1024))], {
  error: (issue) => `expected a label value or a list of label values, got ${describeValue(issue.input)}`,
});

const rule = strictFields({
  resources: list(nonEmptyString, { min: 1 }),
  verbs: list(nonEmptyString, { min: 1 }),
});

// Only fields keyport enforces: a role that relies on an option keyport does not implement is
// rejected rather than silently granted less (or more) than it says.
const roleConditions = strictFields({
  logins: list(login).optional(),
  node_labels: boundedRecord(labelValues).optional(),
  rules: list(rule).optional(),
});

const roleOptions = strictFields({
  max_session_ttl: goDuration.optional(),
  require_session_mfa: requireSessionMfa.optional(),
  device_trust_mode: choice(DEVICE_TRUST_MODES).optional(),
});

const roleSpec = strictFields({
  options: roleOptions.optional(),
  allow: roleConditions.optional(),
  deny: roleConditions.optional(),
});

const roleDocument = strictFields({
  kind: z.literal('role'),
  version: versionField(ROLE_VERSIONS),
  metadata,
  spec: roleSpec,
});

// ---------------------------------------------------------------------------------------------------
// node: a stock OpenSSH server (Teleport's `node` with `sub_kind: openssh`). Its labels are the metadata's,
// which roles' node_labels match; `spec.addr` is where its sshd listens.

/** HOST:PORT, the host a DNS name, an IPv4 address or a bracketed IPv6 address. */
export const NODE_ADDR =
  /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([1-9][0-9]{0,4})$/;

const nodeAddr = z.string().superRefine((value, context) => {
  const match = NODE_ADDR.exec(value);
  if (!match || Number(match[3]) > 65535) {
    context.addIssue({
      code: 'custom',
      message: `invalid address ${describeValue(value)}; expected HOST:PORT, e.g. 10.0.0.5:22`,
    });
  }
});

const nodeDocument = strictFields({
  kind: z.literal('node'),
  version: versionField(NODE_VERSIONS),
  sub_kind: choice(NODE_SUB_KINDS).default('openssh'),
  metadata,
  spec: strictFields({
    addr: nodeAddr,
    hostname: z.string().max(253).optional(),
  }),
});

// ---------------------------------------------------------------------------------------------------
// cluster_auth_preference

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function isInlinePem(entry: string): boolean {
  return entry.includes('-----BEGIN');
}

/** Why `pem` is not exactly one X.509 certificate in PEM form, or undefined when it is. */
export function pemCertificateProblem(pem: string): string | undefined {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  const [block] = blocks;
  if (block === undefined)
    return 'not a PEM certificate (expected -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)';
  if (blocks.length > 1) return `holds ${blocks.length} certificates; give each its own entry`;
  if (pem.replace(block, '').trim() !== '')
    return 'has text outside the -----BEGIN/END CERTIFICATE----- block';
  if (block.includes('...')) {
    return 'the certificate body is a documentation placeholder ("..."); paste the real PEM certificate';
  }
  try {
    new X509Certificate(block);
    return undefined;
  } catch (error) {
    return `does not parse as an X.509 certificate (${error instanceof Error ? error.message : String(error)})`;
  }
}

function caEntryProblem(entry: string, mode: CaEntryMode): string | undefined {
  if (isInlinePem(entry)) return pemCertificateProblem(entry);
  if (mode === 'pem-only') {
    return (
      `${JSON.stringify(entry)} is a file path, which the auth service cannot read; send the PEM ` +
      'certificate itself (the keyport CLI inlines CA files before sending)'
    );
  }
  if (entry.trim() === '') return 'must be a PEM certificate or a file path, got an empty string';
  if (entry.includes('\n')) return 'neither a PEM certificate nor a file path';
  return undefined;
}

function caEntries(mode: CaEntryMode) {
  const entry = z.string().superRefine((value, context) => {
    const problem = caEntryProblem(value, mode);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
  });
  // Kept as written (a CA listed by path and inline resolves to the same PEM twice): bounded only.
  return list(entry, { unique: false });
}

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `rpId` is not a bare host name as WebAuthn wants it, or undefined when it is. */
export function rpIdProblem(rpId: string): string | undefined {
  const advice = 'use the public host name of the proxy, e.g. example.com';
  if (rpId.includes('...')) return `${JSON.stringify(rpId)} is a documentation placeholder; ${advice}`;
  if (rpId.includes('://')) return `${JSON.stringify(rpId)} has a scheme; ${advice} (no https://)`;
  if (rpId.includes('/')) return `${JSON.stringify(rpId)} has a path; ${advice} (no /path)`;
  if (rpId.includes(':')) return `${JSON.stringify(rpId)} has a port; ${advice} (no :443)`;
  if (rpId !== rpId.toLowerCase()) return `${JSON.stringify(rpId)} must be lower case`;
  const hostLabels = rpId.split('.');
  const lastLabel = hostLabels[hostLabels.length - 1] ?? '';
  if (rpId.length > 253 || !hostLabels.every((label) => HOST_LABEL.test(label))) {
    return `${JSON.stringify(rpId)} is not a host name; ${advice}`;
  }
  // WebAuthn relying party IDs are domains; browsers refuse IP addresses.
  if (/^[0-9]+$/.test(lastLabel)) return `${JSON.stringify(rpId)} is an IP address; ${advice}`;
  return undefined;
}

const rpId = z.string().superRefine((value, context) => {
  const problem = rpIdProblem(value);
  if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
});

const legacySecondFactor = z.union(
  [
    z.enum(LEGACY_SECOND_FACTOR_VALUES),
    // YAML 1.1 parsers (and JSON written from them) turn `on`/`off` into booleans; the `yaml` package
    // reads YAML 1.2 where they stay strings. Accept both spellings.
    z.boolean().transform((enabled): LegacySecondFactor => (enabled ? 'on' : 'off')),
  ],
  {
    error: (issue) =>
      issue.input === 'u2f'
        ? 'u2f was replaced by WebAuthn; use "webauthn" (or "on" to also allow OTP) and keep the u2f section for existing devices'
        : expectedOneOf(issue.input, LEGACY_SECOND_FACTOR_VALUES),
  },
);

function clusterAuthPreferenceSpecSchema(mode: CaEntryMode) {
  return strictFields({
    type: choice(AUTH_TYPES).optional(),
    second_factors: list(choice(SECOND_FACTOR_TYPES)).optional(),
    /** Legacy single value; normalizeCap maps it onto second_factors. */
    second_factor: legacySecondFactor.optional(),
    webauthn: strictFields({
      rp_id: rpId,
      attestation_allowed_cas: caEntries(mode).optional(),
      attestation_denied_cas: caEntries(mode).optional(),
    }).optional(),
    /** Pre-WebAuthn settings kept so devices registered under U2F keep working; see normalizeCap. */
    u2f: strictFields({
      app_id: nonEmptyString,
      facets: list(nonEmptyString).optional(),
      device_attestation_cas: caEntries(mode).optional(),
    }).optional(),
    require_session_mfa: requireSessionMfa.optional(),
    device_trust: strictFields({
      mode: choice(DEVICE_TRUST_MODES),
      auto_enroll: z.boolean().optional(),
      /** CAs that may have issued a device's EK certificate; unset means any EK (certificate or not). */
      ekcert_allowed_cas: caEntries(mode).optional(),
    }).optional(),
    connector_name: nonEmptyString.optional(),
    allow_passwordless: z.boolean().optional(),
    /** Spelling used by the seed documents for allow_passwordless. */
    passwordless: z.boolean().optional(),
    hardware_key: strictFields({
      piv_slot: choice(PIV_SLOTS).optional(),
      /** PIV attestation roots trusted besides Yubico's (shipped with keyport-auth), e.g. the lab card's. */
      attestation_roots: caEntries(mode).optional(),
    }).optional(),
  }).superRefine((spec, context) => {
    for (const issue of capConsistencyIssues(spec)) context.addIssue({ code: 'custom', ...issue });
    for (const issue of oidcCapIssues(spec)) context.addIssue({ code: 'custom', ...issue });
  });
}

function clusterAuthPreferenceDocumentSchema(mode: CaEntryMode) {
  return strictFields({
    kind: z
      .enum(['cluster_auth_preference', 'cap'])
      .transform((): 'cluster_auth_preference' => 'cluster_auth_preference'),
    version: versionField(CLUSTER_AUTH_PREFERENCE_VERSIONS),
    metadata: strictFields({
      name: z
        .literal(CLUSTER_AUTH_PREFERENCE_NAME, {
          error: (issue) =>
            `must be "${CLUSTER_AUTH_PREFERENCE_NAME}" (the cluster has one cluster_auth_preference), got ${describeValue(issue.input)}`,
        })
        .default(CLUSTER_AUTH_PREFERENCE_NAME),
      description: z.string().optional(),
      labels: labels.optional(),
    }).default({ name: CLUSTER_AUTH_PREFERENCE_NAME }),
    spec: clusterAuthPreferenceSpecSchema(mode),
  });
}

// ---------------------------------------------------------------------------------------------------
// Schemas and types

function buildResourceSchemas(mode: CaEntryMode) {
  return {
    user: userDocument,
    role: roleDocument,
    cluster_auth_preference: clusterAuthPreferenceDocumentSchema(mode),
    node: nodeDocument,
    oidc: oidcDocument,
    clusterAuthPreferenceSpec: clusterAuthPreferenceSpecSchema(mode),
  };
}
export type ResourceSchemas = ReturnType<typeof buildResourceSchemas>;

export const resourceSchemas: Readonly<Record<CaEntryMode, ResourceSchemas>> = {
  'pem-only': buildResourceSchemas('pem-only'),
  'pem-or-path': buildResourceSchemas('pem-or-path'),
};

export type User = z.output<ResourceSchemas['user']>;
export type UserSpec = User['spec'];
/** A user document as the server returns it. */
export type UserWithStatus = User & { status: UserStatus };
export type Role = z.output<ResourceSchemas['role']>;
export type RoleSpec = Role['spec'];
export type RoleOptions = NonNullable<RoleSpec['options']>;
export type RoleConditions = NonNullable<RoleSpec['allow']>;
export type RoleRule = NonNullable<RoleConditions['rules']>[number];
export type ClusterAuthPreference = z.output<ResourceSchemas['cluster_auth_preference']>;
export type ClusterAuthPreferenceSpec = ClusterAuthPreference['spec'];
export type Node = z.output<ResourceSchemas['node']>;
export type { OidcConnector };
export type Resource = User | Role | ClusterAuthPreference | Node | OidcConnector;

// ---------------------------------------------------------------------------------------------------
// Canonical cluster_auth_preference

/**
 * The cluster_auth_preference the server acts on: legacy spellings folded in, defaults filled.
 * `secondFactorRequired` is false only for `second_factor: optional` (factors offered, not demanded)
 * and when there are no second factors at all (`off` or an empty list).
 */
export interface CanonicalClusterAuthPreferenceSpec {
  type: AuthType;
  second_factors: SecondFactorType[];
  secondFactorRequired: boolean;
  webauthn?: { rp_id: string; attestation_allowed_cas: string[]; attestation_denied_cas: string[] };
  require_session_mfa: RequireSessionMfa;
  device_trust: { mode: DeviceTrustMode; auto_enroll: boolean; ekcert_allowed_cas: string[] };
  connector_name?: string;
  allow_passwordless: boolean;
  hardware_key: { piv_slot?: PivSlot; attestation_roots: string[] };
}

/**
 * Legacy `second_factor` → (factors, required):
 *   off → [], not required;   on → [webauthn, otp], required;   optional → [webauthn, otp], not required;
 *   otp → [otp], required;    webauthn → [webauthn], required.
 */
export function legacySecondFactorMeaning(value: LegacySecondFactor): {
  factors: SecondFactorType[];
  required: boolean;
} {
  switch (value) {
    case 'off':
      return { factors: [], required: false };
    case 'on':
      return { factors: ['webauthn', 'otp'], required: true };
    case 'optional':
      return { factors: ['webauthn', 'otp'], required: false };
    case 'otp':
      return { factors: ['otp'], required: true };
    case 'webauthn':
      return { factors: ['webauthn'], required: true };
  }
}

function sameFactors(left: readonly SecondFactorType[], right: readonly SecondFactorType[]): boolean {
  const leftSet = new Set(left);
  const rightSet = new Set(right);
  return leftSet.size === rightSet.size && [...leftSet].every((factor) => rightSet.has(factor));
}

function listOf(factors: readonly SecondFactorType[]): string {
  return `[${factors.join(', ')}]`;
}

/** The host WebAuthn inherits from a U2F app_id ("https://example.com" → "example.com"). */
function hostOfAppId(appId: string): string {
  try {
    return new URL(appId).hostname;
  } catch {
    return appId;
  }
}

interface SecondFactorDecision {
  factors: SecondFactorType[];
  required: boolean;
}

function decideSecondFactors(spec: ClusterAuthPreferenceSpec): SecondFactorDecision {
  if (spec.second_factor !== undefined) {
    // When both fields are present they list the same factors (checked by capConsistencyIssues); only
    // the legacy field can say "optional", so it decides whether MFA is demanded.
    const legacy = legacySecondFactorMeaning(spec.second_factor);
    return { factors: [...new Set(spec.second_factors ?? legacy.factors)], required: legacy.required };
  }
  const factors = [...new Set(spec.second_factors ?? DEFAULT_SECOND_FACTORS)];
  return { factors, required: factors.length > 0 };
}

/** Contradictions between fields of a cluster_auth_preference spec, with paths relative to the spec. */
export function capConsistencyIssues(
  spec: ClusterAuthPreferenceSpec,
): { path: PathSegment[]; message: string }[] {
  const issues: { path: PathSegment[]; message: string }[] = [];
  if (spec.second_factor !== undefined && spec.second_factors !== undefined) {
    const legacy = legacySecondFactorMeaning(spec.second_factor);
    if (!sameFactors(legacy.factors, spec.second_factors)) {
      issues.push({
        path: ['second_factor'],
        message:
          `legacy value "${spec.second_factor}" means ${listOf(legacy.factors)} but second_factors is ` +
          `${listOf(spec.second_factors)}; remove second_factor or make the two agree`,
      });
    }
  }
  if (
    spec.passwordless !== undefined &&
    spec.allow_passwordless !== undefined &&
    spec.passwordless !== spec.allow_passwordless
  ) {
    issues.push({
      path: ['passwordless'],
      message: `is ${spec.passwordless} but allow_passwordless is ${spec.allow_passwordless}; keep one of them`,
    });
  }
  const { factors } = decideSecondFactors(spec);
  const webauthnEnabled = factors.includes('webauthn');
  const rpIdKnown = spec.webauthn?.rp_id !== undefined || spec.u2f?.app_id !== undefined;
  if (webauthnEnabled && !rpIdKnown) {
    issues.push({
      path: ['webauthn'],
      message:
        'required when the second factors include webauthn: set webauthn.rp_id to the public host name of the proxy',
    });
  }
  if (spec.connector_name === 'passwordless') {
    if ((spec.allow_passwordless ?? spec.passwordless) === false) {
      issues.push({
        path: ['connector_name'],
        message: '"passwordless" cannot be the default while passwordless is disabled',
      });
    } else if (!webauthnEnabled) {
      issues.push({
        path: ['connector_name'],
        message: '"passwordless" needs webauthn among the second factors',
      });
    }
  }
  return issues;
}

/**
 * What `type: oidc` asks of a cap being written: `connector_name`, when given, names a connector, never one
 * of the names that mean the cluster's own sign-in. Checked when a cap is parsed (written through the API or
 * read from the config file), not by normalizeCap: a cap stored before these checks still loads. Without a
 * connector_name, SSO is the default and a client offers every connector the cluster lists.
 */
export function oidcCapIssues(spec: ClusterAuthPreferenceSpec): { path: PathSegment[]; message: string }[] {
  if (spec.type !== 'oidc' || spec.connector_name === undefined) return [];
  if (!(RESERVED_CONNECTOR_NAMES as readonly string[]).includes(spec.connector_name)) return [];
  return [
    {
      path: ['connector_name'],
      message: `"${spec.connector_name}" is no oidc connector; with type oidc, name one (keyport admin get oidc)`,
    },
  ];
}

/**
 * The canonical form of a cluster_auth_preference spec. Throws ResourceError (paths under
 * `fieldPathPrefix`) when legacy and current fields disagree.
 */
export function normalizeCap(
  spec: ClusterAuthPreferenceSpec,
  fieldPathPrefix = 'spec',
): CanonicalClusterAuthPreferenceSpec {
  const [first, ...rest] = capConsistencyIssues(spec).map((issue): FieldIssue => ({
    fieldPath: formatFieldPath(issue.path, fieldPathPrefix),
    message: issue.message,
  }));
  if (first !== undefined) throw new ResourceError([first, ...rest]);

  const { factors, required } = decideSecondFactors(spec);
  const canonical: CanonicalClusterAuthPreferenceSpec = {
    type: spec.type ?? 'local',
    second_factors: factors,
    secondFactorRequired: required,
    require_session_mfa: spec.require_session_mfa ?? false,
    device_trust: {
      mode: spec.device_trust?.mode ?? 'off',
      auto_enroll: spec.device_trust?.auto_enroll ?? false,
      ekcert_allowed_cas: [...(spec.device_trust?.ekcert_allowed_cas ?? [])],
    },
    allow_passwordless: spec.allow_passwordless ?? spec.passwordless ?? true,
    hardware_key: {
      ...(spec.hardware_key?.piv_slot === undefined ? {} : { piv_slot: spec.hardware_key.piv_slot }),
      attestation_roots: [...(spec.hardware_key?.attestation_roots ?? [])],
    },
  };
  // As in Teleport, WebAuthn inherits the relying party and attestation CAs from a U2F section that
  // predates it, so devices registered under U2F keep working.
  const rpIdFromU2f = spec.u2f === undefined ? undefined : hostOfAppId(spec.u2f.app_id);
  const rpIdValue = spec.webauthn?.rp_id ?? rpIdFromU2f;
  if (rpIdValue !== undefined) {
    canonical.webauthn = {
      rp_id: rpIdValue,
      attestation_allowed_cas: [
        ...(spec.webauthn?.attestation_allowed_cas ?? spec.u2f?.device_attestation_cas ?? []),
      ],
      attestation_denied_cas: [...(spec.webauthn?.attestation_denied_cas ?? [])],
    };
  }
  if (spec.connector_name !== undefined) canonical.connector_name = spec.connector_name;
  return canonical;
}

// ---------------------------------------------------------------------------------------------------
// CA files

export type ReadTextFile = (path: string) => string | Promise<string>;

function readFailure(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    if (error.code === 'ENOENT') return 'no such file';
    if (error.code === 'EACCES') return 'permission denied';
    if (error.code === 'EISDIR') return 'is a directory';
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Replaces CA file paths in a cluster_auth_preference spec with the PEM they hold. Relative paths
 * mean whatever `readFile` makes of them (the CLI resolves them against the document's directory).
 * Every unreadable or non-certificate file is reported, each under its entry's field path.
 */
export async function resolveCapSpecCaFiles(
  spec: ClusterAuthPreferenceSpec,
  readFile: ReadTextFile,
  fieldPathPrefix = 'spec',
): Promise<ClusterAuthPreferenceSpec> {
  const resolved: ClusterAuthPreferenceSpec = structuredClone(spec);
  const issues: FieldIssue[] = [];
  const causes: unknown[] = [];
  const resolveEntries = (entries: readonly string[], path: readonly PathSegment[]): Promise<string[]> =>
    Promise.all(
      entries.map(async (entry, index) => {
        if (isInlinePem(entry)) return entry;
        const fieldPath = formatFieldPath([...path, index], fieldPathPrefix);
        let pem: string;
        try {
          pem = await readFile(entry);
        } catch (error) {
          causes.push(error);
          issues.push({
            fieldPath,
            message: `cannot read CA file ${JSON.stringify(entry)}: ${readFailure(error)}; give the path of your CA's PEM file or paste the certificate inline`,
          });
          return entry;
        }
        const problem = pemCertificateProblem(pem);
        if (problem !== undefined)
          issues.push({ fieldPath, message: `CA file ${JSON.stringify(entry)} ${problem}` });
        return pem;
      }),
    );
  const { webauthn, u2f } = resolved;
  if (webauthn?.attestation_allowed_cas !== undefined) {
    webauthn.attestation_allowed_cas = await resolveEntries(webauthn.attestation_allowed_cas, [
      'webauthn',
      'attestation_allowed_cas',
    ]);
  }
  if (webauthn?.attestation_denied_cas !== undefined) {
    webauthn.attestation_denied_cas = await resolveEntries(webauthn.attestation_denied_cas, [
      'webauthn',
      'attestation_denied_cas',
    ]);
  }
  const deviceTrust = resolved.device_trust;
  if (deviceTrust?.ekcert_allowed_cas !== undefined) {
    deviceTrust.ekcert_allowed_cas = await resolveEntries(deviceTrust.ekcert_allowed_cas, [
      'device_trust',
      'ekcert_allowed_cas',
    ]);
  }
  const hardwareKey = resolved.hardware_key;
  if (hardwareKey?.attestation_roots !== undefined) {
    hardwareKey.attestation_roots = await resolveEntries(hardwareKey.attestation_roots, [
      'hardware_key',
      'attestation_roots',
    ]);
  }
  if (u2f?.device_attestation_cas !== undefined) {
    u2f.device_attestation_cas = await resolveEntries(u2f.device_attestation_cas, [
      'u2f',
      'device_attestation_cas',
    ]);
  }
  const [first, ...rest] = issues;
  if (first !== undefined) {
    throw new ResourceError([first, ...rest], causes.length > 0 ? { cause: causes[0] } : undefined);
  }
  return resolved;
}

/** resolveCapSpecCaFiles for a whole document; other kinds come back unchanged. */
export async function resolveCaFiles(doc: Resource, readFile: ReadTextFile): Promise<Resource> {
  if (doc.kind !== 'cluster_auth_preference') return doc;
  return { ...doc, spec: await resolveCapSpecCaFiles(doc.spec, readFile, 'spec') };
}
