// What crosses to the renderer: view models built field by field (never a spread of a client object, so
// a certificate or key id added to Profile later cannot leak), and errors in the contract's shape.
import { KeyportError } from '../../proto/errors';
import type { KeyportErrorCode } from '../../proto/errors';
import type { Device } from '../../proto/gen/keyport/v1/device';
import type { ReachableNode } from '../../proto/gen/keyport/v1/node';
import { MFADeviceType } from '../../proto/gen/keyport/v1/mfa';
import type { MFADevice } from '../../proto/gen/keyport/v1/mfa';
import { Ctap2Error } from '../../client/hardware/fido/ctap2';
import { CtaphidError } from '../../client/hardware/fido/ctaphid';
import { PivError } from '../../client/hardware/piv/errors';
import { KeyStoreError } from '../../client/keystore';
import type { KeyStoreErrorCode } from '../../client/keystore';
import type { ThisDeviceStatus } from '../../client/device-trust/enroll';
import type { Profile, TrustedCluster } from '../../client/profiles';
import { DeepLinkError } from './deep-link';
import type {
  ClusterView,
  ContractError,
  DeviceTrustView,
  EnrolledDeviceView,
  ErrorCode,
  MfaDeviceView,
  NodeView,
  ProfileView,
  SecondFactorKind,
  SessionKeyView,
} from '../../preload/contract';

// The contract repeats proto's codes; this fails to compile when the two lists drift apart.
const sameCodes: [KeyportErrorCode, ErrorCode] extends [ErrorCode, KeyportErrorCode] ? true : never = true;
void sameCodes;

export function clusterView(cluster: TrustedCluster): ClusterView {
  return {
    address: cluster.address,
    name: cluster.name,
    ...(cluster.publicAddr ? { publicAddr: cluster.publicAddr } : {}),
    caPin: cluster.caPin,
    passwordlessDefault: cluster.connectorName === 'passwordless',
    secondFactors: (cluster.secondFactors ?? []).filter(
      (factor): factor is SecondFactorKind => factor === 'otp' || factor === 'webauthn',
    ),
    allowPasswordless: cluster.allowPasswordless ?? false,
    trustedAtMs: cluster.trustedAtMs,
    ...(cluster.lastUser ? { lastUser: cluster.lastUser } : {}),
  };
}

export function profileView(profile: Profile): ProfileView {
  return {
    address: profile.address,
    cluster: profile.cluster,
    user: profile.user,
    roles: [...profile.roles],
    logins: [...profile.logins],
    mfaVerified: profile.mfaVerified,
    validAfterMs: profile.validAfterMs,
    expiresMs: profile.expiresMs,
    keystore: profile.keystore,
    sessionKey: sessionKeyView(profile),
  };
}

/** Where the session key is: the keystore, or the card's slot and the policies it meets (nothing secret). */
export function sessionKeyView(profile: Profile): SessionKeyView {
  const card = profile.hardwareKey;
  if (!card) return { kind: profile.keystore };
  return {
    kind: 'piv',
    slot: card.slot,
    policy: card.policy,
    pinPolicy: card.pinPolicy,
    touchPolicy: card.touchPolicy,
    ...(card.serial !== undefined ? { serial: card.serial } : {}),
  };
}

export function deviceView(device: MFADevice): MfaDeviceView {
  return {
    id: device.id,
    name: device.name,
    type:
      device.type === MFADeviceType.MFA_DEVICE_TYPE_WEBAUTHN
        ? 'webauthn'
        : device.type === MFADeviceType.MFA_DEVICE_TYPE_TOTP
          ? 'totp'
          : 'unknown',
    passkey: device.passkey,
    addedMs: device.addedMs,
    lastUsedMs: device.lastUsedMs,
  };
}

const deviceStates: readonly DeviceTrustView['state'][] = [
  'not_registered',
  'registered',
  'enrolled',
  'other_tpm',
  'locked',
];
const deviceTrustModes: readonly DeviceTrustView['mode'][] = ['off', 'optional', 'required'];

/** This device's status, without its credential id, EK fingerprint or device id. */
export function deviceTrustView(status: ThisDeviceStatus): DeviceTrustView {
  const state = deviceStates.find((s) => s === status.state) ?? 'not_registered';
  return {
    state,
    assetTag: status.assetTag,
    osType: status.osType,
    mode: deviceTrustModes.find((m) => m === status.mode) ?? 'off',
    trustedInSession: status.trustedInSession,
    selfEnrollmentAllowed: status.selfEnrollmentAllowed,
    ...(status.tpmProblem ? { tpmProblem: status.tpmProblem } : {}),
    ...(status.device ? { registered: enrolledDeviceView(status.device) } : {}),
  };
}

export function enrolledDeviceView(device: Device): EnrolledDeviceView {
  return {
    assetTag: device.assetTag,
    osType: device.osType,
    owner: device.owner,
    enrolled: device.enrollStatus === 'enrolled',
    enrolledMs: device.enrolledMs,
  };
}

/** A reachable node: name, address, labels and logins, field by field (no host key). */
export function nodeView(reachable: ReachableNode): NodeView {
  const node = reachable.node;
  return {
    name: node?.name ?? '',
    addr: node?.addr ?? '',
    labels: Object.entries(node?.labels ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => ({ key, value })),
    logins: [...reachable.logins].sort(),
  };
}

const keystoreCodes: Record<KeyStoreErrorCode, ErrorCode> = {
  KEYCHAIN_UNAVAILABLE: 'UNAVAILABLE',
  KEYCHAIN_LOCKED: 'PRECONDITION_FAILED',
  KEY_NOT_FOUND: 'UNAUTHENTICATED',
  KEYSTORE_IO: 'INTERNAL',
};

function securityKeyCode(code: string): ErrorCode {
  switch (code) {
    case 'PIN_BLOCKED':
    case 'PIN_AUTH_BLOCKED':
      return 'LOCKED';
    case 'KEEPALIVE_CANCEL':
    case 'CANCELLED':
      return 'CANCELLED';
    case 'NO_CREDENTIALS':
      return 'NOT_FOUND';
    case 'CREDENTIAL_EXCLUDED':
      return 'ALREADY_EXISTS';
    case 'USER_ACTION_TIMEOUT':
    case 'ACTION_TIMEOUT':
    case 'TIMEOUT':
      return 'EXPIRED';
    default:
      return 'MFA_FAILED';
  }
}

/** Any thrown value as the contract's error. Unknown errors keep their cause out of the message. */
export function toContractError(error: unknown): ContractError {
  // Before KeyportError, which it extends: the card's reason and attempts left are what the UI needs.
  if (error instanceof PivError) {
    return {
      code: error.code,
      message: error.message,
      details: {
        pivCode: error.reason,
        ...(error.retriesLeft !== undefined ? { retriesLeft: error.retriesLeft } : {}),
      },
    };
  }
  if (error instanceof DeepLinkError) {
    return { code: error.code, message: error.message, details: { ...error.fields, deepLink: error.reason } };
  }
  if (error instanceof KeyportError) {
    return { code: error.code, message: error.message, details: { ...error.fields } };
  }
  if (error instanceof KeyStoreError) {
    return { code: keystoreCodes[error.code], message: error.message, details: { keystoreCode: error.code } };
  }
  if (error instanceof Ctap2Error) {
    return {
      code: securityKeyCode(error.code),
      message: error.message,
      details: {
        securityKeyCode: error.code,
        ...(error.retries !== undefined ? { retriesLeft: error.retries } : {}),
      },
    };
  }
  if (error instanceof CtaphidError) {
    return {
      code: securityKeyCode(error.code),
      message: error.message,
      details: { securityKeyCode: error.code },
    };
  }
  return {
    code: 'INTERNAL',
    message: 'Keyport Connect failed unexpectedly. Try again; if it keeps failing, restart the app.',
    details: {},
  };
}
