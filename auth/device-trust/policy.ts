// Device trust policy: one function that decides, for a session's identity and a resource, whether a
// trusted device is needed and whether the session has one. The SSH, web-session and MFA-device paths all
// call it, so "required" means the same everywhere.
//
// - The cluster's `device_trust.mode` (cap): `off` turns device trust off entirely (roles included);
//   `required` applies to every resource except apps, which are role-based only (as the seed says).
// - A role's `options.device_trust_mode: required` applies where that role's allow matches the resource:
//   for a node, the role's allow.node_labels; resources without labels (a web session, a user's first MFA
//   device) are matched by every role the user holds.
// - The strictest applicable mode wins; `optional` never relaxes a `required`.
import { KeyportError } from '../../proto/errors';
import type { DeviceTrustMode, Role } from '../../proto/resources/schema';

/** The device a session certificate carries (its device extensions). */
export interface SessionDevice {
  deviceId: string;
  assetTag: string;
  credentialId: string;
}

export type DeviceTrustResource =
  | { kind: 'node'; name: string; labels: Readonly<Record<string, string>> }
  | { kind: 'app'; name: string; labels: Readonly<Record<string, string>> }
  | { kind: 'web_session' }
  | { kind: 'first_mfa_device' };

export interface DeviceTrustSubject {
  roles: readonly Role[];
  device?: SessionDevice;
}

export type DeviceTrustDecision =
  | { allowed: true; required: boolean; device?: SessionDevice }
  | { allowed: false; required: true; error: KeyportError };

const WILDCARD = '*';

/** Whether a role's allow.node_labels match these labels: every key listed must match (`*` matches all). */
export function labelsMatch(
  wanted: Readonly<Record<string, string | readonly string[]>> | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (!wanted) return false;
  const entries = Object.entries(wanted);
  if (entries.length === 0) return false;
  return entries.every(([key, values]) => {
    const accepted = typeof values === 'string' ? [values] : values;
    if (key === WILDCARD) return accepted.includes(WILDCARD);
    const value = labels[key];
    return value !== undefined && (accepted.includes(WILDCARD) || accepted.includes(value));
  });
}

function roleApplies(role: Role, resource: DeviceTrustResource): boolean {
  if (resource.kind === 'node' || resource.kind === 'app') {
    return labelsMatch(role.spec.allow?.node_labels, resource.labels);
  }
  return true;
}

function describe(resource: DeviceTrustResource): string {
  switch (resource.kind) {
    case 'node':
      return `node "${resource.name}"`;
    case 'app':
      return `app "${resource.name}"`;
    case 'web_session':
      return 'a web session';
    case 'first_mfa_device':
      return 'your first MFA device';
  }
}

/** Whether `resource` needs a trusted device for this subject, and whether the subject has one. */
export function deviceTrustDecision(
  clusterMode: DeviceTrustMode,
  subject: DeviceTrustSubject,
  resource: DeviceTrustResource,
): DeviceTrustDecision {
  if (clusterMode === 'off') return { allowed: true, required: false };
  const byCluster = clusterMode === 'required' && resource.kind !== 'app';
  const byRole = subject.roles.some(
    (role) => role.spec.options?.device_trust_mode === 'required' && roleApplies(role, resource),
  );
  const required = byCluster || byRole;
  if (!required) return { allowed: true, required: false, device: subject.device };
  if (subject.device) return { allowed: true, required: true, device: subject.device };
  return {
    allowed: false,
    required: true,
    error: new KeyportError(
      'DEVICE_TRUST_REQUIRED',
      `A trusted device is required for ${describe(resource)}: enroll this device (\`keyport device enroll\`), then sign in again.`,
      { resolvableByRelogin: true },
    ),
  };
}
