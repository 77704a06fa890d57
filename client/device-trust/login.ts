// The client's device part of login (no extra round trip): step 1 offers this machine's enrolled
// credential, or (auto-enrollment) its EK and AK; step 2 answers the cluster's device challenge with a
// quote (and the activated credential). A TPM that is missing or fails never fails the login: the
// session is then simply not device-trusted, and resources that require a trusted device say so.
import type {
  DeviceChallenge,
  DeviceChallengeResponse,
  DeviceLoginHello,
} from '../../proto/gen/keyport/v1/device';
import type { TrustedCluster } from '../profiles';
import { tpmConfigured, TrustedDevice } from './device';
import type { DeviceTrustOptions } from './device';

export interface DeviceLoginStart {
  device?: TrustedDevice;
  hello?: DeviceLoginHello;
}

export interface DeviceTrustSettings {
  mode: string;
  autoEnroll: boolean;
}

/**
 * What step 1 offers, from the cluster's device_trust and this machine's TPM. The settings are the ones
 * last seen (at trust, then in each LoginResponse); where device trust is on without auto-enrollment and
 * the cluster has not recognised this machine's device yet, they are asked afresh first (`refresh`:
 * GetClusterInfo on the login's channel; not passed when the cluster was trusted in this very login), so
 * auto-enrollment just switched on enrolls this device in this login. A recognised device's logins, and
 * every login where device trust is off, stay at two calls.
 */
export async function startDeviceLogin(
  trusted: TrustedCluster,
  options: DeviceTrustOptions | false | undefined,
  refresh?: () => Promise<DeviceTrustSettings>,
): Promise<DeviceLoginStart> {
  const env = (options && options.env) || process.env;
  if (options === false || !tpmConfigured(env)) return {};
  let settings: DeviceTrustSettings = trusted.deviceTrust ?? { mode: 'off', autoEnroll: false };
  // Auto-enrollment switched on since: asked afresh (a cluster with device trust off is not asked at each
  // login; the LoginResponse tells the next login when it turns on).
  const mayHaveChanged = settings.mode !== 'off' && !settings.autoEnroll;
  if (mayHaveChanged && !trusted.deviceCredentialId && refresh) {
    settings = await refresh().catch(() => settings);
  }
  if (settings.mode === 'off') return {};
  let device: TrustedDevice | undefined;
  try {
    device = await TrustedDevice.open(options || {});
    const credentialId = await device.credentialId();
    const recognised = credentialId !== undefined && credentialId === trusted.deviceCredentialId;
    if (credentialId && (recognised || !settings.autoEnroll)) return { device, hello: { credentialId } };
    if (settings.autoEnroll) {
      return { device, hello: { credentialId: credentialId ?? '', enroll: await device.enrollmentData() } };
    }
  } catch {
    // No usable TPM here (no access to /dev/tpmrm0, no helper, no asset tag): an untrusted login.
  }
  await device?.close().catch(() => {});
  return {};
}

/** Step 2: the answer to the device challenge, or nothing when the TPM cannot give one. */
export async function answerDeviceChallenge(
  start: DeviceLoginStart,
  challenge: DeviceChallenge | undefined,
): Promise<DeviceChallengeResponse | undefined> {
  if (!start.device || !challenge) return undefined;
  try {
    return await start.device.answer(challenge);
  } catch {
    return undefined;
  }
}
